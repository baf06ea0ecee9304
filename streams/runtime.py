"""The loop every lane agent runs: decode, process, forward; lane events when a request leaves.

Failure handling is the same for all lanes, so it lives here once: a record that cannot be
decoded, or whose processing raises, goes to the dead-letter topic with the reason and the
original bytes, a lane event with status ``error`` is emitted when the request is known, and
the agent moves on to the next record. A broker that is away is not a failure of the record:
the lane waits for it and processes the record then. Each lane appends its timing to the record
(``PipelineRecord.lanes``); the lane events are written once, in one record, when the request
leaves the lanes (:data:`EXITS`: completed, or held on ``pending``). Delivery is at least
once (offsets are committed after the producer is flushed); every downstream effect is
idempotent by request id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from nova.errors import NovaError, PartitionLost, SchemaError, one_line
from nova.kafka.liveness import is_outage
from nova.records import LaneTiming, PipelineRecord, now_ms
from schemas import TOPICS
from streams.context import LaneContext

log = logging.getLogger(__name__)

# Where a record leaves the lanes: its lane events are written there (``LaneContext.emit_lanes``).
EXITS = frozenset({"completed", "pending"})

OUTAGE_FIRST_RETRY_S = 0.5
OUTAGE_MAX_RETRY_S = 10.0


@dataclass(frozen=True)
class LaneOutcome:
    """What a lane decided: the new record, the lane status, and where it goes next."""

    record: PipelineRecord
    status: str = "ok"
    target: str | None = None  # None: the lane's default output topic


class Lane(Protocol):
    """One lane's work on one record. Pure where possible; I/O goes through ``ctx``."""

    code: str  # "A" … "G"
    source: str
    output: str

    async def process(self, record: PipelineRecord, ctx: LaneContext) -> LaneOutcome: ...


def decode_pipeline(ctx: LaneContext, topic: str, message: Any) -> PipelineRecord:
    codec = ctx.schemas[TOPICS[topic].value_schema]
    data = codec.decode(message.value, message.headers)
    try:
        return PipelineRecord.from_avro(data)
    except ValueError as exc:
        raise SchemaError(f"{topic}: record does not validate: {exc}") from exc


async def handle(lane: Lane, ctx: LaneContext, message: Any) -> None:
    """Process one Kafka message for ``lane``; every failure ends on the dead-letter topic."""
    started = now_ms()
    t0 = time.perf_counter()
    try:
        record = decode_pipeline(ctx, lane.source, message)
    except SchemaError as exc:
        await ctx.dead_letter(message, lane.code, exc)
        return
    try:
        outcome = await _process_through_outages(lane, ctx, record)
    except PartitionLost as exc:  # not ours any more: the new owner processes it again
        log.info("lane %s: %s dropped: %s", lane.code, record.request_id, exc)
        return
    except Exception as exc:
        if _stopping(ctx):
            await _park(lane, record, exc)
        if not isinstance(exc, NovaError):
            log.exception("lane %s crashed on %s", lane.code, record.request_id)
        await _failed(lane, ctx, message, record, started, t0, exc)
        return
    duration = (time.perf_counter() - t0) * 1000
    timing = LaneTiming(lane=lane.code, status=outcome.status, started_at=started,
                        duration_ms=duration, worker=ctx.worker)
    out = outcome.record.model_copy(update={"lanes": (*outcome.record.lanes, timing)})
    await forward(ctx, outcome.target or lane.output, out)


def _stopping(ctx: LaneContext) -> bool:
    app = getattr(ctx, "app", None)  # a Faust app (tests: a stand-in, or none)
    return getattr(app, "should_stop", False) is True


async def _park(lane: Lane, record: PipelineRecord, exc: Exception) -> NoReturn:
    """Wait for the stop to cancel us: work that failed because its worker is stopping (Faust
    stops the producer while lane F's calls in flight end) is not the request's fault, so it
    is neither dead-lettered nor failed; unacknowledged, it is read again at the next start."""
    log.info("lane %s: %s left for the next start (the worker is stopping: %s)", lane.code,
             record.request_id, one_line(exc))
    await asyncio.Event().wait()
    raise AssertionError("unreachable: only cancelled")


async def forward(ctx: LaneContext, target: str, record: PipelineRecord) -> None:
    """Hand ``record`` to ``target``; if that is where it leaves the lanes, write its lane
    events too (after the hand-off: a crash in between re-processes the input, and both are
    written again under the same ids)."""
    await ctx.send(target, record.request_id, record)
    if target in EXITS:
        await ctx.emit_lanes(record)


async def _process_through_outages(lane: Lane, ctx: LaneContext,
                                   record: PipelineRecord) -> LaneOutcome:
    """``lane.process``, tried again while the broker is away (``nova.kafka.liveness``).

    A broker outage is not the request's fault: failing it would end it as ``failed`` although
    Kafka will redeliver it to a lane that succeeds, and the request would then have two
    different outcomes. So the lane waits, as every other lane does while the broker is away,
    and carries on when it is back. Any other error fails the request as before.
    """
    delay = OUTAGE_FIRST_RETRY_S
    while True:
        try:
            return await lane.process(record, ctx)
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("lane %s: %s waits for Kafka (%s); trying again in %.1f s", lane.code,
                        record.request_id, one_line(exc), delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, OUTAGE_MAX_RETRY_S)


async def _failed(
    lane: Lane,
    ctx: LaneContext,
    message: Any,
    record: PipelineRecord,
    started: int,
    t0: float,
    exc: BaseException,
) -> None:
    """Dead-letter the input, then let the request finish as ``failed`` so nobody waits forever."""
    duration = (time.perf_counter() - t0) * 1000
    error = f"lane {lane.code}: {type(exc).__name__}: {exc}"[:1000]
    await ctx.dead_letter(message, lane.code, exc)
    timing = LaneTiming(lane=lane.code, status="error", started_at=started, duration_ms=duration,
                        worker=ctx.worker, error=error)
    failed = record.model_copy(
        update={"status": "failed", "error": error, "lanes": (*record.lanes, timing)}
    )
    await forward(ctx, lane.output, failed)
