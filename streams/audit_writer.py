"""The fenced writer of one audit partition: a Kafka transactional producer of its own.

Each audit partition is a hash chain (``nova.audit.chain``), so it must have exactly one writer:
two workers that both believe they own a partition (a rebalance, or a worker that was paused
and resumes as a zombie) would each append a successor to the same link and fork the chain.
Faust's producer cannot prevent that: it is not idempotent, and nothing stops a zombie's writes.

So each partition's records go through a transactional producer whose ``transactional.id`` is
the partition's (``schemas.topics.audit_writer_id``), the classic Kafka fencing (KIP-98; the
one-producer-per-input-partition scheme Kafka Streams used before KIP-447). Taking a partition
means ``InitProducerId`` with that id: the coordinator bumps the id's epoch, aborts whatever
transaction the previous holder left open, and from then on refuses the previous holder's
``AddPartitionsToTxn``, produce requests and commit. Only then is the chain head read, from
*committed* records (``read_committed``), so the head is the last link anyone can ever see, and
a zombie's late records are either refused or aborted. Every reader of the audit topic reads
``read_committed`` (``nova audit verify``, the sink, the replay), so aborted records are never
part of the chain.

Records are appended into an open transaction and committed in groups: the worker's consumer
commits its offsets once a second, and :meth:`PartitionWriter.commit` runs just before
(``streams.consumer``'s ``before_commit``). A source offset is therefore committed only after
the audit records of everything before it are, so a crash loses nothing (the records of an
aborted transaction belong to offsets not yet committed and are read again), and the audit
costs one commit marker per partition per second instead of a transaction per record.

When a transaction is lost while this worker still owns the partition (its producer was fenced,
or failed), the writer waits :data:`FENCED_BACKOFF_S` (a zombie's consumer learns that it lost
its partitions within a heartbeat or two, and then never takes the partition again), takes the
partition back and re-chains the facts of the lost transaction onto the committed head, so
nothing appended is lost and the chain stays linear whoever wrote in between. A writer whose
partition was revoked refuses appends with :class:`AuditFenced`; the partition's next owner
reads those facts again from the uncommitted offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalOperation, KafkaError

from nova.audit.chain import GENESIS_HASH, link_hash
from nova.errors import PartitionLost, SchemaError, one_line
from nova.kafka.clients import kafka_producer, start_client, stop_client
from nova.kafka.tail import open_reader
from nova.records import AuditFact, AuditRecord
from nova.settings import Settings
from schemas import SchemaSet
from schemas.topics import audit_writer_id

log = logging.getLogger(__name__)

# Longer than two of the worker's heartbeat intervals (3 s): a zombie learns it was replaced.
FENCED_BACKOFF_S: Final = 7.0
# An open transaction the coordinator aborts on its own after this long (a writer that vanished
# without a successor taking its partition); a live writer commits every second.
TRANSACTION_TIMEOUT_MS: Final = 60_000
ACQUIRE_TIMEOUT_S: Final = 30.0
# What a transactional producer raises once its transaction is lost: Kafka errors (fenced,
# invalid epoch, timeouts), "not in a transaction" after a fatal error, and the transaction
# manager's own assertion on a state change a fatal error made invalid.
LOST: Final = (KafkaError, IllegalOperation, AssertionError)


class AuditFenced(PartitionLost):
    """This worker does not own the audit partition (any more): it must not append to it."""


def audit_entry(rec: AuditRecord) -> dict[str, Any]:
    """The hashed part of an audit record: every field but the two hashes."""
    data = rec.to_avro()
    data.pop("prev_hash")
    data.pop("hash")
    return data


def chained(prev: str, fact: AuditFact) -> AuditRecord:
    """``fact`` as the audit record that follows the link ``prev``."""
    unsigned = AuditRecord(
        audit_id=fact.fact_id,
        kind=fact.kind,
        request_id=fact.request_id,
        identity_id=fact.identity_id,
        actor=fact.actor,
        ts=fact.ts,
        detail=fact.detail,
        prev_hash=prev,
        hash="",
    )
    return unsigned.model_copy(update={"hash": link_hash(prev, audit_entry(unsigned))})


async def committed_head(settings: Settings, schemas: SchemaSet, partition: int,
                         deadline_s: float = 15.0) -> str:
    """The hash of the last committed record of an audit partition (``GENESIS_HASH`` if none).

    Read ``read_committed``: its end is the last stable offset, and aborted records and
    transaction markers are skipped, so the tail is searched backwards in growing windows for
    the last record that counts.
    """
    tp = TopicPartition(settings.topic("audit"), partition)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline_s
    async with await open_reader(settings, ["audit"], schemas, assign=False,
                                 isolation_level="read_committed") as reader:
        consumer = reader.consumer
        end = (await consumer.end_offsets([tp]))[tp]  # before assign: see nova.kafka.tail
        start = (await consumer.beginning_offsets([tp]))[tp]
        consumer.assign([tp])
        window = 8
        while True:
            low = max(start, end - window)
            consumer.seek(tp, low)
            last: Any = None
            while await consumer.position(tp) < end:
                if loop.time() > give_up:
                    raise SchemaError(f"audit partition {partition}: cannot read the chain head")
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for msg in batch.get(tp, []):
                    if msg.offset < end:
                        last = msg
            if last is not None:
                return str(reader.decode(last)["hash"])
            if low == start:
                return GENESIS_HASH
            window *= 8


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a future's outcome as seen (asyncio logs an exception nobody retrieved)."""
    if not future.cancelled():
        future.exception()


