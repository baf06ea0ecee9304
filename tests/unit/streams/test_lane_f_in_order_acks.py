"""Lane F acknowledges offsets strictly in order, whatever order its calls finish in."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from streams.lanes.lane_f_execution import InOrderAcks, run_concurrently


@dataclass
class FakeMessage:
    tp: str
    offset: int


@dataclass
class FakeEvent:
    message: FakeMessage
    acked: list[tuple[str, int]] = field(default_factory=list)

    def ack(self) -> None:
        self.acked.append((self.message.tp, self.message.offset))


def events(log: list[tuple[str, int]], *offsets: tuple[str, int]) -> list[FakeEvent]:
    return [FakeEvent(FakeMessage(tp, off), log) for tp, off in offsets]


def test_a_later_offset_waits_for_an_earlier_one_still_in_flight() -> None:
    log: list[tuple[str, int]] = []
    acks = InOrderAcks()
    e0, e1, e2 = (acks.add(e) for e in events(log, ("p0", 0), ("p0", 1), ("p0", 2)))
    acks.done(e2)
    acks.done(e1)
    assert log == [], "offset 0 is still in flight: nothing may be acknowledged"
    acks.done(e0)
    assert log == [("p0", 0), ("p0", 1), ("p0", 2)]
    assert acks.in_flight == 0


def test_partitions_are_acknowledged_independently() -> None:
    log: list[tuple[str, int]] = []
    acks = InOrderAcks()
    a0, b0 = (acks.add(e) for e in events(log, ("p0", 7), ("p1", 3)))
    acks.done(b0)
    assert log == [("p1", 3)]
    assert acks.in_flight == 1
    acks.done(a0)
    assert log == [("p1", 3), ("p0", 7)]


class FakeStream:
    def __init__(self, items: list[FakeEvent]) -> None:
        self.items = items

    def noack(self) -> FakeStream:
        return self

    async def events(self) -> Any:
        for item in self.items:
            yield item


async def test_slow_first_call_does_not_block_later_calls_but_holds_their_acks() -> None:
    log: list[tuple[str, int]] = []
    finished: list[int] = []
    release_first = asyncio.Event()

    async def handler(message: FakeMessage) -> None:
        if message.offset == 0:
            await release_first.wait()
        finished.append(message.offset)

    items = events(log, ("p0", 0), ("p0", 1), ("p0", 2))
    runner = asyncio.create_task(run_concurrently(FakeStream(items), handler, limit=8))
    while len(finished) < 2:
        await asyncio.sleep(0)
    assert finished == [1, 2], "later records ran while the first was still in flight"
    assert log == []
    release_first.set()
    await runner
    assert log == [("p0", 0), ("p0", 1), ("p0", 2)]


async def test_a_failed_record_is_never_acknowledged_nor_anything_after_it() -> None:
    log: list[tuple[str, int]] = []

    async def handler(message: FakeMessage) -> None:
        if message.offset == 1:
            raise RuntimeError("broker refused the produce")

    items = events(log, ("p0", 0), ("p0", 1), ("p0", 2))
    await run_concurrently(FakeStream(items), handler, limit=8)
    assert log == [("p0", 0)], "offset 1 failed: it and everything after stay unacknowledged"


class EndlessStream(FakeStream):
    """Its records, then nothing more until the agent is cancelled (as Faust stops it)."""

    async def events(self) -> Any:
        for item in self.items:
            yield item
        await asyncio.Event().wait()


async def test_a_stopping_worker_cancels_calls_still_running_after_its_short_drain() -> None:
    """Nothing lane F started is left running to send on a producer the worker stopped; the
    cancelled record stays unacknowledged (read again at the next start)."""
    log: list[tuple[str, int]] = []
    cancelled: list[int] = []

    async def handler(message: FakeMessage) -> None:
        if message.offset == 1:
            try:
                await asyncio.Event().wait()  # a provider call that outlives the drain
            except asyncio.CancelledError:
                cancelled.append(message.offset)
                raise

    items = events(log, ("p0", 0), ("p0", 1))
    runner = asyncio.create_task(run_concurrently(
        EndlessStream(items), handler, limit=8, stopping=lambda: True, stop_drain_s=0.05))
    while log != [("p0", 0)]:
        await asyncio.sleep(0.01)
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    assert cancelled == [1]
    assert log == [("p0", 0)]
