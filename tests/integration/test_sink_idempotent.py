"""Consuming the same topics twice changes nothing in ClickHouse.

The sink is at least once: after a crash it re-reads offsets it had already written. Rows are a
pure function of the record and every table is a ReplacingMergeTree keyed by the row's identity,
so a second pass (same consumer group rewound to offset 0, or a brand-new group) must leave every
FINAL count, and every row, exactly as the first pass left them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from analytics.client import ClickHouse
from analytics.migrate import migrate
from analytics.sink import ClickHouseSink, SinkRunner
from nova.ids import uuid7
from nova.kafka.admin import ensure_topics
from nova.kafka.clients import kafka_consumer
from nova.kafka.producer import RecordProducer
from nova.records import Event, LaneEvent, LaneTiming, PipelineRecord, now_ms
from nova.settings import Settings
from tests.integration.conftest import eventually
from tests.integration.pipeline_checks import LANES

pytestmark = pytest.mark.integration

REQUESTS = 20
RECORDS = REQUESTS * len(LANES) + REQUESTS  # one events record per lane, one completed


async def produce_history(settings: Settings) -> list[str]:
    """What a worker would have written for REQUESTS finished requests: lane events, completed."""
    ids = [uuid7() for _ in range(REQUESTS)]
    producer = RecordProducer(settings)
    await producer.start()
    try:
        sends = []
        for n, rid in enumerate(ids):
            t0 = now_ms()
            timings = tuple(LaneTiming(lane=lane, status="ok", started_at=t0 + i,
                                       duration_ms=0.5 + n) for i, lane in enumerate(LANES))
            for t in timings:
                sends.append(producer.send("events", rid, Event(
                    event_id=f"{rid}/lane/{t.lane}", kind="lane", request_id=rid,
                    identity_id="identity-alice", ts=t.started_at,
                    lane=LaneEvent(lane=t.lane, status=t.status, started_at=t.started_at,
                                   duration_ms=t.duration_ms, worker="worker-test"))))
            sends.append(producer.send("completed", rid, PipelineRecord(
                request_id=rid, identity_id="identity-alice", user_id="user-alice",
                submitted_at=t0, prompt="Summarise this thread", status="completed",
                lanes=timings)))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return ids


def snapshot(ch: ClickHouse) -> dict[str, Any]:
    lanes, requests = f"{ch.database}.lane_events FINAL", f"{ch.database}.requests FINAL"
    return {
        "lane_events": ch.scalar(f"SELECT count() FROM {lanes}"),  # noqa: S608
        "requests": ch.scalar(f"SELECT count() FROM {requests}"),  # noqa: S608
        "lane_rows": ch.query(
            "SELECT request_id, lane, status, duration_ms, worker, version "  # noqa: S608
            f"FROM {lanes} ORDER BY request_id, lane")[1],
        "request_rows": ch.query(
            "SELECT request_id, status, latency_ms, completed_at, version "  # noqa: S608
            f"FROM {requests} ORDER BY request_id")[1],
    }


async def consume_everything(settings: Settings, ch: ClickHouse, group: str) -> SinkRunner:
    """Run a sink with ``group`` until it has written every record once, then stop it cleanly."""
    runner = SinkRunner(settings, ClickHouseSink(ch), None, group=group)
    task = asyncio.create_task(runner.run())
    try:
        async def written() -> bool:
            if task.done():
                task.result()  # surface a crashed sink instead of timing out
            return runner.records_written >= RECORDS

        await eventually(written, 60, message=f"sink group {group} to write {RECORDS} records")
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)
    return runner


async def rewind(settings: Settings, group: str) -> None:
    """Commit offset 0 for ``group`` on every partition of the sink's source topics."""
    consumer = kafka_consumer(settings, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(settings.topic(t), p) for t in ("events", "completed")
                 for p in range(settings.topic_partitions)]
        consumer.assign(parts)
        await consumer.commit(dict.fromkeys(parts, 0))
    finally:
        await consumer.stop()


async def test_consuming_the_same_records_twice_changes_no_count(
    settings: Settings, clickhouse: ClickHouse,
):
    ch = clickhouse.with_database(settings.clickhouse_database)
    await asyncio.to_thread(migrate, ch)
    await ensure_topics(settings)
    ids = await produce_history(settings)

    group = f"{settings.topic_prefix}-sink-test"
    first = await consume_everything(settings, ch, group)
    assert first.records_written == RECORDS
    before = await asyncio.to_thread(snapshot, ch)
    assert before["lane_events"] == REQUESTS * len(LANES)
    assert before["requests"] == REQUESTS
    assert {r[0] for r in before["request_rows"]} == set(ids)

    # The same group, rewound to the start (a sink that crashed before committing anything).
    await rewind(settings, group)
    again = await consume_everything(settings, ch, group)
    assert again.records_written == RECORDS  # every row really was inserted a second time
    assert await asyncio.to_thread(snapshot, ch) == before

    # A brand-new group (a replay, or a sink whose offsets were lost) reads it all a third time.
    fresh = await consume_everything(settings, ch, f"{group}-fresh")
    assert fresh.records_written == RECORDS
    assert await asyncio.to_thread(snapshot, ch) == before
