"""The stalled-partition watchdog: a lane partition that has records but stopped moving is re-read.

Why it exists: a partition whose records stopped entering its stream while the committed
offset stays put leaves requests waiting forever. The worker's consumer (``streams.consumer``)
removes the causes traced so far (Faust 0.15 emptying the stream buffers after a restart's
table recovery); the watchdog is the last resort for any other, and it makes such a stall
visible in the log. Seeking the partition back makes the fetcher ask for the records again.

The watchdog notices a partition that has unprocessed records (committed offset below the end
offset), whose committed offset has not moved, and from which no event has entered a stream,
for ``worker_stall_s`` seconds; it then seeks that partition back to its committed offset, so
the records are fetched and processed again. Re-reading from the committed offset is what a
restart would do, so nothing is lost and nothing is processed that a crash would not also
have re-processed; lanes are idempotent for such re-deliveries (lane F keeps an idempotency
record per request, ClickHouse rows are deduplicated by key). A busy partition is never
touched: its events keep entering the stream.

The decision (:class:`StallDetector`) is a pure function of offset snapshots and clock times;
:class:`PartitionWatchdog` gathers the snapshots from Kafka and applies the seeks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError

from nova.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionProgress:
    """One stream partition as seen at one check."""

    committed: int | None  # the group's committed offset (next record to process), None if none
    end: int  # the partition's end offset (one past the last record)
    last_inbound: float | None  # clock time an event of it last entered a stream, None if never


class StallDetector:
    """Which partitions have stalled: records waiting, no progress, nothing read, for long enough.

    A partition is watched from the first check where it lags; any movement of its committed
    offset, or an event of it entering a stream, restarts the clock. After a partition is
    reported the clock restarts too, so a partition is re-sought at most once per stall period.
    """

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self._since: dict[Any, tuple[int | None, float]] = {}

    def check(self, now: float, partitions: Mapping[Any, PartitionProgress]) -> list[Any]:
        for gone in set(self._since) - set(partitions):
            del self._since[gone]
        stalled = []
        for tp, p in partitions.items():
            if (p.committed or 0) >= p.end:
                self._since.pop(tp, None)  # caught up
                continue
            reading = p.last_inbound is not None and now - p.last_inbound < self.stall_s
            seen = self._since.get(tp)
            if reading or seen is None or seen[0] != p.committed:
                self._since[tp] = (p.committed, now)
                continue
            if now - seen[1] >= self.stall_s:
                stalled.append(tp)
                self._since[tp] = (p.committed, now)
        return stalled


class PartitionWatchdog:
    """Runs :class:`StallDetector` over the worker's assigned stream partitions.

    The committed offsets are the consumer's own (this worker is the only one committing its
    assigned partitions), so a check costs one end-offsets request and no group lookup.
    """

    def __init__(self, app: Any, settings: Settings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.clock = clock
        self.detector = StallDetector(settings.worker_stall_s)

    def _stream_partitions(self) -> list[Any]:
        return sorted(
            (tp for tp in self.app.consumer.stream_partitions() if "__assignor" not in tp.topic),
            key=lambda tp: (tp.topic, tp.partition),
        )

    async def tick(self) -> list[Any]:
        """One check; returns the partitions it sought back (for logs and tests)."""
        if self.app.in_recovery or self.app.rebalancing:
            return []
        tps = self._stream_partitions()
        if not tps:
            return []
        try:
            ends = await self.app.consumer.highwaters(*tps)
        except KafkaError as exc:  # a busy broker: try again next time
            log.info("partition watchdog: offsets not available (%s)", exc)
            return []
        committed = self.app.consumer._committed_offset
        inbound = self.app.monitor.stream_inbound_time
        now = self.clock()
        progress = {tp: PartitionProgress(committed[tp], int(ends.get(tp) or 0), inbound.get(tp))
                    for tp in tps}
        stalled = self.detector.check(now, progress)
        for tp in stalled:
            target = progress[tp].committed
            if target is None:
                target = int((await self.app.consumer.earliest_offsets(tp)).get(tp) or 0)
            log.warning(
                "partition %s[%s] stalled: %d record(s) unprocessed, committed offset %s "
                "unmoved and nothing read for %.0f s; seeking back to %d to re-read them",
                tp.topic, tp.partition, progress[tp].end - (progress[tp].committed or 0),
                progress[tp].committed, self.detector.stall_s, target)
            self.app.consumer.resume_partitions({tp})
            await self.app.consumer.seek_wait({tp: target})  # in the consumer's own thread
        return stalled
