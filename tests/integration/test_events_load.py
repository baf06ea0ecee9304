"""The events topic lands through ClickHouse's own Avro decoder (analytics.avro_load).

The sink hands ClickHouse the events records as they are on Kafka, and migration 0009's
materialized views map them to rows. These tests state what those rows are for every kind of
event and every kept writer schema, that ``events_in`` is the Event schema as ClickHouse reads
it, and that a record ClickHouse cannot decode is dead-lettered with its bytes while the rest
of its batch lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest

from analytics.avro_load import SETTINGS, TABLE, container, events_codec
from analytics.client import ClickHouse
from analytics.migrate import migrate
from analytics.replay import replay_into
from analytics.rows import COLUMNS
from analytics.sink import ClickHouseSink, SinkRunner
from nova.ids import uuid7
from nova.kafka.clients import kafka_producer
from nova.kafka.producer import RecordProducer
from nova.records import Alert, DeadLetter, Event, LaneEvent, LlmCall
from nova.settings import Settings
from schemas import load_schema_set
from schemas.codec import SCHEMA_HEADER, VERSIONS_DIR, schema_fingerprint
from tests.integration.conftest import eventually
from tests.integration.pipeline_checks import read_records

pytestmark = pytest.mark.integration

RID = uuid7(1_735_689_600_000)  # 2025-01-01T00:00:00Z
CODEC = events_codec(load_schema_set())


@pytest.fixture
def db(clickhouse: ClickHouse) -> Iterator[ClickHouse]:
    ch = clickhouse.with_database(f"t_load_{uuid.uuid4().hex[:10]}")
    migrate(ch)
    yield ch
    ch.command(f"DROP DATABASE IF EXISTS {ch.database}")


def load(ch: ClickHouse, *events: Event) -> None:
    data = container(CODEC.current, (CODEC.encode(e.to_avro()) for e in events))
    ch.insert_encoded(TABLE, data, "Avro", SETTINGS)


def rows(ch: ClickHouse, table: str) -> list[dict[str, Any]]:
    cols = COLUMNS[table]
    found = ch.query(f"SELECT {', '.join(cols)} FROM {ch.database}.{table} "  # noqa: S608
                     f"ORDER BY {cols[0]}, ts")[1]
    return [dict(zip(cols, r, strict=True)) for r in found]


def at(ms: int) -> datetime:
    """As a query gives a DateTime64(3, 'UTC') back: naive, in UTC."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(tzinfo=None)


LANE_B = LaneEvent(lane="B", status="error", started_at=1_735_689_650_000, duration_ms=2.5,
                   worker="w1", error="boom")


def without_nullable(type_name: str) -> str:
    """``Nullable(T)`` as ``T``, at any depth, without spaces: events_in's sections are Tuples
    of Nullable elements where ClickHouse infers a Nullable Tuple (migration 0009 says why)."""
    out, closing, i = [], [], 0
    text = "".join(type_name.split())
    while i < len(text):
        if text.startswith("Nullable(", i):
            closing.append(True)
            i += len("Nullable(")
            continue
        ch = text[i]
        if ch == "(":
            closing.append(False)
        elif ch == ")" and closing.pop():
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def test_events_in_is_the_event_schema_as_clickhouse_reads_it(db: ClickHouse,
                                                              tmp_path: Path) -> None:
    """Every field of the current Event schema has its column, of the type ClickHouse infers
    (up to Nullable): a field added to the schema without its column fails here."""
    path = tmp_path / "one.avro"
    path.write_bytes(container(CODEC.current, [CODEC.encode(Event(
        event_id="e", kind="lane", request_id=RID, identity_id="i", ts=1).to_avro())]))
    inferred = db.query(f"DESCRIBE file('{path}', 'Avro')")[1]
    table = [r for r in db.query(f"DESCRIBE TABLE {db.database}.events_in")[1]
             if r[2] != "MATERIALIZED"]  # computed by ClickHouse, not read from the records

    assert [(r[0], without_nullable(r[1])) for r in table] == [
        (r[0], without_nullable(r[1])) for r in inferred]
    assert without_nullable("Nullable(Tuple(a Nullable(String), b Array(Int64)))") == \
        "Tuple(aString,bArray(Int64))"