def _retrieve_internal_futures(producer: AIOKafkaProducer) -> None:
    """A fenced producer's internal futures (its batches', its transaction's) hold the error
    this writer handled; aiokafka awaits them with ``asyncio.wait``, which never retrieves it,
    so asyncio would log each as "Future exception was never retrieved"."""
    accumulator = getattr(producer, "_message_accumulator", None)
    batches = [b for queue in getattr(accumulator, "_batches", {}).values() for b in queue]
    batches += list(getattr(accumulator, "_pending_batches", ()))
    futures = [b.future for b in batches if getattr(b, "future", None) is not None]
    manager = getattr(producer, "_txn_manager", None)
    waiter = manager.wait_for_transaction_end() if manager is not None else None
    if waiter is not None:  # there is none before the producer's first transaction
        futures.append(waiter)
    for future in futures:
        future.add_done_callback(_retrieved)


class PartitionWriter:
    """The one writer of audit partition ``partition`` in this worker (see module docstring).

    ``owns`` says whether this worker's consumer has the partition (it is revoked before
    another worker gets it); ``rebalancing`` whether a rebalance is under way, during which a
    lost partition is not taken back (it may be moving to another worker).
    """

    def __init__(
        self,
        settings: Settings,
        schemas: SchemaSet,
        partition: int,
        owns: Callable[[], bool],
        rebalancing: Callable[[], bool] = lambda: False,
        *,
        fenced_backoff_s: float = FENCED_BACKOFF_S,
    ) -> None:
        self.settings = settings
        self.schemas = schemas
        self.partition = partition
        self.owns = owns
        self.rebalancing = rebalancing
        self.fenced_backoff_s = fenced_backoff_s
        self.topic = settings.topic("audit")
        self.transactional_id = audit_writer_id(settings.topic_prefix, partition)
        self.lost_transactions = 0  # how often a transaction was lost (a zombie, a failure)
        self._producer: AIOKafkaProducer | None = None
        self._head: str | None = None  # the last link appended (committed or not)
        self._in_transaction = False
        self._pending: list[AuditFact] = []  # appended in the open transaction, in chain order
        self._recovering = False  # a lost transaction's facts are being re-sent
        self._released = asyncio.Event()  # the partition was revoked
        self._taking: asyncio.Task[None] | None = None  # taking the partition in the background
        self._lock = asyncio.Lock()

    @property
    def uncommitted(self) -> int:
        return len(self._pending)

    async def append(self, fact: AuditFact) -> AuditRecord:
        """Chain ``fact`` onto this partition (committed with the next :meth:`commit`)."""
        async with self._lock:
            await self._open()
            record = chained(self._head or GENESIS_HASH, fact)
            self._pending.append(fact)
            self._head = record.hash
            try:
                await self._send(record)
            except LOST as exc:
                rechained = await self._recover(exc)  # this fact is the last one re-chained
                assert rechained is not None
                return rechained
            return record

    async def commit(self) -> bool:
        """Commit what was appended; False when it could not be (it is then re-sent into a new
        transaction if the partition is still ours, and the caller must not commit past it).

        Never waits behind a recovery (which may take seconds): the consumer's commit must not
        stall, it holds this partition's offsets back instead.
        """
        if self._recovering:
            return False
        if not self._pending:
            return True  # an append taking the partition is for a record not acknowledged yet
        async with self._lock:
            if self._recovering:
                return False
            if not self._pending:
                return True
            assert self._producer is not None
            try:
                await self._producer.commit_transaction()
            except LOST as exc:
                with contextlib.suppress(AuditFenced):  # revoked: nothing to commit any more
                    await self._recover(exc)
                return False
            self._pending.clear()
            self._in_transaction = False
            return True

    def prepare(self) -> None:
        """Take the partition now, in the background: the worker was just assigned it, and the
        first record it reads should not wait for a producer, a fence and the chain head."""
        if self._taking is None and self._producer is None:
            self._taking = asyncio.create_task(self._take(),
                                               name=f"audit-writer-{self.partition}")
            self._taking.add_done_callback(_retrieved)

    async def release(self) -> None:
        """The partition was revoked (or the worker stops): abort what is uncommitted (its
        source offsets are not committed either, so the next owner redoes it) and close."""
        self._released.set()  # a recovery waiting to take the partition back gives up
        taking, self._taking = self._taking, None
        if taking is not None:
            taking.cancel()
            await asyncio.gather(taking, return_exceptions=True)
        async with self._lock:
            await self._close(abort=True)

    async def _open(self) -> None:
        """A producer that holds the partition, in an open transaction, or ``AuditFenced``."""
        if not self.owns():
            raise AuditFenced(f"audit partition {self.partition} is not this worker's")
        if self._producer is None:
            taking, self._taking = self._taking, None
            if taking is None:
                await self._take()
            else:
                try:
                    await taking
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise
                    # released while it was taking the partition: revoked
                    raise AuditFenced(f"audit partition {self.partition} was revoked") from None
        if not self._in_transaction:
            assert self._producer is not None
            try:
                await self._producer.begin_transaction()
            except LOST as exc:
                await self._recover(exc)
                return
            self._in_transaction = True

    async def _take(self) -> None:
        """:meth:`_acquire`, tried again while the broker cannot be reached and the partition
        is still ours (``AuditFenced`` once it is not)."""
        delay = 0.5
        while True:
            if not self.owns() or self._released.is_set():
                raise AuditFenced(f"audit partition {self.partition} is not this worker's")
            try:
                await self._acquire()
                return
            except (*LOST, OSError, SchemaError) as exc:
                log.warning("audit partition %s: cannot take it yet (%s); trying again in "
                            "%.1f s", self.partition, one_line(exc), delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), delay)
            delay = min(delay * 2, 10.0)

    async def _acquire(self) -> None:
        """Fence every earlier holder of the partition, then read the committed head."""
        producer = kafka_producer(
            self.settings,
            transactional_id=self.transactional_id,
            enable_idempotence=True,
            acks="all",
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
            linger_ms=50,  # a commit flushes at once; until then, fewer, larger batches
        )
        try:
            # InitProducerId: bumps the epoch, aborts the previous holder's open transaction
            await asyncio.wait_for(start_client(producer), ACQUIRE_TIMEOUT_S)
            head = await committed_head(self.settings, self.schemas, self.partition)
        except BaseException:
            await stop_client(producer)
            raise
        self._producer, self._head, self._in_transaction = producer, head, False

    async def _send(self, record: AuditRecord) -> None:
        assert self._producer is not None
        codec = self.schemas["audit_record"]
        key = record.request_id or record.identity_id
        delivery = await self._producer.send(
            self.topic,
            key=key.encode(),
            value=codec.encode(record.to_avro()),
            headers=[codec.header],
            partition=self.partition,
        )
        # a failed delivery fails the commit, which is where it is handled
        delivery.add_done_callback(_retrieved)

    async def _recover(self, cause: BaseException) -> AuditRecord | None:
        """The transaction is lost: take the partition back while it is still ours and re-chain
        the lost facts onto the committed head (the last one's record is returned), or raise
        ``AuditFenced`` once it is not ours (the next owner reads those facts again)."""
        self.lost_transactions += 1
        self._recovering = True
        try:
            return await self._take_back(cause)
        finally:
            self._recovering = False

    async def _take_back(self, cause: BaseException) -> AuditRecord | None:
        facts, self._pending = self._pending, []
        log.warning("audit partition %s: transaction lost (%s) with %d uncommitted records; "
                    "taking the partition back in %.0f s unless it was revoked", self.partition,
                    type(cause).__name__, len(facts), self.fenced_backoff_s)
        await self._close(abort=False)  # taking the partition back aborts what was left open
        delay = self.fenced_backoff_s
        while True:
            with contextlib.suppress(TimeoutError):  # a revocation ends the wait at once
                await asyncio.wait_for(self._released.wait(), delay)
            if not self.owns():
                raise AuditFenced(f"audit partition {self.partition} was revoked; its "
                                  f"{len(facts)} uncommitted records are redone by its owner")
            if self.rebalancing():
                delay = 1.0  # wait to learn whether the partition stays ours
                continue
            try:
                await self._acquire()
                assert self._producer is not None
                await self._producer.begin_transaction()
                self._in_transaction = True
                record: AuditRecord | None = None
                for fact in facts:
                    record = chained(self._head or GENESIS_HASH, fact)
                    self._pending.append(fact)
                    self._head = record.hash
                    await self._send(record)
            except (*LOST, OSError) as exc:
                log.warning("audit partition %s: cannot take it back yet (%s)", self.partition,
                            type(exc).__name__)
                delay = min(max(delay, 1.0) * 2, 30.0)
                self._pending = []
                await self._close(abort=False)
                continue
            log.warning("audit partition %s: taken back; %d records re-chained onto the "
                        "committed head", self.partition, len(facts))
            return record

    async def _close(self, *, abort: bool) -> None:
        producer, self._producer = self._producer, None
        self._head, self._in_transaction = None, False
        if producer is None:
            return
        _retrieve_internal_futures(producer)
        if abort and self._pending:
            try:
                await producer.abort_transaction()
            except LOST as exc:  # fenced: the new writer aborted it already
                log.warning("audit partition %s: transaction refused on abort (%s)",
                            self.partition, type(exc).__name__)
        self._pending = []
        await stop_client(producer)
