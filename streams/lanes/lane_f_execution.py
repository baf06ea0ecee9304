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

An agent run can pause at a tool call that needs a person's approval. Lane F then holds it as
lane E holds a request: the held record goes into the ``held`` table under the call's own key
(``streams.held``, written durably), its checkpoint fact to the audit chain, and it leaves on
``pending``, where the gateway's checkpoint API shows it; ``llm_results`` says ``paused`` and
where the entry is, so a redelivered copy of the request re-sends the hold instead of being
taken for an interrupted call. Lane E applies the signed decision (or the expiry) to that
entry and sends the record back here; lane F resumes the run from the *table's* entry, never
from what a copy says, once decided, under a fresh attempt marker naming the resumed run: the
approved call is made once, and a worker dying during the resumed run leaves a marker that
answers ``interrupted`` rather than making the call again, whatever ``NOVA_LLM_AFTER_CRASH``
says (a tool's effect, a message sent, must not repeat).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from nova.audit.facts import checkpoint_fact
from nova.records import Execution, PipelineRecord, now_ms
from streams.context import LaneContext
from streams.execution import run_key
from streams.held import held_entry, held_key, parse_entry
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
        rid = record.request_id
        key = rid.encode()
        done = results.get(key)
        stored = json.loads(done) if done is not None else None
        run: str | None = None  # None: the request's first execution
        if stored is not None and stored.get("status") == PAUSED:
            # An agent run waits at a tool call's checkpoint: the held entry says how it
            # stands, whichever copy of the request (or of the decided record) got here.
            raw = ctx.state.held.get(stored["held"].encode())
            if raw is None:  # never written after the marker: fail closed, nothing is made
                return LaneOutcome(record.model_copy(update={
                    "status": "failed", "agent_pause": None,
                    "error": "the agent run's paused state is lost; nothing more was made"}),
                    status="error")
            state, held = parse_entry(raw)
            if state == "pending":
                return LaneOutcome(held, status="held", target="pending")
            assert held.checkpoint is not None
            record, run, stored = held, run_key(rid, held.checkpoint.checkpoint_id), None
        execution = ctx.services.execution
        fail_mode = ctx.settings.llm_after_crash == "fail"
        if stored is not None:
            if stored.get("status") == ATTEMPTED:
                marked = stored.get("run", rid)
                if not execution.handles(marked) and (fail_mode or marked != rid):
                    return interrupted(record, resumed=marked != rid)
                run = None if marked == rid else marked  # then wait for it here, or replay it
            else:
                return LaneOutcome(
                    record.model_copy(
                        update={
                            "status": stored["status"],
                            "error": stored["error"],
                            "agent_pause": None,
                            "execution": Execution.model_validate(stored["execution"]),
                        }
                    ),
                    status="ok" if stored["status"] == "completed" else "error",
                )
        mine = execution.handles(run or rid)  # then any marker is this process's own
        # A resumed run always leaves a marker: the call it makes must never be made twice.
        at_most_once = (fail_mode or run is not None) and not mine

        async def mark_attempt() -> None:
            await ctx.state.put_durably(key, attempt_marker(run))

        result = await execution.execute(record, before=mark_attempt if at_most_once else None,
                                         run=run)
        out = result.record
        for event in result.events:
            await ctx.emit(event)
        for fact in result.facts:  # an agent run's tool calls, into the audit chain
            await ctx.audit(fact)
        if result.paused:
            return await hold(ctx, out)
        # Durable before the outcome goes on: lost after it (a SIGKILL), only the marker would be
        # left, and a redelivered copy would answer "interrupted", a second outcome.
        if result.called or (run is not None and not result.replayed):
            await ctx.state.put_durably(key, json.dumps(
                {
                    "at": now_ms(),  # streams.retention: when it may leave memory
                    "status": out.status,
                    "error": out.error,
                    "execution": out.execution.model_dump(mode="json") if out.execution else None,
                }
            ).encode())
        elif at_most_once and not result.replayed:
            # no provider was reached (routing, rules): a redelivery may retry
            await ctx.state.put_durably(key, None)
        return LaneOutcome(out, status="ok" if out.status == "completed" else "error")


async def hold(ctx: LaneContext, held: PipelineRecord) -> LaneOutcome:
    """Hold an agent run paused at a tool call (module docstring): the entry first, durably,
    then the marker pointing at it, then the record on ``pending``. An entry already there (a
    copy of the same run) is never reopened or re-dated."""
    assert held.checkpoint is not None, "a paused run is held at its call's checkpoint"
    entry = held_key(held.request_id, held.checkpoint.checkpoint_id)
    if ctx.state.held.get(entry) is None:
        await ctx.state.hold_durably(entry, held_entry(held, "pending"))
        await ctx.audit(checkpoint_fact(held, held.checkpoint, actor=None))
    await ctx.state.put_durably(held.request_id.encode(),
                                json.dumps({"status": PAUSED, "held": entry.decode(),
                                            "at": now_ms()}).encode())
    return LaneOutcome(held, status="held", target="pending")


ATTEMPTED = "attempted"
PAUSED = "paused"


def attempt_marker(run: str | None) -> bytes:
    """The marker put before calling: of the request's first execution (``run`` None; older
    workers wrote it as ``{"status": "attempted"}``), or of a resumed agent run; ``at`` dates
    it for ``streams.retention``."""
    marker: dict[str, object] = {"status": ATTEMPTED, "at": now_ms()}
    if run is not None:
        marker["run"] = run
    return json.dumps(marker).encode()


INTERRUPTED = (
    "interrupted: the worker stopped while the provider call was under way, so its outcome is "
    "unknown; it is not called twice for one request (NOVA_LLM_AFTER_CRASH=fail). Submit the "
    "request again to retry"
)


INTERRUPTED_RESUMED = (
    "interrupted: the worker stopped while the agent run went on after a checkpoint, so "
    "whether the approved call was made is unknown; the run is not resumed twice. Submit the "
    "request again to retry"
)


def interrupted(record: PipelineRecord, resumed: bool = False) -> LaneOutcome:
    """The answer to a request whose call (or resumed agent run) was cut off by its worker's
    death."""
    failed = record.model_copy(
        update={"status": "failed", "error": INTERRUPTED_RESUMED if resumed else INTERRUPTED,
                "execution": Execution(attempts=1), "agent_pause": None}
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
    stream: Any, handler: Any, limit: int, drain_timeout_s: float = 30.0,
    stopping: Callable[[], bool] = lambda: False, stop_drain_s: float = 1.0,
) -> None:
    """Consume ``stream`` without auto-ack, run ``handler(message)`` as tasks, ack in order.

    A record whose handler raised is never acknowledged: its partition's offset stops there
    and the record is delivered again after a restart, rather than skipped. On a rebalance the
    calls in flight are given ``drain_timeout_s`` to finish, so a completed provider call is
    recorded instead of being made again by the next owner. When the worker is ``stopping``
    they get ``stop_drain_s`` (a stopping ``nova up`` kills a worker that has not stopped within
    seconds), then are cancelled: unacknowledged, their records are read again at the next
    start, and none is left running to send on a producer that has stopped.
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
            await asyncio.wait(set(tasks),
                               timeout=stop_drain_s if stopping() else drain_timeout_s)
        if tasks and stopping():
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