def test_a_lane_event_is_a_row_dated_by_its_request_id(db: ClickHouse) -> None:
    load(db, Event(event_id=f"{RID}/lane/B", kind="lane", request_id=RID, identity_id="id-1",
                   ts=1_735_689_700_000, lane=LANE_B))
    [r] = rows(db, "lane_events")
    assert r == {
        "request_id": RID, "identity_id": "id-1", "sphere_id": None, "lane": "B",
        "status": "error", "started_at": at(1_735_689_650_000), "duration_ms": 2.5,
        "worker": "w1", "error": "boom", "request_ts": at(1_735_689_600_000),
        "ts": at(1_735_689_700_000), "version": 1_735_689_700_000,
    }


def test_a_lanes_event_is_one_row_per_lane_as_the_single_lane_events_of_before(
        db: ClickHouse) -> None:
    lanes = tuple(LaneEvent(lane=code, status=status, started_at=1_735_689_650_000 + i,
                            duration_ms=1.0 + i, worker=f"w{i % 2}",
                            error="boom" if status == "error" else None)
                  for i, (code, status) in enumerate([("A", "ok"), ("B", "ok"), ("C", "error")]))
    load(db, Event(event_id=f"{RID}/lanes/3", kind="lanes", request_id=RID, identity_id="id-1",
                   ts=1_735_689_700_000, lanes=lanes))
    batch = rows(db, "lane_events")
    singles = db.with_database(f"{db.database}_singles")
    migrate(singles)
    try:
        load(singles, *(Event(event_id=f"{RID}/lane/{ln.lane}", kind="lane", request_id=RID,
                              identity_id="id-1", ts=1_735_689_700_000, lane=ln) for ln in lanes))
        assert batch == rows(singles, "lane_events")
    finally:
        singles.command(f"DROP DATABASE IF EXISTS {singles.database}")
    assert [(r["lane"], r["worker"], r["error"]) for r in batch] == [
        ("A", "w0", None), ("B", "w1", None), ("C", "w0", "boom")]


def test_an_llm_event_keeps_every_attempt_field(db: ClickHouse) -> None:
    call = LlmCall(provider="openai", model="gpt", role="member", task_type="code", tokens_in=10,
                   tokens_out=20, cost_usd=0.002, latency_ms=123.0, attempt=2,
                   fallback_from="anthropic", status="error", error="429")
    load(db, Event(event_id=f"{RID}/llm/2", kind="llm", request_id=RID, identity_id="id-1",
                   ts=1_735_689_700_000, llm=call))
    [r] = rows(db, "llm_calls")
    assert r == {
        "request_id": RID, "identity_id": "id-1", "sphere_id": None, "provider": "openai",
        "model": "gpt", "role": "member", "task_type": "code", "tokens_in": 10,
        "tokens_out": 20, "cost_usd": 0.002, "latency_ms": 123.0, "attempt": 2,
        "fallback_from": "anthropic", "status": "error", "error": "429",
        "request_ts": at(1_735_689_600_000), "ts": at(1_735_689_700_000),
        "version": 1_735_689_700_000,
    }
    assert rows(db, "lane_events") == []
    assert rows(db, "alerts") == []


def test_an_alert_is_a_row_and_an_event_without_a_section_is_none(db: ClickHouse) -> None:
    load(db,
         Event(event_id="e1", kind="alert", request_id="probe", identity_id="id-1", ts=5_000,
               alert=Alert(alert_type="budget", subject="id-1", message="80%")),
         Event(event_id="e2", kind="lane", request_id=RID, identity_id="i", ts=6_000))
    assert rows(db, "alerts") == [{
        "event_id": "e1", "request_id": "probe", "identity_id": "id-1", "alert_type": "budget",
        "subject": "id-1", "message": "80%", "severity": "warning", "ts": at(5_000),
        "version": 5_000,
    }]
    assert rows(db, "lane_events") == []
    assert rows(db, "llm_calls") == []


