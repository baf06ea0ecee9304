"""Pure mapping from Kafka records to ClickHouse rows, one function per source topic.

Kept apart from the sink so replay and the live sink produce identical rows by construction:
both decode a message with :func:`decode_message` and map it with :data:`MAPPERS`. A mapper
sees only the record and its Kafka position, never the clock, so the same message always
yields the same rows, which is what lets ReplacingMergeTree collapse a re-consumed record.

Sources and tables (``events`` → ``lane_events``, ``llm_calls``, ``alerts`` is mapped inside
ClickHouse instead, by the materialized views of migration 0009: ``analytics.avro_load``):

    completed  → requests, request_content,        (final state of each request and of its
                 checkpoints                        checkpoint, as lane E decided it; the
                                                    answer and error text apart, as private
                                                    content: migrations/0006)
    pending    → checkpoints                       (held request: reason, created, expires)
    decisions  → checkpoints                       (decision: who, when, outcome, why)
    expiries   → checkpoints                       (lane E's expiry)

An approval does not set a checkpoint's status: with a four-eyes rule the first of two leaves
it pending. The status ``approved`` comes from lane E's own record on ``completed``; rejections
and expiries are final and set it at once. (Analytics is no governance reader: it does not
check signatures; lane E and ``nova audit verify`` do.)
    audit      → audit_events                      (with partition and offset)

``sphere_id``: no record carries the identity's sphere yet; :func:`sphere_of` reads a
``sphere_id`` attribute when a record grows one, so the column fills in without a change here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nova.errors import SchemaError
from nova.ids import uuid7_ms
from nova.records import (
    AuditRecord,
    CheckpointDecisionRecord,
    Event,
    PipelineRecord,
    Record,
)
from schemas import TOPICS, SchemaSet

Row = list[Any]
TableRows = list[tuple[str, Row]]

COLUMNS: dict[str, tuple[str, ...]] = {
    "lane_events": ("request_id", "identity_id", "sphere_id", "lane", "status", "started_at",
                    "duration_ms", "worker", "error", "request_ts", "ts", "version"),
    "llm_calls": ("request_id", "identity_id", "sphere_id", "provider", "model", "role",
                  "task_type", "tokens_in", "tokens_out", "cost_usd", "latency_ms", "attempt",
                  "fallback_from", "status", "error", "request_ts", "ts", "version"),
    "alerts": ("event_id", "request_id", "identity_id", "alert_type", "subject", "message",
               "severity", "ts", "version"),
    "requests": ("request_id", "identity_id", "sphere_id", "user_id", "status", "task_type",
                 "action", "role", "governance", "fired_rules", "checkpoint", "provider", "model",
                 "cost_usd", "tokens_in", "tokens_out", "attempts", "latency_ms", "request_ts",
                 "completed_at", "version"),
    "request_content": ("request_id", "identity_id", "result", "error", "request_ts", "version"),
    "checkpoints": ("checkpoint_id", "identity_id", "request_id", "sphere_id", "reason",
                    "decided_status", "created_at", "expires_at", "decided_by", "decided_at",
                    "decision_reason", "request_ts"),
    "audit_events": ("audit_id", "kind", "request_id", "identity_id", "sphere_id", "actor", "ts",
                     "detail", "prev_hash", "hash", "partition", "offset", "version"),
}

# A decision record says what was done (approve); the checkpoint says what it is (approved).
DECISION_STATUS = {"approve": "approved", "reject": "rejected", "expire": "expired"}
UNDECIDED = frozenset({"pending", "held"})


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record sat in Kafka; audit rows keep it so a chain can be checked in SQL."""

    partition: int = -1
    offset: int = -1


NO_POSITION = Position()


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def opt_dt(ms: int | None) -> datetime | None:
    return None if ms is None else ms_to_dt(ms)


def request_ts(request_id: str, fallback_ms: int) -> datetime:
    return ms_to_dt(uuid7_ms(request_id) or fallback_ms)


def sphere_of(record: Record) -> str | None:
    """The record's sphere once records carry one (see module docstring), else None."""
    value = getattr(record, "sphere_id", None)
    return value if isinstance(value, str) and value else None


