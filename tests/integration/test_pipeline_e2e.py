"""End to end on the real broker and embedded ClickHouse: HTTP in, seven lanes, rows out.

The gateway (in-process, running the sink) accepts requests over HTTP; the worker is a real
subprocess running the seven Faust lanes; what is asserted is what ClickHouse and the
``completed`` topic recorded.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nova.records import PipelineRecord
from tests.integration.conftest import eventually
from tests.integration.pipeline_checks import (
    DONE,
    LANES,
    lane_counts,
    lanes_per_request,
    post_requests,
    read_records,
)

pytestmark = pytest.mark.integration


async def test_one_request_over_http_shows_seven_lane_events(gateway: Any, worker_factory: Any):
    worker_factory()
    headers = gateway.auth("identity-alice", "member")
    r = await gateway.http.post("/api/v2/nova/requests", json={"prompt": "Summarise this thread"},
                                headers=headers)
    assert r.status_code == 202, r.text
    request_id = r.json()["request_id"]
    ch = gateway.clickhouse

    async def seven_rows() -> list[dict[str, Any]] | None:
        rows = await ch.arows(
            f"SELECT lane, status, worker FROM {ch.database}.lane_events FINAL "  # noqa: S608
            "WHERE request_id = %(rid)s ORDER BY lane", {"rid": request_id})
        return rows if len(rows) >= len(LANES) else None

    rows = await eventually(seven_rows, 60, message="seven lane rows in ClickHouse")
    assert [row["lane"] for row in rows] == list(LANES)
    assert all(row["status"] == "ok" for row in rows), rows
    assert len({row["worker"] for row in rows}) == 1  # one worker ran every lane

    async def final_view() -> dict[str, Any] | None:
        got = await gateway.http.get(f"/api/v2/nova/requests/{request_id}", headers=headers)
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body if len(body["lanes"]) == len(LANES) and body["status"] != "in_flight" else None

    body = await eventually(final_view, 30, message="the gateway to see all seven lanes")
    assert [lane["lane"] for lane in body["lanes"]] == list(LANES)
    assert body["status"] in DONE, body


async def test_hundred_requests_make_exactly_seven_hundred_lane_rows(
    gateway: Any, worker_factory: Any, settings: Any,
):
    worker_factory()
    ids = await post_requests(gateway, 100)
    assert len(set(ids)) == 100
    ch = gateway.clickhouse

    async def all_rows() -> dict[str, int] | None:
        counts = await asyncio.to_thread(lane_counts, ch, ids)
        return counts if counts["final"] >= 700 else None

    counts = await eventually(all_rows, 90, 0.5, message="700 lane rows for 100 requests")
    assert counts["final"] == 700
    assert counts["distinct"] == 700
    per_request = await asyncio.to_thread(lanes_per_request, ch, ids)
    assert per_request == {rid: "".join(LANES) for rid in ids}

    completed = {r.request_id: r for r in await read_records(settings, "completed", PipelineRecord)}
    assert set(ids) <= set(completed)
    statuses = {completed[rid].status for rid in ids}
    assert statuses <= set(DONE), statuses
    assert all([t.lane for t in completed[rid].lanes] == list(LANES) for rid in ids)
