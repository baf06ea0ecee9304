"""A second worker joining mid-stream takes half the partitions; nothing is lost or doubled.

Scaling out is the everyday rebalance: the first worker gives up its partitions, both rejoin and
each recovers its share of the tables before reading on. Faust 0.15 empties its stream buffers
on the way (see ``streams/consumer.py``); this checks the worker's consumer re-reads what was
in them, so all 100 requests still end with exactly seven lane rows each.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.conftest import eventually
from tests.integration.pipeline_checks import (
    LANES,
    first_finishes,
    lanes_per_request,
    post_requests,
    seven_lanes_each,
    worker_group,
)

pytestmark = pytest.mark.integration


async def test_a_second_worker_joining_mid_stream_loses_and_duplicates_nothing(
    gateway: Any, worker_factory: Any, settings: Any,
):
    ch = gateway.clickhouse
    first_worker = worker_factory()
    first = await post_requests(gateway, 50)
    await first_finishes(gateway, first)
    second_worker = worker_factory({"NOVA_WORKER_INSTANCE": "1"})  # its own static member id

    async def two_members() -> bool:
        return await worker_group(settings) == ("Stable", 2)

    await eventually(two_members, 90, 0.5, message="both workers in the group")
    second = await post_requests(gateway, 50)
    ids = first + second
    counts = await seven_lanes_each(gateway, settings, ids, "700 lane rows with two workers",
                                    lambda: first_worker.log() + second_worker.log())
    assert counts["final"] == counts["distinct"] == 700, counts
    per_request = await asyncio.to_thread(lanes_per_request, ch, ids)
    assert per_request == {rid: "".join(LANES) for rid in ids}
    _, rows = await asyncio.to_thread(
        ch.query,
        f"SELECT DISTINCT worker FROM {ch.database}.lane_events "  # noqa: S608
        "WHERE request_id IN %(ids)s", {"ids": second})
    assert len(rows) == 2, f"the second half should be shared by both workers, got {rows}"
    # nothing was left for the partition watchdog, the last resort (a stall costs 30 s or more)
    for worker in (first_worker, second_worker):
        assert "] stalled:" not in worker.log(), worker.log()[-3000:]
