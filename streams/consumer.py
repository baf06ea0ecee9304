"""The worker's Kafka consumer: Faust's, made to lose nothing around rebalances and restarts.

Traced after a SIGKILL restart (the restart integration test, under load): Faust 0.15's recovery
resumes the stream partitions *before* it seeks them to their committed offsets and *before* it
resumes flow control, and resuming flow control clears every stream's buffer
(``FlowControlEvent.resume`` clears the queues made with ``clear_on_resume``). Records the fetcher
delivered in between were dropped from the buffers although Faust had marked them as read, so
they were never fetched again. Faust's read-offset bookkeeping then finished the job: the seek
rewound its read offset mid-batch, the next record looked like a jump, and the "gap" it recorded
covered the dropped records (and, off by one, the record being delivered), so they counted as
processed and were committed. Requests vanished without lag or error.

:class:`HeadSafeConsumer` closes each hole, by subclassing, not by editing Faust:

- after the flow resumes (that is, after the buffers were cleared) every assigned stream partition
  is re-read from its committed offset, so whatever was dropped is fetched again;
- stream partitions keep no read offset, so Faust never discards a re-fetched record as already
  read and never infers a gap (our lane topics are neither compacted nor transactional: offsets
  are contiguous, a missing offset is always a record not yet processed);
- a commit never passes the record at the committed offset until it is acknowledged (Faust only
  holds back when the lowest acknowledged offset is *more than one* above, and never at 0).

One more rule is not about Faust: offsets are committed only after ``before_commit`` (lane G's
audit writers, ``streams.audit_writer``) has committed the audit records written so far, and
without the offsets it holds back, so an offset never passes a record whose audit is not durable.

Re-reading means some records are processed twice around a rebalance; every lane is idempotent
by request id (lane F keeps an idempotency record, ClickHouse rows are deduplicated by key). The
partition watchdog (``streams.watchdog``) stays as the last resort for a partition that stalls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar

from aiokafka.errors import KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer

log = logging.getLogger(__name__)


def head_is_done(committed: int | None, acked: Iterable[int], gap_starts: Iterable[int]) -> bool:
    """Whether the record at the committed offset is accounted for (acknowledged or a known gap).

    With nothing committed yet there is no head to protect: Faust's own rules apply.
    """
    if committed is None:
        return True
    lowest = min([*acked, *gap_starts], default=None)
    return lowest is None or lowest <= committed


class StreamReadOffsets(dict[Any, int | None]):
    """Faust's read offsets, kept for table changelogs only: a stream partition's always reads None.

    Faust's fetch loop delivers a record only when its offset is at least the partition's read
    offset, and records a gap when offsets jump. For stream partitions both rules are wrong
    around a seek (see the module docstring), so their read offset is never stored.
    """

    def __init__(self, is_changelog: Any) -> None:
        super().__init__()
        self._is_changelog = is_changelog

    def __missing__(self, tp: Any) -> None:
        return None

    def __setitem__(self, tp: Any, offset: int | None) -> None:
        if self._is_changelog(tp):
            super().__setitem__(tp, offset)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for tp, offset in dict(*args, **kwargs).items():
            self[tp] = offset


class LowLatencyConsumerThread(AIOKafkaConsumerThread):
    """Faust's consumer thread with a fetch wait of our choosing instead of its fixed 1,500 ms.

    Measured on the launcher's broker (``bench/sync.py``, one record at a time through a hop):
    with long waits a record that arrives while a fetch is parked often waits well beyond its
    arrival; 20 ms gave the lowest hop latency, at the price of an idle consumer asking the broker
    50 times a second. Faust takes no setting for it, so the value is set on the aiokafka consumer
    it builds, before that consumer starts (aiokafka builds its fetcher from it at start).
    """

    fetch_max_wait_ms: int = 1500

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


BeforeCommit = Callable[[Mapping[Any, int]], Awaitable[Mapping[Any, int]]]


class HeadSafeConsumer(Consumer):
    fetch_max_wait_ms: int = 1500
    before_commit: ClassVar[BeforeCommit | None] = None

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        thread = LowLatencyConsumerThread(self, loop=self.loop, beacon=self.beacon)
        thread.fetch_max_wait_ms = self.fetch_max_wait_ms
        return thread

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = StreamReadOffsets(self._is_changelog_tp)
        self._rereads: set[asyncio.Future[None]] = set()

    def stream_partitions(self) -> list[Any]:
        """The assigned partitions of lane topics (table changelogs excluded)."""
        try:
            assigned = self.assignment()
        except ConsumerNotStarted:
            return []
        return [tp for tp in assigned if not self._is_changelog_tp(tp)]

    async def perform_seek(self) -> None:
        """Seek to the committed offsets, and remember the head of every partition.

        Faust keeps a committed offset of 0, or none at all, as ``None``, which leaves the first
        record of a partition unprotected; here such a partition's head is its earliest offset
        (where ``auto_offset_reset=earliest`` starts reading).
        """
        await super().perform_seek()
        unknown = [tp for tp in self.stream_partitions() if self._committed_offset[tp] is None]
        if unknown:
            earliest = await self.earliest_offsets(*unknown)
            for tp in unknown:
                if self._committed_offset[tp] is None and earliest.get(tp) is not None:
                    self._committed_offset[tp] = earliest[tp]

    def resume_flow(self) -> None:
        """Resume, then re-read every stream partition from its committed offset.

        Faust resumes the consumer right after resuming flow control, which has just emptied the
        streams' buffers; records that were in them are fetched again by the re-read.
        """
        super().resume_flow()
        targets = {tp: offset for tp in self.stream_partitions()
                   if (offset := self._committed_offset[tp]) is not None}
        if targets:
            reread = asyncio.ensure_future(self._reread(targets))
            self._rereads.add(reread)
            reread.add_done_callback(self._rereads.discard)

    async def _reread(self, targets: Mapping[Any, int]) -> None:
        try:
            await self.seek_wait(targets)
        except (KafkaError, ConsumerNotStarted, TimeoutError) as exc:
            # a rebalance or a shutdown got there first; a rebalance seeks and resumes again
            log.info("re-reading %d stream partition(s) after resume failed: %r", len(targets), exc)

    async def _commit_offsets(self, offsets: Mapping[Any, int],
                              start_new_transaction: bool = True) -> bool:
        hook = type(self).before_commit
        if hook is not None:
            offsets = await hook(offsets)
        done: bool = await super()._commit_offsets(offsets, start_new_transaction)
        return done

    def _new_offset(self, tp: Any) -> int | None:
        gaps = self._gap[tp]
        if not head_is_done(self._committed_offset[tp], self._acked[tp],
                            (interval.begin for interval in gaps)):
            return None
        offset: int | None = super()._new_offset(tp)
        return offset


def install(app: Any, fetch_max_wait_ms: int,
            before_commit: BeforeCommit | None = None) -> None:
    """Make ``app`` build :class:`HeadSafeConsumer` (before its consumer is first created): its
    fetches parked at most ``fetch_max_wait_ms`` on the broker, and ``before_commit`` called with
    the offsets about to be committed (it returns those that may be)."""
    app.transport.Consumer = type(
        "HeadSafeConsumer",
        (HeadSafeConsumer,),
        {
            "fetch_max_wait_ms": fetch_max_wait_ms,
            "before_commit": staticmethod(before_commit) if before_commit else None,
        },
    )
