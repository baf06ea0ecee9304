"""The sink: Kafka topics → ClickHouse tables, in batches, at least once, idempotent.

Shape borrowed from quix-streams' ``BatchingSink``: the runner accumulates rows and calls
``write(batch)`` when the batch is large enough or old enough, and commits the consumed
offsets only after ``write`` returned, so nothing is lost on a crash. Re-consumed offsets
produce the same rows (``analytics.rows`` is pure, and so are the materialized views that map
the events topic, whose records ClickHouse decodes itself: ``analytics.avro_load``), and every
table is a ReplacingMergeTree
keyed by the row's identity, so consuming the same offsets twice never duplicates a row
(queries read with FINAL). A ``write`` that raises :class:`SinkBackpressure` pauses the
partitions and retries the same batch later instead of dropping it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from analytics.avro_load import SETTINGS, TABLE, Encoded, EncodedEvents, events_codec, undecodable
from analytics.client import ClickHouse
from analytics.rows import (
    COLUMNS,
    LOADED_ENCODED,
    SOURCE_TOPICS,
    Position,
    Row,
    TableRows,
    message_rows,
)
from nova.errors import NovaError, SchemaError
from nova.kafka.producer import RecordProducer
from nova.kafka.tail import BATCHED_FETCH_BYTES, open_reader
from nova.records import DeadLetter, now_ms
from nova.settings import Settings
from schemas import SchemaSet, load_schema_set
from schemas.codec import AvroCodec

log = logging.getLogger(__name__)


class SinkBackpressure(NovaError):
    """The destination cannot take the batch now; the runner pauses and retries it."""

    retriable = True


class Batch:
    """Rows per table, the events records ClickHouse will map, and the offsets they came from.

    ``size`` is what the batch weighs against the batch size: a row for each row mapped here,
    one for each events record (four rows on average). ``records`` counts the source records
    it lands; ``rejected`` holds the events records found undecodable while it was written.
    """

    def __init__(self) -> None:
        self.tables: dict[str, list[Row]] = defaultdict(list)
        self.events = EncodedEvents()
        self.rejected: list[tuple[Encoded, SchemaError]] = []
        self.offsets: dict[TopicPartition, int] = {}
        self.size = 0
        self.records = 0
        self.started = time.monotonic()

    def add(self, table: str, row: Row) -> None:
        self.tables[table].append(row)
        self.size += 1

    def add_rows(self, rows: TableRows) -> None:
        for table, row in rows:
            self.add(table, row)
        self.records += 1

    def add_encoded(self, codec: AvroCodec, record: Encoded) -> None:
        """SchemaError when the record cannot be loaded at all (see ``EncodedEvents.add``)."""
        self.events.add(codec, record)
        self.size += 1
        self.records += 1


def encoded(msg: ConsumerRecord[Any, Any]) -> Encoded:
    return Encoded(value=msg.value, topic=msg.topic, partition=msg.partition, offset=msg.offset,
                   key=msg.key,
                   headers=tuple((k, bytes(v)) for k, v in (msg.headers or ()) if v is not None))


class BatchingSink(ABC):
    """Override :meth:`write`; it must land the whole batch or raise."""

    @abstractmethod
    async def write(self, batch: Batch) -> None: ...


class ClickHouseSink(BatchingSink):
    """One insert per table per batch (ClickHouse wants few, large inserts), and one of the
    events records per writer schema."""

    def __init__(self, ch: ClickHouse, schemas: SchemaSet | None = None) -> None:
        self.ch = ch
        self.codec = events_codec(schemas or load_schema_set())

    async def write(self, batch: Batch) -> None:
        for table, rows in batch.tables.items():
            try:
                await self.ch.ainsert(table, rows, COLUMNS[table])
            except Exception as exc:
                raise SinkBackpressure(f"insert into {table} failed: {exc}") from exc
        await self._load(batch)

    async def _load(self, batch: Batch) -> None:
        """Load the batch's events records; a record ClickHouse cannot decode moves to
        ``batch.rejected`` and the others are loaded again without it (rows are idempotent)."""
        while len(batch.events):
            try:
                for data in batch.events.containers(self.codec):
                    await self.ch.ainsert_encoded(TABLE, data, "Avro", SETTINGS)
                return
            except Exception as exc:
                bad = await asyncio.to_thread(undecodable, self.codec, batch.events)
                if not bad:
                    raise SinkBackpressure(f"insert into {TABLE} failed: {exc}") from exc
                batch.events.remove([record for record, _ in bad])
                batch.rejected.extend(bad)


def fetch_wait_ms(settings: Settings) -> int:
    """How long a fetch of the sink may be parked for a batch's worth of bytes
    (``BATCHED_FETCH_BYTES``): no longer than a flush interval, as the sink writes once per
    interval anyway."""
    return max(1, int(settings.sink_flush_interval_s * 1000))


class SinkRunner:
    """Consume ``topics`` with consumer group ``group`` and feed ``sink``."""

    def __init__(
        self,
        settings: Settings,
        sink: BatchingSink,
        dead_letters: RecordProducer | None,
        *,
        topics: tuple[str, ...] = SOURCE_TOPICS,
        group: str | None = None,
        schemas: SchemaSet | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.dead_letters = dead_letters
        self.topics = topics
        self.group = group or f"{settings.topic_prefix}-sink-{settings.clickhouse_database}"
        self.schemas = schemas or load_schema_set()
        self._by_kafka_name = {settings.topic(t): t for t in topics}
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self.codec = events_codec(self.schemas)
        self.records_written = 0  # source records whose rows are landed and committed
        self.messages_consumed = 0
        self.committed: dict[TopicPartition, int] = {}
        self.consumed: dict[TopicPartition, int] = {}

    async def run(self) -> None:
        async with await open_reader(
            self.settings, self.topics, self.schemas, group_id=self.group,
            max_poll_records=self.settings.sink_batch_size, isolation_level="read_committed",
            fetch_min_bytes=BATCHED_FETCH_BYTES, fetch_max_wait_ms=fetch_wait_ms(self.settings),
            max_partition_fetch_bytes=4 * BATCHED_FETCH_BYTES,
        ) as reader:
            self._consumer = reader.consumer
            await self._loop(reader.consumer)

    def stop(self) -> None:
        self._stopping.set()

    async def lag(self) -> int | None:
        """Messages not yet landed and committed, or None before partitions are assigned.

        Lets tests and operators wait for "the sink has caught up" instead of sleeping.
        """
        consumer = self._consumer
        if consumer is None or not consumer.assignment():
            return None
        ends = await consumer.end_offsets(list(consumer.assignment()))
        behind = 0
        for tp, end in ends.items():
            done = self.committed.get(tp)
            if done is None:
                done = await consumer.committed(tp) or 0
            if done == self.consumed.get(tp, done):
                # Everything read is landed. A transactional topic (the audit chain) ends in a
                # commit marker no record carries; the position has stepped over it.
                done = max(done, await consumer.position(tp))
            behind += max(end - done, 0)
        return behind

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        batch = Batch()
        interval = self.settings.sink_flush_interval_s
        while not self._stopping.is_set():
            polled = await consumer.getmany(timeout_ms=int(interval * 1000),
                                            max_records=self.settings.sink_batch_size)
            for tp, messages in polled.items():
                for msg in messages:
                    await self._add(batch, msg)
                    batch.offsets[tp] = msg.offset + 1
                self.consumed[tp] = batch.offsets[tp]
            due = time.monotonic() - batch.started >= interval
            if batch.offsets and (batch.size >= self.settings.sink_batch_size or due):
                await self._flush(consumer, batch)
                batch = Batch()
            elif not batch.offsets:
                batch.started = time.monotonic()
        if batch.offsets:
            await self._flush(consumer, batch)

    async def _add(self, batch: Batch, msg: ConsumerRecord[Any, Any]) -> None:
        topic = self._by_kafka_name[msg.topic]
        self.messages_consumed += 1
        try:
            if topic == LOADED_ENCODED:
                batch.add_encoded(self.codec, encoded(msg))
                return
            rows = message_rows(self.schemas, topic, msg.value, msg.headers,
                                Position(msg.partition, msg.offset))
        except (SchemaError, ValueError) as exc:
            await self._dead_letter(encoded(msg), exc)
            return
        batch.add_rows(rows)

    async def _flush(self, consumer: AIOKafkaConsumer, batch: Batch) -> None:
        delay = 0.2
        while True:
            try:
                await self.sink.write(batch)
                break
            except SinkBackpressure as exc:
                log.warning("sink: %s; pausing %.1fs", exc, delay)
                parts = list(batch.offsets)
                consumer.pause(*parts)
                await asyncio.sleep(delay)
                consumer.resume(*parts)
                delay = min(delay * 2, 10.0)
        for record, reason in batch.rejected:  # their offsets are committed: letter them now
            await self._dead_letter(record, reason)
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in batch.offsets.items()})
        self.committed.update(batch.offsets)
        self.records_written += batch.records - len(batch.rejected)

    async def _dead_letter(self, msg: Encoded, exc: Exception) -> None:
        log.warning("sink: dead-lettering %s/%s/%s: %s", msg.topic, msg.partition, msg.offset, exc)
        if self.dead_letters is None:
            return
        letter = DeadLetter(
            source_topic=msg.topic, partition=msg.partition, offset=msg.offset,
            key=msg.key, value=msg.value, headers=dict(msg.headers),
            lane="sink", error_type=type(exc).__name__, reason=str(exc)[:2000],
            failed_at=now_ms(),
        )
        key = f"{msg.topic}/{msg.partition}/{msg.offset}"
        await self.dead_letters.send("deadletter", key, letter)
