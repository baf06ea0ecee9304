"""Shared steps for the analytics integration tests (not a test module)."""

from __future__ import annotations

import asyncio
from typing import Any

from analytics import compare
from analytics.client import ClickHouse
from analytics.compare import ROLLUPS, TABLES, VIEWS, normalise
from analytics.queries import table_counts
from nova.kafka.producer import RecordProducer
from nova.records import (
    AuditRecord,
    CheckpointDecisionRecord,
    CheckpointState,
    Event,
    LlmCall,
    PipelineRecord,
    now_ms,
)
from tests.integration.conftest import RESPOND_ASYNC, eventually

__all__ = ["ROLLUPS", "TABLES", "VIEWS", "inject_side_records", "normalise", "report_events",
           "snapshot", "submit", "wait_landed"]


async def submit(gw: Any, n: int, identities: tuple[str, ...] = ("id-a", "id-b")) -> list[str]:
    ids = []
    for i in range(n):
        ident = identities[i % len(identities)]
        r = await gw.http.post("/api/v2/nova/requests", json={"prompt": f"summarise note {i}"},
                               headers={**gw.auth(ident, "member"), **RESPOND_ASYNC})
        assert r.status_code in (200, 202), r.text
        ids.append(r.json()["request_id"])
    return ids


async def inject_side_records(gw: Any, ids: list[str]) -> dict[str, int]:
    """LLM, checkpoint, decision and audit records for ``ids``.

    The lanes emit some of these too (as they are filled in); the test adds its own, with ids
    the lanes never use (attempts 10+, ``cp-inj-``, ``audit-inj-``), so every mapper and
    every view is exercised live and in replay whatever the lanes do. Returns how many rows
    per table the injected records alone make.
    """
    # Written as the harness (nova-admin): pending and audit are the worker's topics, which the
    # gateway's principal may not write.
    producer = RecordProducer(gw.settings)
    await producer.start()
    try:
        return await _inject(producer, ids)
    finally:
        await producer.stop()


async def _inject(producer: RecordProducer, ids: list[str]) -> dict[str, int]:
    t = now_ms()
    expected = {"llm_calls": 0, "checkpoints": 0, "audit_events": 0}
    for i, rid in enumerate(ids):
        ident = "id-a" if i % 2 == 0 else "id-b"
        attempts = [("anthropic", "claude-x", "error", None), ("openai", "gpt-y", "ok",
                                                               "anthropic")] \
            if i % 3 == 0 else [("anthropic", "claude-x", "ok", None)]
        for n, (prov, model, status, fb) in enumerate(attempts, start=10):
            call = LlmCall(provider=prov, model=model, task_type="summarise", tokens_in=100 + i,
                           tokens_out=50 + n, cost_usd=0.001 * (i + 1), latency_ms=100.0 + i,
                           attempt=n, fallback_from=fb, status=status,
                           error="overloaded" if status == "error" else None)
            ev = Event(event_id=f"{rid}/llm/{n}", kind="llm", request_id=rid, identity_id=ident,
                       ts=t + n, llm=call)
            await producer.send("events", rid, ev)
            expected["llm_calls"] += 1
        if i % 2 == 0:
            cp = CheckpointState(checkpoint_id=f"cp-inj-{rid}", reason="high_cost",
                                 status="pending",
                                 created_at=t, expires_at=t + 86_400_000)
            held = PipelineRecord(request_id=rid, identity_id=ident, user_id=f"user-{ident}",
                                  submitted_at=t, prompt="p", status="held", checkpoint=cp)
            await producer.send("pending", rid, held)
            expected["checkpoints"] += 1
            if i % 4 == 0:
                dec = CheckpointDecisionRecord(
                    checkpoint_id=f"cp-inj-{rid}", request_id=rid, identity_id=ident,
                    decision="approve" if i % 8 == 0 else "reject", actor="approver-1",
                    decided_at=t + 1500 + i)
                await producer.send("decisions", rid, dec)
        audit = AuditRecord(audit_id=f"audit-inj-{rid}", kind="OUTCOME", request_id=rid,
                            identity_id=ident, actor=None, ts=t, detail='{"ok":true}',
                            prev_hash="0" * 64, hash=f"{i:064x}")
        await producer.send("audit", rid, audit)
        expected["audit_events"] += 1
    return expected


async def wait_landed(gw: Any, n: int, injected: dict[str, int], timeout_s: float = 120) -> None:
    """Until the live sink has committed everything produced so far for ``n`` requests.

    Every request finished (7 lane rows each, one ``requests`` row), at least the injected
    rows present, sink lag 0, and the counts unchanged across two polls (the lanes' own
    events for a request may trail its completion by a moment).
    """
    ch = gw.clickhouse
    seen: list[Any] = []

    async def landed() -> bool:
        counts = await asyncio.to_thread(table_counts, ch, TABLES)
        lag = await gw.services.sink.lag()
        stable = bool(seen) and seen[0] == counts
        seen[:] = [counts, lag]
        return (counts["lane_events"] == 7 * n and counts["requests"] == n and lag == 0
                and all(counts[t] >= k for t, k in injected.items()) and stable)

    try:
        await eventually(landed, timeout_s=timeout_s, interval_s=0.5,
                         message="the live sink to land every record")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last counts and lag {seen}") from None


async def snapshot(ch: ClickHouse) -> dict[str, Any]:
    """``analytics.compare.snapshot``, off the event loop."""
    return await asyncio.to_thread(compare.snapshot, ch)


def report_events(ch: ClickHouse, request_ids: list[str]) -> list[dict[str, Any]]:
    """``v_pipeline_events`` rows of ``request_ids`` (the report's event types), in time order."""
    return ch.rows(f"SELECT event_type, request_id, lane, ts, detail "  # noqa: S608
                   f"FROM {ch.database}.v_pipeline_events WHERE request_id IN %(ids)s "
                   "ORDER BY ts, seq, event_type", {"ids": list(request_ids)})
