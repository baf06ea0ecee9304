"""Pure mapping from Kafka records to ClickHouse rows, one function per source topic.

Kept apart from the sink so replay and the live sink produce identical rows by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nova.ids import uuid7_ms
from nova.records import Event, PipelineRecord

Row = list[Any]
TableRows = list[tuple[str, Row]]

COLUMNS: dict[str, tuple[str, ...]] = {
    "lane_events": ("request_id", "identity_id", "lane", "status", "started_at", "duration_ms",
                    "worker", "error", "request_ts", "ts", "version"),
    "llm_calls": ("request_id", "identity_id", "provider", "model", "role", "task_type",
                  "tokens_in", "tokens_out", "cost_usd", "latency_ms", "attempt",
                  "fallback_from", "status", "error", "request_ts", "ts", "version"),
    "alerts": ("event_id", "request_id", "identity_id", "alert_type", "subject", "message",
               "severity", "ts", "version"),
    "requests": ("request_id", "identity_id", "user_id", "status", "task_type", "action", "role",
                 "governance", "fired_rules", "checkpoint", "provider", "model", "cost_usd",
                 "tokens_in", "tokens_out", "attempts", "latency_ms", "error", "result",
                 "request_ts", "completed_at", "version"),
}


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def request_ts(request_id: str, fallback_ms: int) -> datetime:
    return ms_to_dt(uuid7_ms(request_id) or fallback_ms)


def event_rows(event: Event) -> TableRows:
    rts = request_ts(event.request_id, event.ts)
    ts = ms_to_dt(event.ts)
    if event.lane is not None:
        ln = event.lane
        return [("lane_events", [
            event.request_id, event.identity_id, ln.lane, ln.status, ms_to_dt(ln.started_at),
            ln.duration_ms, ln.worker, ln.error, rts, ts, event.ts,
        ])]
    if event.llm is not None:
        c = event.llm
        return [("llm_calls", [
            event.request_id, event.identity_id, c.provider, c.model, c.role, c.task_type,
            c.tokens_in, c.tokens_out, c.cost_usd, c.latency_ms, c.attempt, c.fallback_from,
            c.status, c.error, rts, ts, event.ts,
        ])]
    if event.alert is not None:
        a = event.alert
        return [("alerts", [
            event.event_id, event.request_id, event.identity_id, a.alert_type, a.subject,
            a.message, a.severity, ts, event.ts,
        ])]
    return []


def completed_rows(rec: PipelineRecord) -> TableRows:
    completed_at = max((t.started_at + int(t.duration_ms) for t in rec.lanes), default=rec.submitted_at)
    ex = rec.execution
    return [("requests", [
        rec.request_id, rec.identity_id, rec.user_id, rec.status,
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
        rec.error, ex.text if ex else None,
        request_ts(rec.request_id, rec.submitted_at), ms_to_dt(completed_at), completed_at,
    ])]


# source topic → (record class, row mapper)
MAPPERS: dict[str, tuple[type[Any], Callable[[Any], TableRows]]] = {
    "events": (Event, event_rows),
    "completed": (PipelineRecord, completed_rows),
}
