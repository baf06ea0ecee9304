"""Frozen, typed records for every message Nova puts on Kafka.

Each model mirrors one Avro schema in ``schemas/``; ``to_avro``/``from_avro`` convert to and
from the plain dicts fastavro reads and writes. Pydantic does the nested conversion, so a
schema change is one field here plus the ``.avsc``. Records are immutable: a lane returns a
new record (``model_copy(update=...)``) rather than mutating what it consumed.
"""

from __future__ import annotations

import time
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict

from nova.domain.kinds import Action, CheckpointStatus, IdentifierKind, Priority, TaskType
from schemas import headers as hdr


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_avro(self) -> dict[str, Any]:
        return self.model_dump(mode="python")

    @classmethod
    def from_avro(cls, data: dict[str, Any]) -> Self:
        return cls.model_validate(data)

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """Headers written with the record besides its schema's (``schemas.headers``)."""
        return []


class Intent(Record):
    task_type: TaskType
    action: Action
    confidence: float
    reasons: tuple[str, ...] = ()
    defers_to_context: bool = False
    language: str = "en"


class ContextSnapshot(Record):
    text: str
    token_count: int
    item_count: int
    truncated: bool
    sources: tuple[str, ...] = ()


class Message(Record):
    role: str
    content: str


class Mask(Record):
    """An identifier lane C replaced by ``placeholder`` in what providers receive."""

    placeholder: str
    kind: IdentifierKind
    value: str
    written: str


class EncodedPrompt(Record):
    messages: tuple[Message, ...]
    token_estimate: int
    masks: tuple[Mask, ...] = ()


class GovernanceDecision(Record):
    outcome: str  # allow | deny | require_approval
    fired_rules: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    approvals_required: int = 1  # distinct approvers a checkpoint needs (four-eyes rules: 2)


class CheckpointState(Record):
    checkpoint_id: str
    reason: str
    status: CheckpointStatus
    created_at: int
    expires_at: int
    decided_by: str | None = None
    decided_at: int | None = None
    decision_reason: str | None = None
    approvals_required: int = 1
    approvals: tuple[str, ...] = ()  # distinct approvers so far, in order


class Execution(Record):
    provider: str | None = None
    model: str | None = None
    text: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    attempts: int = 0


class LaneTiming(Record):
    lane: str
    status: str
    started_at: int
    duration_ms: float
    worker: str | None = None  # None in records written before v6
    error: str | None = None


FINAL_STATUSES = frozenset(
    {"completed", "denied", "rejected", "expired", "failed", "budget_exceeded"}
)


class PipelineRecord(Record):
    """One request travelling the lanes (schema ``pipeline_record``)."""

    request_id: str
    identity_id: str
    user_id: str
    submitted_at: int
    prompt: str
    declared_action: str | None = None
    task_type_hint: str | None = None
    role: str | None = None
    thread_id: str | None = None
    dataspace_ids: tuple[str, ...] = ()
    meeting_id: str | None = None  # None in records written before v8
    agent_id: str | None = None  # None in records written before v9
    # an agent run paused at a tool call's checkpoint (nova.llm.agent_pause, JSON; v10)
    agent_pause: str | None = None
    roles: tuple[str, ...] = ()
    sphere_id: str | None = None
    provider_hint: str | None = None
    model_hint: str | None = None
    strategy: str | None = None
    priority: Priority | None = None  # None: normal
    idempotency_key: str | None = None  # the client's Idempotency-Key (gateway.idempotency)
    body_fingerprint: str | None = None  # SHA-256 of the body submitted with that key
    status: str = "accepted"
    intent: Intent | None = None
    context: ContextSnapshot | None = None
    encoded: EncodedPrompt | None = None
    governance: GovernanceDecision | None = None
    checkpoint: CheckpointState | None = None
    execution: Execution | None = None
    error: str | None = None
    lanes: tuple[LaneTiming, ...] = ()

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """The headers readers filter on without decoding the value (``schemas.headers``)."""
        headers = [
            (hdr.REQUEST, self.request_id.encode()),
            (hdr.IDENTITY, self.identity_id.encode()),
            (hdr.STATUS, self.status.encode()),
        ]
        if self.lanes:
            headers.append((hdr.LANE, self.lanes[-1].lane.encode()))
        if self.idempotency_key is not None:
            headers.append((hdr.KEYED, b"1"))
        return headers

    @property
    def finished(self) -> bool:
        """True once an outcome is decided; later lanes pass the record through."""
        return self.status in FINAL_STATUSES


class LaneEvent(Record):
    lane: str
    status: str
    started_at: int
    duration_ms: float
    worker: str
    error: str | None = None


class LlmCall(Record):
    provider: str
    model: str
    role: str | None = None
    task_type: str | None = None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_ms: float
    attempt: int
    fallback_from: str | None = None
    status: str
    error: str | None = None


class Alert(Record):
    alert_type: str
    subject: str
    message: str
    severity: str = "warning"


class Event(Record):
    """A lane, LLM or alert event (schema ``event``)."""

    event_id: str
    kind: str  # lane | lanes | llm | alert
    request_id: str
    identity_id: str
    ts: int
    lane: LaneEvent | None = None  # kind lane: records written before event v2
    llm: LlmCall | None = None
    alert: Alert | None = None
    lanes: tuple[LaneEvent, ...] = ()  # kind lanes: a request's lane events, in one record


class CheckpointDecisionRecord(Record):
    """Schema ``decision``."""

    checkpoint_id: str
    request_id: str
    identity_id: str
    decision: str  # approve | reject | expire
    actor: str
    reason: str | None = None
    decided_at: int
    key_id: str | None = None  # the gateway key that signed it (``nova.signing``)
    signature: bytes | None = None  # Ed25519 over ``decision_payload``; expiries carry none


class AuditFact(Record):
    """Schema ``audit_fact``: something lane G must append to the audit chain."""

    fact_id: str
    kind: str
    request_id: str | None = None
    identity_id: str
    actor: str | None = None
    ts: int
    detail: str


class Admission(Record):
    """Schema ``admission``: requests one gateway admitted per identity in an interval."""

    gateway: str
    at_ms: int
    counts: dict[str, int]


class AuditRecord(Record):
    audit_id: str
    kind: str
    request_id: str | None = None
    identity_id: str
    actor: str | None = None
    ts: int
    detail: str
    prev_hash: str
    hash: str


class DeadLetter(Record):
    source_topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    headers: dict[str, bytes] = {}
    lane: str
    error_type: str
    reason: str
    failed_at: int


class EntityEvent(Record):
    entity_type: str
    entity_id: str
    owner_identity: str
    version: int
    ts: int
    deleted: bool = False
    body: str
    key_id: str | None = None  # the gateway key that signed it (``nova.signing``)
    signature: bytes | None = None  # Ed25519 over ``entity_payload``


class AgentWrite(Record):
    """Schema ``agent_write``: a WRITE tool call an agent run made, allowed by governance on
    the worker, for the gateway's applier (``gateway.agent_writes``) to check again, sign and
    write as a thread message or a meeting note."""

    write_id: str
    request_id: str
    identity_id: str
    agent_id: str
    kind: Literal["thread_message", "meeting_note"]
    parent_id: str
    text: str
    ts: int


class Delivery(Record):
    """Schema ``delivery``: one alert delivered (or dead-lettered) to one destination."""

    delivery_id: str
    alert_id: str
    kind: str
    subject: str
    webhook_id: str
    outcome: str  # delivered | dead
    attempts: int
    status: int | None = None
    ts: int
