"""Lane F, agent execution: the LLM call, through the router, at most once per request.

Many calls run at once (up to ``llm_max_in_flight``) so one slow provider never blocks its
partition; offsets are acknowledged strictly in order (:class:`InOrderAcks`), so an offset is
never committed while an earlier request of its partition is still in flight. A redelivered
request whose call already completed is not called again: the outcome is kept in the
``llm_results`` table (an idempotency record per request id, restored from its changelog after
a crash) and replayed from there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import Any

from nova.records import Execution, PipelineRecord
from streams.context import LaneContext
from streams.runtime import LaneOutcome

log = logging.getLogger(__name__)


class ExecutionLane:
    code = "F"
    source = "executable"
    output = "executed"

    async def process(self, record: PipelineRecord, ctx: LaneContext) -> LaneOutcome:
        if record.finished:
            return LaneOutcome(record, status="skipped")
        results = ctx.state.llm_results
        key = record.request_id.encode()
        done = results.get(key)
        if done is not None:
            stored = json.loads(done)
            return LaneOutcome(
                record.model_copy(
                    update={
                        "status": stored["status"],
                        "error": stored["error"],
                        "execution": Execution.model_validate(stored["execution"]),
                    }
                ),
                status="ok" if stored["status"] == "completed" else "error",
            )
        result = await ctx.services.execution.execute(record)
        out = result.record
        for event in result.events:
            await ctx.emit(event)
        if result.called:
            results[key] = json.dumps(
                {
                    "status": out.status,
                    "error": out.error,
                    "execution": out.execution.model_dump(mode="json") if out.execution else None,
                }
            ).encode()
        return LaneOutcome(out, status="ok" if out.status == "completed" else "error")


class InOrderAcks:
    """Ack events per partition in offset order, whatever order their work finishes in."""

    def __init__(self) -> None:
        self._queues: dict[Any, deque[list[Any]]] = {}

    def add(self, event: Any) -> list[Any]:
        entry = [event, False]
        self._queues.setdefault(event.message.tp, deque()).append(entry)
        return entry

    def done(self, entry: list[Any]) -> None:
        entry[1] = True
        queue = self._queues[entry[0].message.tp]
        while queue and queue[0][1]:
            queue.popleft()[0].ack()

    @property
    def in_flight(self) -> int:
        return sum(len(q) for q in self._queues.values())


async def run_concurrently(
    stream: Any, handler: Any, limit: int, drain_timeout_s: float = 30.0
) -> None:
    """Consume ``stream`` without auto-ack, run ``handler(message)`` as tasks, ack in order.

    A record whose handler raised is never acknowledged: its partition's offset stops there
    and the record is delivered again after a restart, rather than skipped. On shutdown or
    rebalance the calls in flight are given ``drain_timeout_s`` to finish, so a completed
    provider call is recorded instead of being made again by the next owner.
    """
    acks = InOrderAcks()
    slots = asyncio.Semaphore(limit)
    tasks: set[asyncio.Task[None]] = set()

    async def one(entry: list[Any]) -> None:
        try:
            await handler(entry[0].message)
        except Exception:
            log.exception("lane F: a record failed outside the dead-letter path; not acknowledged")
            slots.release()
            return
        slots.release()
        acks.done(entry)

    try:
        async for event in stream.noack().events():
            await slots.acquire()
            task = asyncio.create_task(one(acks.add(event)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        if tasks:
            await asyncio.wait(set(tasks), timeout=drain_timeout_s)
