"""The worker's Kafka consumer: Faust's, except that it never commits past an unfinished record.

Kafka's committed offset is the next record to process. Faust 0.15 decides what to commit from
the offsets its streams acknowledged (``Consumer._new_offset``), and it only holds a commit
back when the lowest acknowledged offset is *more than one* above the committed offset (and
never when the committed offset is 0). So when the record at the committed offset itself is
not acknowledged (still being processed, or never delivered to a stream because of a hiccup
around a restart) while the records after it are, Faust commits past it; should the worker then
die, or the record never arrive, it is lost without a trace.

:class:`HeadSafeConsumer` holds every commit of a partition until the record at its committed
offset is acknowledged. A record that never arrives then shows as a stalled partition, which
the partition watchdog (``streams.watchdog``) re-reads, instead of as a silent loss. This is
what was traced after a SIGKILL restart: the record at the committed offset was not delivered,
the next ones were, and Faust committed past it. A partition with nothing committed yet (Faust
keeps that, and a committed 0, as ``None``) has its earliest offset as its head.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from faust.transport.drivers.aiokafka import Consumer


def head_is_done(committed: int | None, acked: Iterable[int], gap_starts: Iterable[int]) -> bool:
    """Whether the record at the committed offset is accounted for (acknowledged or a known gap).

    With nothing committed yet there is no head to protect: Faust's own rules apply.
    """
    if committed is None:
        return True
    lowest = min([*acked, *gap_starts], default=None)
    return lowest is None or lowest <= committed


class HeadSafeConsumer(Consumer):
    async def perform_seek(self) -> None:
        """Seek to the committed offsets, and remember the head of every partition.

        Faust keeps a committed offset of 0, or none at all, as ``None``, which leaves the first
        record of a partition unprotected; here such a partition's head is its earliest offset
        (where ``auto_offset_reset=earliest`` starts reading).
        """
        await super().perform_seek()
        unknown = [tp for tp in self.assignment()
                   if self._committed_offset[tp] is None
                   and tp.topic not in self.app.tables.changelog_topics]
        if unknown:
            earliest = await self.earliest_offsets(*unknown)
            for tp in unknown:
                if self._committed_offset[tp] is None and earliest.get(tp) is not None:
                    self._committed_offset[tp] = earliest[tp]

    def _new_offset(self, tp: Any) -> int | None:
        gaps = self._gap[tp]
        if not head_is_done(self._committed_offset[tp], self._acked[tp],
                            (interval.begin for interval in gaps)):
            return None
        offset: int | None = super()._new_offset(tp)
        return offset


def install(app: Any) -> None:
    """Make ``app`` build :class:`HeadSafeConsumer` (before its consumer is first created)."""
    app.transport.Consumer = HeadSafeConsumer
