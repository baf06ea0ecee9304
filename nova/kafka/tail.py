"""Reading Nova's topics outside a lane: one way to build, decode and stop the consumer.

:func:`open_reader` is how every process reads a topic it does not process as a Faust lane: the
gateway's read models, the entity store, the spend tracker, lane G's chain heads, the audit
verifier, replay, the sink, the gateway's alert dispatcher and the worker's entity guard. It
builds the consumer with the process's credentials (``nova.kafka.clients``), starts it (one that
cannot start is closed again), and either assigns every partition of the topics, from fresh
metadata, or joins a group that shares them; offsets are never committed behind the caller's
back. The :class:`TopicReader` it returns decodes a record with its topic's contract
(``schemas``) and closes the consumer whatever state the broker is in. Where a reader starts
reading, how far, and whether it commits stay with the caller.

:class:`TopicTail` is a read model fed by tailing topics: every partition, no consumer group,
one task.

Each gateway process keeps its own views (request status, checkpoints), so every replica
must see every partition: no group, all partitions assigned. ``start`` positions the consumer
(at the end for live-only views, at the beginning for views that must know the past, reading
up to the current end before returning), then a task applies records as they arrive. A view
that must know only a recent past (the idempotency index: a day of keys) overrides
:meth:`TopicTail.since_ms` and starts at the first record of that time instead of offset 0. A
record that does not decode is skipped with a debug line: a read model must keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Literal, Self

from aiokafka import AIOKafkaConsumer, TopicPartition

from nova.errors import ConfigError, SchemaError
from nova.kafka.admin import all_partitions
from nova.kafka.clients import kafka_consumer, start_client, stop_client
from nova.settings import Settings
from schemas import TOPICS, SchemaSet, load_schema_set

log = logging.getLogger(__name__)


def decode_value(schemas: SchemaSet, topic: str, message: Any) -> dict[str, Any]:
    """The value of ``message``, a record of logical ``topic``, decoded with its contract."""
    codec = schemas[TOPICS[topic].value_schema]
    return codec.decode(message.value, message.headers)


class TopicReader:
    """A started consumer over some of Nova's topics (:func:`open_reader`); close it once.

    ``consumer`` is aiokafka's, for positioning, offsets and commits; ``parts`` the partitions
    assigned (none in a group, whose coordinator assigns them, or with ``assign=False``).
    """

    def __init__(self, consumer: AIOKafkaConsumer, schemas: SchemaSet,
                 names: Mapping[str, str], parts: list[TopicPartition]) -> None:
        self.consumer = consumer
        self.schemas = schemas
        self.names = dict(names)  # Kafka topic name -> logical name
        self.parts = parts

    def logical(self, topic: str) -> str:
        """The logical name (``events``) of a Kafka topic name (``nova.events``)."""
        return self.names[topic]

    def decode(self, message: Any) -> dict[str, Any]:
        """The value of ``message`` decoded with its topic's contract (``SchemaError`` if not)."""
        return decode_value(self.schemas, self.logical(message.topic), message)

    async def poll(self, timeout_ms: int, max_records: int) -> list[tuple[str, list[Any]]]:
        """One fetch: (logical topic, that partition's records in offset order) pairs."""
        polled = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [(self.names[tp.topic], messages) for tp, messages in polled.items()]

    async def close(self) -> None:
        await stop_client(self.consumer)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


# What a fetch of a reader that may lag waits for on the broker (with its fetch wait as the
# bound): a fetch answered at each record's arrival (aiokafka's 1 byte) costs its process a
# decoded fetch response per record on a busy topic, and the broker a request per record.
BATCHED_FETCH_BYTES: Final = 1 << 20
# Their fetch wait, the most such a reader lags a quiet topic: a reader that learns of what
# other processes did (spend, alerts, keys) sees it a quarter of a second later at most.
LAGGING_FETCH_WAIT_MS: Final = 250


async def open_reader(
    settings: Settings,
    topics: Iterable[str],
    schemas: SchemaSet | None = None,
    *,
    group_id: str | None = None,
    assign: bool = True,
    **options: Any,
) -> TopicReader:
    """A started consumer over the logical ``topics``.

    With ``group_id`` it subscribes and the group shares the partitions; without, it is
    assigned every partition the cluster has (``parts`` empty when none of the topics exist:
    the caller says what that means), or none with ``assign=False`` (a client that only asks
    for offsets, or assigns one partition itself). Auto-commit is off and a partition without
    an offset starts at its earliest record unless ``options`` (aiokafka's) say otherwise.
    """
    names = {settings.topic(t): t for t in topics}
    options = {"enable_auto_commit": False, "auto_offset_reset": "earliest", **options}
    subscribed = tuple(names) if group_id is not None else ()
    consumer = kafka_consumer(settings, *subscribed, group_id=group_id, **options)
    await start_client(consumer)
    try:
        parts = await all_partitions(consumer, names) if assign and group_id is None else []
        if parts:
            consumer.assign(parts)
    except BaseException:
        await stop_client(consumer)
        raise
    return TopicReader(consumer, schemas or load_schema_set(), names, parts)


