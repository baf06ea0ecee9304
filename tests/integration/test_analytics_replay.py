"""Replay equals live: rebuilding ClickHouse from Kafka gives the same rows and aggregates."""

from __future__ import annotations

import asyncio

import pytest

from analytics.queries import refresh_rollups
from analytics.replay import replay_into, request_trail
from tests.integration.analytics_helpers import (
    inject_side_records,
    snapshot,
    submit,
    wait_landed,
)

pytestmark = pytest.mark.integration

N = 12


async def test_replay_equals_live(gateway, worker_factory, settings, clickhouse) -> None:
    worker_factory()
    ids = await submit(gateway, N)
    expected = await inject_side_records(gateway, ids)
    live = gateway.clickhouse

    await wait_landed(gateway, N, expected)
    await asyncio.to_thread(refresh_rollups, live)
    before = await snapshot(live)

    replayed_ch = clickhouse.with_database(f"{settings.clickhouse_database}_replay")
    report = await replay_into(settings, replayed_ch)
    after = await snapshot(replayed_ch)

    assert report.undecodable == 0, report
    assert after["counts"] == before["counts"]
    for key in before:
        assert after[key] == before[key], f"{key} differs between live and replay"
    # The comparison is not vacuous: every table and view has content.
    assert all(before["counts"][t] > 0 for t in
               ("lane_events", "llm_calls", "requests", "checkpoints", "audit_events"))
    assert before["v_checkpoint_decisions_daily"]
    assert before["v_provider_health_daily"]

    # The live sink consumed pending and decisions in whatever order; so did replay.
    statuses = await asyncio.to_thread(
        replayed_ch.query,
        f"SELECT status, count() FROM {replayed_ch.database}.checkpoints FINAL "  # noqa: S608
        "WHERE checkpoint_id LIKE 'cp-inj-%' GROUP BY status ORDER BY status")
    # An approval alone approves nothing (four eyes): "approved" comes from lane E's record on
    # completed, which none of these injected checkpoints has.
    assert dict(statuses[1]) == {"pending": 5, "rejected": 1}

    trail = await request_trail(settings, ids[0])
    assert trail.submitted is not None
    assert [e.lane.lane for e in trail.lane_events if e.lane] == list("ABCDEFG")
    injected = [e.llm for e in trail.llm_events if e.llm and e.llm.attempt >= 10]
    assert [c.fallback_from for c in injected] == [None, "anthropic"]
    assert any(p.checkpoint and p.checkpoint.checkpoint_id.startswith("cp-inj-")
               for p in trail.pending)
    assert any(d.decision == "approve" for d in trail.decisions)
    assert trail.final is not None
    assert any(a.audit_id.startswith("audit-inj-") for _, _, a in trail.audit)


async def test_replay_refuses_a_database_that_is_not_fresh(settings, clickhouse) -> None:
    from nova.errors import ConfigError

    ch = clickhouse.with_database(f"{settings.clickhouse_database}_used")
    ch.command(f"CREATE TABLE IF NOT EXISTS {ch.database}.x (a UInt8) ENGINE = Memory")
    with pytest.raises(ConfigError, match="--database"):
        await replay_into(settings, ch)
