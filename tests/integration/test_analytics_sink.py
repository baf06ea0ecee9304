"""Consuming the events topic twice (a sink restarted from offset 0) changes no answer."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from analytics.sink import ClickHouseSink, SinkRunner
from tests.integration.analytics_helpers import (
    VIEWS,
    inject_side_records,
    snapshot,
    submit,
    wait_landed,
)
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

N = 8


async def test_events_consumed_twice_change_no_count(gateway, worker_factory, settings) -> None:
    worker_factory()
    ids = await submit(gateway, N)
    injected = await inject_side_records(gateway, ids)
    ch = gateway.clickhouse
    await wait_landed(gateway, N, injected)
    before = await snapshot(ch)
    raw_before = int(ch.scalar(f"SELECT count() FROM {ch.database}.lane_events"))  # noqa: S608

    # A second runner with a new group starts at offset 0: every event is inserted again.
    again = SinkRunner(settings, ClickHouseSink(ch), None, topics=("events",),
                       group=f"{settings.topic_prefix}-sink-again")
    task = asyncio.create_task(again.run())
    try:
        async def caught_up() -> bool:
            return again.messages_consumed > 0 and await again.lag() == 0
        await eventually(caught_up, timeout_s=60, message="the second sink to reach the end")
    finally:
        again.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 20)

    assert again.records_written >= N  # the duplicates really were written ...
    raw_after = int(ch.scalar(f"SELECT count() FROM {ch.database}.lane_events"))  # noqa: S608
    assert raw_after >= raw_before  # (merges may already have collapsed some)
    after = await snapshot(ch)
    assert after["counts"] == before["counts"]  # ... and no count or view changed
    for key in ("lane_events", "llm_calls", *VIEWS):
        assert after[key] == before[key], key