class TopicTail(ABC):
    """Override :meth:`apply`; ``TOPICS`` names the logical topics to tail."""

    TOPICS: tuple[str, ...] = ()
    START: Literal["beginning", "end"] = "end"
    MAX_RECORDS: int = 5000  # per poll: a view whose apply wakes other tasks polls fewer

    def __init__(self, settings: Settings, schemas: SchemaSet) -> None:
        self.settings = settings
        self.schemas = schemas
        self._names = {settings.topic(t): t for t in self.TOPICS}
        self._task: asyncio.Task[None] | None = None
        self._reader: TopicReader | None = None

    @abstractmethod
    def apply(self, topic: str, data: dict[str, Any]) -> None:
        """Fold one decoded record of logical ``topic`` into the view."""

    def apply_message(self, topic: str, message: Any) -> None:
        """Fold one raw record; the default decodes its value and calls :meth:`apply`. A view
        that needs only a record's headers (or decodes lazily) overrides this instead."""
        self.apply(topic, self.decode(topic, message))

    def fetch_max_wait_ms(self) -> int:
        """How long a fetch may wait on the broker: aiokafka's 500 ms, or less for a view on a
        client's hot path (see ``Settings.kafka_fetch_max_wait_ms``)."""
        return 500

    def fetch_min_bytes(self) -> int:
        """How much a fetch waits for (up to :meth:`fetch_max_wait_ms`): 1 byte, an answer at
        each record's arrival, or :data:`BATCHED_FETCH_BYTES` for a view that may lag."""
        return 1

    def since_ms(self) -> int | None:
        """With ``START = "beginning"``: the time (epoch ms) of the oldest record wanted, or
        None for every record."""
        return None

    async def start(self) -> None:
        reader = await open_reader(self.settings, self.TOPICS, self.schemas, assign=False,
                                   fetch_max_wait_ms=self.fetch_max_wait_ms(),
                                   fetch_min_bytes=self.fetch_min_bytes())
        consumer = reader.consumer
        try:
            parts = await all_partitions(consumer, self._names)
            if not parts:
                raise ConfigError(f"topics {sorted(self._names)} do not exist; create them first")
            # Offsets are looked up before the partitions are assigned: an assigned consumer
            # long-polls the broker, and a broker answers one request of a connection at a
            # time, so each lookup would wait behind a fetch (up to fetch_max_wait_ms).
            ends = await consumer.end_offsets(parts)
            starts = ends if self.START == "end" else await _start_offsets(
                consumer, parts, self.since_ms(), ends)
            consumer.assign(parts)
            reader.parts = parts
            for tp in parts:
                consumer.seek(tp, starts[tp])
            while await _behind(consumer, parts, ends):
                self._apply_batch(await consumer.getmany(timeout_ms=500, max_records=5000))
        except BaseException:
            await reader.close()
            raise
        self._reader = reader
        self._task = asyncio.create_task(self._run(consumer), name=type(self).__name__)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._reader is not None:
            await self._reader.close()
            self._reader = None

    def decode(self, topic: str, message: Any) -> dict[str, Any]:
        """The value of ``message`` (a record of logical ``topic``), decoded with its codec."""
        return decode_value(self.schemas, topic, message)

    def apply_polled(self, polled: list[tuple[str, list[Any]]]) -> None:
        """Fold one poll: (logical topic, that partition's records in offset order) pairs.

        The default hands each record to :meth:`apply_message`, skipping what does not decode.
        A view that needs a record's coordinates (partition, offset, timestamp, headers) or an
        order across partitions overrides this instead.
        """
        for topic, messages in polled:
            for msg in messages:
                try:
                    self.apply_message(topic, msg)
                except (SchemaError, ValueError) as exc:
                    log.debug("%s skipped %s[%s]@%s: %s", type(self).__name__, topic,
                              msg.partition, msg.offset, exc)

    def _apply_batch(self, polled: dict[TopicPartition, list[Any]]) -> None:
        self.apply_polled([(self._names[tp.topic], messages) for tp, messages in polled.items()])

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                self._apply_batch(await consumer.getmany(timeout_ms=1000,
                                                         max_records=self.MAX_RECORDS))
                await asyncio.sleep(0)  # records already fetched come back without a yield
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: poll failed", type(self).__name__)
                await asyncio.sleep(1)


async def _start_offsets(
    consumer: AIOKafkaConsumer, parts: list[TopicPartition], since_ms: int | None,
    ends: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Each partition's first record written at or after ``since_ms`` (its end when it has
    none that recent), or its beginning when ``since_ms`` is None."""
    if since_ms is None:
        return dict(await consumer.beginning_offsets(parts))
    found = await consumer.offsets_for_times({tp: since_ms for tp in parts})
    return {tp: ends[tp] if found.get(tp) is None else found[tp].offset for tp in parts}


async def _behind(consumer: AIOKafkaConsumer, parts: list[TopicPartition],
                  ends: dict[TopicPartition, int]) -> bool:
    """Whether a partition's position (seeked, so known without a lookup) is short of its
    end; on a transactional topic the position steps over the commit markers too."""
    for tp in parts:
        if await consumer.position(tp) < ends[tp]:
            return True
    return False
