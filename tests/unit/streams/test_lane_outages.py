"""A broker away is not a failure of the record a lane is processing: the lane waits for it.

Seen in the chaos run (``bench/chaos.py``): lane D's entity view could not catch up while the
broker was killed, the request ended ``failed``, Kafka redelivered it after the restart and it
ended ``completed`` too: one request, two outcomes. Now the lane tries again once the broker
answers; a real error still fails the request, once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, TopicAuthorizationFailedError

from nova.entities.store import EntitiesUnavailableError
from nova.errors import KafkaUnavailableError, ProcessingError, ProviderError
from nova.kafka.liveness import is_outage
from nova.records import PipelineRecord
from schemas import TOPICS, load_schema_set
from streams import runtime
from streams.runtime import LaneOutcome, handle

SCHEMAS = load_schema_set()


@pytest.mark.parametrize(("exc", "outage"), [
    (KafkaTimeoutError("offsets by times"), True),
    (KafkaConnectionError("no broker"), True),
    (KafkaUnavailableError("Kafka is unreachable"), True),
    (EntitiesUnavailableError("could not catch up"), True),
    (TopicAuthorizationFailedError(), False),  # waiting will not grant the ACL
    (ProviderError("overloaded", provider="openai"), False),  # retriable, but lane F's own business
    (ProcessingError("bad record"), False),
    (ValueError("bug"), False),
])
def test_what_counts_as_the_broker_being_away(exc: BaseException, outage: bool) -> None:
    assert is_outage(exc) is outage


@dataclass
class Message:
    value: bytes
    headers: list[tuple[str, bytes]]
    topic: str = "t.governed"
    partition: int = 0
    offset: int = 7
    key: bytes = b"r-1"


@dataclass
class Ctx:
    schemas: Any = SCHEMAS
    worker: str = "worker-test"
    sent: list[tuple[str, Any]] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)

    async def send(self, topic: str, key: str, record: Any) -> None:
        self.sent.append((topic, record))

    async def emit_lanes(self, record: Any) -> None:  # only where a request leaves the lanes
        raise AssertionError("lane D's output is no exit")

    def lane_statuses(self) -> list[tuple[str, str]]:
        """The lane timings the records sent carry: (lane, status)."""
        return [(t.lane, t.status) for _, r in self.sent for t in r.lanes]

    async def dead_letter(self, message: Any, lane: str, exc: BaseException) -> None:
        self.dead.append(type(exc).__name__)


class Lane:
    code, source, output = "D", "encoded", "governed"

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def process(self, record: PipelineRecord, ctx: Any) -> LaneOutcome:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return LaneOutcome(record)


def message() -> Message:
    record = PipelineRecord(request_id="r-1", identity_id="identity-a", user_id="u",
                            submitted_at=1, prompt="Summarise this thread")
    codec = SCHEMAS[TOPICS["encoded"].value_schema]
    return Message(codec.encode(record.to_avro()), [codec.header])


async def test_the_lane_waits_for_the_broker_and_the_request_is_processed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "OUTAGE_FIRST_RETRY_S", 0.0)
    lane, ctx = Lane(KafkaTimeoutError("x"), EntitiesUnavailableError("y")), Ctx()
    await handle(lane, ctx, message())  # type: ignore[arg-type]
    assert lane.calls == 3
    assert ctx.dead == []
    assert [(t, r.status) for t, r in ctx.sent] == [("governed", "accepted")]
    assert ctx.lane_statuses() == [("D", "ok")]


async def test_a_real_error_still_fails_the_request_once() -> None:
    lane, ctx = Lane(TopicAuthorizationFailedError()), Ctx()
    await handle(lane, ctx, message())  # type: ignore[arg-type]
    assert lane.calls == 1
    assert ctx.dead == ["TopicAuthorizationFailedError"]
    assert [(t, r.status) for t, r in ctx.sent] == [("governed", "failed")]
    assert ctx.lane_statuses() == [("D", "error")]


@dataclass
class StoppingApp:
    should_stop: bool = True


@dataclass
class StoppingCtx(Ctx):
    app: StoppingApp = field(default_factory=StoppingApp)


async def test_work_failed_by_its_worker_stopping_is_neither_dead_lettered_nor_failed() -> None:
    """Faust stops the producer while lane F's calls in flight end: their sends fail, which is
    not the request's fault; the lane waits for the stop to cancel it, the record unacked."""
    lane, ctx = Lane(RuntimeError("Producer service not yet started")), StoppingCtx()
    handling = asyncio.create_task(handle(lane, ctx, message()))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert not handling.done()
    handling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await handling
    assert ctx.dead == []
    assert ctx.sent == []