@pytest.mark.parametrize("request_id", [
    "probe-1", "6f1c2b1e-4a57-4c1e-9a0b-3d2f5e6a7b8c", RID.upper()[:-1] + "x",
], ids=["no uuid", "uuid4", "not hex"])
def test_an_id_that_is_no_uuid7_dates_its_rows_by_the_event(db: ClickHouse,
                                                           request_id: str) -> None:
    load(db, Event(event_id="e", kind="lane", request_id=request_id, identity_id="i",
                   ts=1_700_000_000_123, lane=LANE_B))
    [r] = rows(db, "lane_events")
    assert r["request_ts"] == at(1_700_000_000_123)


def test_a_lane_event_written_with_the_first_event_schema_still_lands(db: ClickHouse) -> None:
    v1 = fastavro.parse_schema(json.loads((VERSIONS_DIR / "event.v1.avsc").read_text()))
    data = Event(event_id="e1", kind="lane", request_id=RID, identity_id="i", ts=1,
                 lane=LANE_B).to_avro()
    del data["lanes"]
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v1, data)
    assert schema_fingerprint(v1) in CODEC.writers
    db.insert_encoded(TABLE, container(v1, [buf.getvalue()]), "Avro", SETTINGS)
    [r] = rows(db, "lane_events")
    assert (r["lane"], r["error"], r["request_ts"]) == ("B", "boom",
                                                        at(1_735_689_600_000))


async def test_an_undecodable_event_is_dead_lettered_with_its_bytes_and_the_rest_lands(
        settings: Settings, clickhouse: ClickHouse) -> None:
    ch = clickhouse.with_database(settings.clickhouse_database)
    await asyncio.to_thread(migrate, ch)
    good = [Event(event_id=f"{rid}/lane/B", kind="lane", request_id=rid, identity_id="i",
                  ts=1_000 + n, lane=LANE_B) for n, rid in enumerate(uuid7() for _ in range(6))]
    whole = CODEC.encode(good[0].to_avro())
    hostile = {  # key -> (value, headers)
        "truncated": (whole[:len(whole) // 2], [CODEC.header]),
        "garbage": (b"\xff" * 40, [CODEC.header]),
        "tombstone": (None, [CODEC.header]),
        "unknown-writer": (whole, [(SCHEMA_HEADER, b"0123456789abcdef")]),
        "no-header": (whole, []),
    }
    raw = kafka_producer(settings)
    producer = RecordProducer(settings)
    await raw.start()
    await producer.start()
    try:
        for n, event in enumerate(good):
            await producer.send("events", event.request_id, event)
            if n < len(hostile):  # interleaved, so bad and good records share batches
                key = list(hostile)[n]
                value, headers = hostile[key]
                await raw.send_and_wait(settings.topic("events"), value, key=key.encode(),
                                        headers=headers)
    finally:
        await raw.stop()
    runner = SinkRunner(settings, ClickHouseSink(ch), producer, topics=("events",),
                        group=f"{settings.topic_prefix}-sink-load")
    task = asyncio.create_task(runner.run())
    try:
        async def caught_up() -> bool:
            if task.done():
                task.result()
            return runner.messages_consumed == len(good) + len(hostile) \
                and await runner.lag() == 0

        await eventually(caught_up, 60, message="the sink to land every events record")
    finally:
        runner.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        await producer.stop()

    assert runner.records_written == len(good)
    landed = {r["request_id"] for r in rows(ch, "lane_events")}
    assert landed == {e.request_id for e in good}
    letters = {d.key.decode(): d for d in await read_records(settings, "deadletter", DeadLetter)
               if d.key is not None and d.lane == "sink"}
    assert set(letters) == set(hostile)
    for key, (value, _) in hostile.items():
        assert letters[key].value == value, key  # the original bytes, to replay once fixed
        assert letters[key].source_topic == settings.topic("events")
        assert letters[key].reason, key

    # replay meets the same records: it skips the bad ones and rebuilds the good rows
    replayed = clickhouse.with_database(f"{settings.clickhouse_database}_replay")
    report = await replay_into(settings, replayed, topics=("events",))
    try:
        assert report.undecodable == len(hostile)
        assert report.rows["lane_events"] == len(good)
        assert rows(replayed, "lane_events") == rows(ch, "lane_events")
    finally:
        replayed.command(f"DROP DATABASE IF EXISTS {replayed.database}")
