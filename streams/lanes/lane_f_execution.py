"""Lane F, agent execution: the LLM call, through the router, at most once per request.

Many calls run at once (up to ``llm_max_in_flight``) so one slow provider never blocks its
partition; offsets are acknowledged strictly in order (:class:`InOrderAcks`), so an offset is
never committed while an earlier request of its partition is still in flight. A redelivered
request whose call already completed is not called again: the outcome is kept in the
``llm_results`` table (an idempotency record per request id, restored from its changelog after
a crash) and replayed from there.

A worker can also die *during* a call, after the provider was reached and before its outcome
is recorded. So before calling, lane F puts an attempt marker in the table and waits until it
is on the broker. A redelivered request that finds only the marker was interrupted mid-call:
with ``NOVA_LLM_AFTER_CRASH=fail`` (the default) it is answered ``failed`` with an
``interrupted`` error and no second call (a provider may already have acted or billed; the
client decides whether to submit again), with ``retry`` it is called again.

A request naming an agent is one execution too (``streams.agent_run``: several model calls
and governed tool calls): one marker and one stored result cover the whole run, and its
tool-call facts go to lane G with its events.
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
        execution = ctx.services.execution
        mine = execution.handles(record.request_id)  # then any marker is this process's own
        at_most_once = ctx.settings.llm_after_crash == "fail" and not mine
        if done is not None:
            stored = json.loads(done)
            if stored.get("status") == ATTEMPTED:
                if at_most_once:
                    return interrupted(record)
            else:
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
        async def mark_attempt() -> None:
            await ctx.state.put_durably(key, ATTEMPT_MARKER)

        result = await execution.execute(record, before=mark_attempt if at_most_once else None)
        out = result.record
        for event in result.events:
            await ctx.emit(event)
        for fact in result.facts:  # an agent run's tool calls, into the audit chain
            await ctx.audit(fact)
        if result.called:
            results[key] = json.dumps(
                {
                    "status": out.status,
                    "error": out.error,
                    "execution": out.execution.model_dump(mode="json") if out.execution else None,
                }
            ).encode()
        elif at_most_once and not result.replayed:
            del results[key]  # no provider was reached (routing, rules): a redelivery may retry
        return LaneOutcome(out, status="ok" if out.status == "completed" else "error")


ATTEMPTED = "attempted"
ATTEMPT_MARKER = json.dumps({"status": ATTEMPTED}).encode()
INTERRUPTED = (
    "interrupted: the worker stopped while the provider call was under way, so its outcome is "
    "unknown; it is not called twice for one request (NOVA_LLM_AFTER_CRASH=fail). Submit the "
    "request again to retry"
)


def interrupted(record: PipelineRecord) -> LaneOutcome:
    """The answer to a request whose call was cut off by its worker's death."""
    failed = record.model_copy(
        update={"status": "failed", "error": INTERRUPTED, "execution": Execution(attempts=1)}
    )
    return LaneOutcome(failed, status="error")


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
