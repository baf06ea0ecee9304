"""What the pipeline tests read back: whole topics from Kafka and lane rows from ClickHouse.

Every check reads what the system recorded (a topic from offset 0, a ClickHouse table with
FINAL), never what the test believes it sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import TopicPartition

from analytics.client import ClickHouse
from nova.kafka.clients import kafka_admin, kafka_consumer
from nova.settings import Settings
from schemas import TOPICS, load_schema_set

LANES = tuple("ABCDEFG")
# Harmless prompts: no declared action, nothing a governance rule should hold or deny.
PROMPTS = (
    "Summarise this thread",
    "Summarise this thread about the Q3 roadmap",
    "Translate 'good morning' into French",
    "Write a short poem about the sea",
)
# Where a harmless request may legitimately end once the lanes are filled in.
DONE = ("completed",)


@dataclass(frozen=True)
class Raw:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int


async def read_topic(settings: Settings, name: str) -> list[Raw]:
    """Every committed record on ``name`` from offset 0 up to the end offsets at the time of
    the call (``read_committed``: the audit writers' aborted records are not part of the log)."""
    topic = settings.topic(name)
    consumer = kafka_consumer(settings, group_id=None, isolation_level="read_committed",
                              enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        # ensure_topics created every topic with this many partitions
        parts = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        out: list[Raw] = []
        remaining = {tp for tp in parts if end[tp] > 0}
        while remaining:
            polled = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in polled.items():
                for m in messages:
                    if m.offset < end[tp]:
                        out.append(Raw(m.key, m.value, {k: bytes(v) for k, v in m.headers},
                                       m.partition, m.offset))
            for tp in list(remaining):  # transaction markers take offsets but are no records
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return out
    finally:
        await consumer.stop()


async def read_records(settings: Settings, name: str, cls: Any) -> list[Any]:
    """``read_topic`` decoded with the topic's codec into ``cls`` (a record class)."""
    codec = load_schema_set()[TOPICS[name].value_schema]
    return [cls.from_avro(codec.decode(r.value, r.headers))
            for r in await read_topic(settings, name)]


async def post_requests(gateway: Any, n: int, identity: str = "identity-alice") -> list[str]:
    """Submit ``n`` harmless requests over HTTP (ten at a time, each answered 202 at once);
    return their ids in order."""
    headers = {**gateway.auth(identity, "member"), "Prefer": "respond-async"}
    http: httpx.AsyncClient = gateway.http
    sem = asyncio.Semaphore(10)

    async def one(i: int) -> str:
        async with sem:
            r = await http.post("/api/v2/nova/requests",
                                json={"prompt": PROMPTS[i % len(PROMPTS)]}, headers=headers)
        assert r.status_code == 202, r.text
        return str(r.json()["request_id"])

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def lane_counts(ch: ClickHouse, request_ids: list[str]) -> dict[str, int]:
    """Rows in ``lane_events`` for these requests: deduplicated (FINAL), distinct keys, raw."""
    params = {"ids": request_ids}
    table = f"{ch.database}.lane_events"
    where = "WHERE request_id IN %(ids)s"
    final = ch.scalar(f"SELECT count() FROM {table} FINAL {where}", params)  # noqa: S608
    distinct = ch.scalar(f"SELECT uniqExact(request_id, lane) FROM {table} {where}",  # noqa: S608
                         params)
    raw = ch.scalar(f"SELECT count() FROM {table} {where}", params)  # noqa: S608
    return {"final": int(final or 0), "distinct": int(distinct or 0), "raw": int(raw or 0)}


def lanes_per_request(ch: ClickHouse, request_ids: list[str]) -> dict[str, str]:
    """request id → its lanes in ClickHouse (FINAL), concatenated in order, e.g. "ABCDEFG"."""
    _, rows = ch.query(
        "SELECT request_id, arrayStringConcat(arraySort(groupArray(lane))) "  # noqa: S608
        f"FROM {ch.database}.lane_events FINAL WHERE request_id IN %(ids)s GROUP BY request_id",
        {"ids": request_ids})
    return {str(r[0]): str(r[1]) for r in rows}


async def worker_lag(settings: Settings) -> dict[str, str]:
    """``topic[partition] -> committed/end`` for every lane topic where the worker group lags.

    Shown when a pipeline test times out, so the failure names the partition left unconsumed.
    """
    from schemas.topics import worker_app_id

    admin = kafka_admin(settings)
    consumer = kafka_consumer(settings, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(worker_app_id(settings.topic_prefix))
        parts = [TopicPartition(settings.topic(name), p)
                 for name in TOPICS for p in range(settings.topic_partitions)]
        end = await consumer.end_offsets(parts)
        lag: dict[str, str] = {}
        for tp in parts:
            meta = committed.get(tp)
            done = meta.offset if meta is not None else -1
            if tp in committed and done < end[tp]:
                lag[f"{tp.topic}[{tp.partition}]"] = f"{done}/{end[tp]}"
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def worker_group(settings: Settings) -> tuple[str, int]:
    """The worker group's state (``Stable``, ``PreparingRebalance``…) and its member count."""
    from schemas.topics import worker_app_id

    admin = kafka_admin(settings)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([worker_app_id(settings.topic_prefix)])
    finally:
        await admin.close()
    group = response.to_object()["groups"][0]
    return str(group["state"]), len(group["members"])


def finished(gateway: Any, ids: list[str]) -> int:
    """How many of ``ids`` the gateway's tracker has seen finish."""
    tracker = gateway.services.tracker
    return sum(1 for v in map(tracker.get, ids) if v is not None and v.finished)


async def first_finishes(gateway: Any, ids: list[str], timeout: float = 60) -> None:
    """Wait until one of ``ids`` has finished: records are then in flight in every lane."""
    from tests.integration.conftest import eventually

    async def any_finished() -> bool:
        return finished(gateway, ids) > 0

    await eventually(any_finished, timeout, 0.05, message="the first request to finish")


async def seven_lanes_each(
    gateway: Any, settings: Settings, ids: list[str], what: str, log: Any, timeout: float = 120
) -> dict[str, int]:
    """Wait for seven lane rows per request; on time-out say which requests and partitions lag.

    ``log`` gives the worker log to show (the last 3000 characters) when it times out.
    """
    from tests.integration.conftest import eventually

    ch = gateway.clickhouse
    latest: dict[str, int] = {}
    expected = 7 * len(ids)

    async def all_rows() -> dict[str, int] | None:
        latest.update(await asyncio.to_thread(lane_counts, ch, ids))
        return dict(latest) if latest["final"] >= expected else None

    try:
        counts: dict[str, int] = await eventually(all_rows, timeout, 0.5, message=what)
    except AssertionError as exc:
        lanes = await asyncio.to_thread(lanes_per_request, ch, ids)
        short = {rid: got for rid in ids if (got := lanes.get(rid, "")) != "".join(LANES)}
        raise AssertionError(f"{exc}; rows {latest}; incomplete requests {short}; "
                             f"worker group lag (committed/end) {await worker_lag(settings)}; "
                             f"worker log:\n{log()[-3000:]}") from None
    return counts