def completed_rows(rec: PipelineRecord, pos: Position = NO_POSITION) -> TableRows:
    completed_at = max((t.started_at + int(t.duration_ms) for t in rec.lanes),
                       default=rec.submitted_at)
    ex = rec.execution
    cp = rec.checkpoint
    checkpoint: TableRows = [] if cp is None or cp.status in UNDECIDED else [("checkpoints", [
        cp.checkpoint_id, rec.identity_id, rec.request_id, sphere_of(rec), None, cp.status,
        None, None, cp.decided_by, opt_dt(cp.decided_at), cp.decision_reason,
        request_ts(rec.request_id, rec.submitted_at),
    ])]
    rts = request_ts(rec.request_id, rec.submitted_at)
    result = ex.text if ex else None
    content: TableRows = [] if result is None and rec.error is None else [(
        "request_content", [rec.request_id, rec.identity_id, result, rec.error, rts,
                            completed_at])]
    return [*checkpoint, ("requests", [
        rec.request_id, rec.identity_id, sphere_of(rec), rec.user_id, rec.status,
        rec.intent.task_type if rec.intent else None,
        rec.intent.action if rec.intent else None,
        rec.role,
        rec.governance.outcome if rec.governance else None,
        list(rec.governance.fired_rules) if rec.governance else [],
        rec.checkpoint.status if rec.checkpoint else None,
        ex.provider if ex else None, ex.model if ex else None,
        ex.cost_usd if ex else 0.0, ex.tokens_in if ex else 0, ex.tokens_out if ex else 0,
        ex.attempts if ex else 0,
        float(completed_at - rec.submitted_at),
        rts, ms_to_dt(completed_at), completed_at,
    ]), *content]


def pending_rows(rec: PipelineRecord, pos: Position = NO_POSITION) -> TableRows:
    """A held request: the checkpoint's reason and clock. No checkpoint section, no row."""
    cp = rec.checkpoint
    if cp is None:
        return []
    decided = None if cp.status in UNDECIDED else cp.status
    return [("checkpoints", [
        cp.checkpoint_id, rec.identity_id, rec.request_id, sphere_of(rec), cp.reason, decided,
        ms_to_dt(cp.created_at), ms_to_dt(cp.expires_at), cp.decided_by, opt_dt(cp.decided_at),
        cp.decision_reason, request_ts(rec.request_id, rec.submitted_at),
    ])]


def decision_rows(dec: CheckpointDecisionRecord, pos: Position = NO_POSITION) -> TableRows:
    """A decision: who decided what and when; NULLs leave the pending row's columns alone.

    An approval leaves the status alone (see the module docstring)."""
    status = None if dec.decision == "approve" else DECISION_STATUS.get(dec.decision, dec.decision)
    return [("checkpoints", [
        dec.checkpoint_id, dec.identity_id, dec.request_id, sphere_of(dec), None,
        status, None, None, dec.actor,
        ms_to_dt(dec.decided_at), dec.reason, request_ts(dec.request_id, dec.decided_at),
    ])]


def audit_rows(rec: AuditRecord, pos: Position = NO_POSITION) -> TableRows:
    return [("audit_events", [
        rec.audit_id, rec.kind, rec.request_id, rec.identity_id, sphere_of(rec), rec.actor,
        ms_to_dt(rec.ts), rec.detail, rec.prev_hash, rec.hash, max(pos.partition, 0),
        max(pos.offset, 0), rec.ts,
    ])]


Mapper = Callable[[Any, Position], TableRows]

# The topic whose records ClickHouse decodes and maps itself (analytics.avro_load).
LOADED_ENCODED = "events"

# source topic → (record class, row mapper), for the topics mapped here
MAPPERS: dict[str, tuple[type[Any], Mapper]] = {
    "completed": (PipelineRecord, completed_rows),
    "pending": (PipelineRecord, pending_rows),
    "decisions": (CheckpointDecisionRecord, decision_rows),
    "expiries": (CheckpointDecisionRecord, decision_rows),
    "audit": (AuditRecord, audit_rows),
}

SOURCE_TOPICS: tuple[str, ...] = (LOADED_ENCODED, *MAPPERS)
RECORDS: dict[str, type[Any]] = {LOADED_ENCODED: Event, **{t: c for t, (c, _) in MAPPERS.items()}}


def decode_message(
    schemas: SchemaSet, topic: str, value: bytes | None,
    headers: Mapping[str, bytes] | list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...] | None,
) -> Any:
    """Decode one message of a source topic into its record; SchemaError if it cannot be."""
    record_cls = RECORDS[topic]
    data = schemas[TOPICS[topic].value_schema].decode(value, headers)
    try:
        return record_cls.from_avro(data)
    except ValueError as exc:
        raise SchemaError(f"{topic}: record does not validate: {exc}") from exc


def message_rows(
    schemas: SchemaSet, topic: str, value: bytes | None, headers: Any, pos: Position,
) -> TableRows:
    """Decode and map one message of a topic in :data:`MAPPERS`: the single path shared by the
    live sink and replay."""
    _, mapper = MAPPERS[topic]
    return mapper(decode_message(schemas, topic, value, headers), pos)
