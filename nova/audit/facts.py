"""Audit facts, built in one place so their ids and details stay consistent.

The lanes and the gateway both raise facts (governance, checkpoint transitions, outcomes,
refused records, identity boundary crossings), so the module lives in the core both may import.

Fact ids of the lanes' facts are deterministic (request id + kind + transition), so a lane that
re-processes a record after a crash re-sends the same fact id; auditors and ClickHouse see one
fact.

A refused cross-identity access at the gateway (:func:`emit_audit_fact`) is a security event: it
must leave a durable trace even though the request itself never reaches the pipeline. That fact
travels twice: as an ``alert`` event on the ``events`` topic (it lands in the ClickHouse
``alerts`` table for analysts) and as an ``AuditFact`` on the ``facts`` topic, which lane G
appends to the hash-chained audit topic. It names the resource and its owner; the HTTP answer to
the caller never does.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from nova.domain.checkpoints import checkpoint_id_for
from nova.ids import uuid7
from nova.records import (
    Alert,
    AuditFact,
    CheckpointState,
    Event,
    GovernanceDecision,
    PipelineRecord,
    Record,
    now_ms,
)


def canonical(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fact(
    kind: str,
    identity_id: str,
    detail: dict[str, Any],
    *,
    request_id: str | None = None,
    actor: str | None = None,
    suffix: str = "",
) -> AuditFact:
    base = request_id or identity_id
    return AuditFact(
        fact_id=f"{base}/{kind}{'/' + suffix if suffix else ''}",
        kind=kind,
        request_id=request_id,
        identity_id=identity_id,
        actor=actor,
        ts=now_ms(),
        detail=canonical(detail),
    )


def governance_fact(record: PipelineRecord, gov: GovernanceDecision) -> AuditFact:
    return fact(
        "GOVERNANCE",
        record.identity_id,
        {
            "outcome": gov.outcome,
            "fired_rules": list(gov.fired_rules),
            "reasons": list(gov.reasons),
            "action": record.intent.action if record.intent else None,
            "task_type": record.intent.task_type if record.intent else None,
        },
        request_id=record.request_id,
        actor=record.user_id,
    )


def checkpoint_fact(
    record: PipelineRecord, cp: CheckpointState, actor: str | None, suffix: str | None = None
) -> AuditFact:
    """A checkpoint transition; ``suffix`` tells apart facts of one status (approvals). The
    facts of an agent's tool-call checkpoint (not the request's own) name it in their id too,
    so they never replace the request's checkpoint facts."""
    suffix = suffix or cp.status
    if cp.checkpoint_id != checkpoint_id_for(record.request_id):
        suffix = f"{cp.checkpoint_id}:{suffix}"
    return fact(
        "CHECKPOINT",
        record.identity_id,
        {
            "checkpoint_id": cp.checkpoint_id,
            "status": cp.status,
            "reason": cp.reason,
            "decision_reason": cp.decision_reason,
            "expires_at": cp.expires_at,
            "approvals": list(cp.approvals),
            "approvals_required": cp.approvals_required,
        },
        request_id=record.request_id,
        actor=actor,
        suffix=suffix,
    )


# An agent's model call (one per attempt: its step, provider, model, tokens, cost and stop
# reason, never what was said), its tool call, with its governance outcome
# (``streams.agent_run``; a held call has two: ``held``, then how it ended), and a
# ``send_message``'s delivery record.
AGENT_STEP = "AGENT_STEP"
AGENT_TOOL_CALL = "AGENT_TOOL_CALL"
AGENT_MESSAGE_SENT = "AGENT_MESSAGE_SENT"
# An agent's write the gateway's applier refused on its own state (``gateway.agent_writes``).
AGENT_WRITE_REFUSED = "AGENT_WRITE_REFUSED"


UNTRUSTED_RECORD = "UNTRUSTED_RECORD"


def untrusted_fact(
    *,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    identity_id: str,
    request_id: str | None,
    claimed: dict[str, Any],
) -> AuditFact:
    """A decision or entity change refused because it is unsigned, badly signed or does not
    belong where it claims (``nova.signing``); the position lets ``nova audit verify`` match
    the refused record with its audit. ``claimed`` is what the record said, not the truth."""
    return fact(
        UNTRUSTED_RECORD,
        identity_id,
        {"topic": topic, "partition": partition, "offset": offset, "reason": reason,
         "claimed": claimed},
        request_id=request_id,
        actor=None,
        suffix=f"{topic}:{partition}:{offset}",
    )


def outcome_fact(record: PipelineRecord) -> AuditFact:
    ex = record.execution
    return fact(
        "OUTCOME",
        record.identity_id,
        {
            "status": record.status,
            "error": record.error,
            "provider": ex.provider if ex else None,
            "model": ex.model if ex else None,
            "cost_usd": ex.cost_usd if ex else 0.0,
            "attempts": ex.attempts if ex else 0,
            "lanes": [t.lane for t in record.lanes],
        },
        request_id=record.request_id,
        actor=record.user_id,
    )


class RecordSender(Protocol):
    """What the entity writer and the audit facts need of a producer (``RecordProducer``)."""

    async def send(self, topic: str, key: str, record: Record) -> None: ...


def alert_fact(
    kind: str,
    identity_id: str,
    actor: str,
    request_id: str | None,
    detail: dict[str, Any],
    event_id: str | None = None,
) -> tuple[Event, AuditFact]:
    """The two records of a security fact (:func:`emit_audit_fact`): its alert event and its
    audit fact, with one id (``event_id``: deterministic for a lane's, so a replay repeats it;
    a fresh UUIDv7 otherwise)."""
    resource_kind = detail.get("resource_kind")
    resource_id = detail.get("resource_id")
    subject = f"{resource_kind}:{resource_id}" if resource_kind and resource_id else identity_id
    message = json.dumps({"actor": actor, **detail}, sort_keys=True, separators=(",", ":"),
                         default=str)
    event = Event(
        event_id=event_id or uuid7(),
        kind="alert",
        request_id=request_id or "",
        identity_id=identity_id,
        ts=now_ms(),
        alert=Alert(alert_type=kind, subject=subject, message=message, severity="high"),
    )
    audit = AuditFact(
        fact_id=event.event_id, kind=kind, request_id=request_id, identity_id=identity_id,
        actor=actor, ts=event.ts,
        detail=json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str))
    return event, audit


async def emit_audit_fact(
    producer: RecordSender,
    kind: str,
    identity_id: str,
    actor: str,
    request_id: str | None,
    detail: dict[str, Any],
) -> Event:
    """Produce one audit fact of ``kind`` (e.g. ``IDENTITY_BOUNDARY``) about ``identity_id``.

    ``actor`` is who acted (the token's subject), ``detail`` what they tried: by convention
    ``resource_kind``, ``resource_id``, ``owner_identity`` and ``operation``. Keyed by the
    request id when there is one, else by the identity. Returns the event sent.
    """
    event, audit = alert_fact(kind, identity_id, actor, request_id, detail)
    await producer.send("events", request_id or identity_id, event)
    # ...and to lane G, which appends it to the hash-chained audit topic.
    await producer.send("facts", request_id or identity_id, audit)
    return event
