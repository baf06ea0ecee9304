"""The loop every lane agent runs: decode, process, forward, emit a lane event.

Failure handling is the same for all lanes, so it lives here once: a record that cannot be
decoded, or whose processing raises, goes to the dead-letter topic with the reason and the
original bytes, a lane event with status ``error`` is emitted when the request is known, and
the agent moves on to the next record. Delivery is at least once (offsets are committed after
the producer is flushed); every downstream effect is idempotent by request id.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from nova.errors import NovaError, SchemaError
from nova.records import LaneTiming, PipelineRecord, now_ms
from schemas import TOPICS
from streams.context import LaneContext

log = logging.getLogger(__name__)


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
        outcome = await lane.process(record, ctx)
    except NovaError as exc:
        await _failed(lane, ctx, message, record, started, t0, exc)
        return
    except Exception as exc:
        log.exception("lane %s crashed on %s", lane.code, record.request_id)
        await _failed(lane, ctx, message, record, started, t0, exc)
        return
    duration = (time.perf_counter() - t0) * 1000
    timing = LaneTiming(
        lane=lane.code, status=outcome.status, started_at=started, duration_ms=duration
    )
    out = outcome.record.model_copy(update={"lanes": (*outcome.record.lanes, timing)})
    await ctx.send(outcome.target or lane.output, out.request_id, out)
    await ctx.emit_lane_event(out, lane.code, outcome.status, started, duration)


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
    timing = LaneTiming(lane=lane.code, status="error", started_at=started, duration_ms=duration)
    failed = record.model_copy(
        update={"status": "failed", "error": error, "lanes": (*record.lanes, timing)}
    )
    await ctx.send(lane.output, failed.request_id, failed)
    await ctx.emit_lane_event(failed, lane.code, "error", started, duration, error=error)
