"""The gateway's request tracker learns a request's state from record headers and decodes the
record only when someone reads it; records written before the headers existed still count."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.tracker import DECODED_KEPT, RequestTracker
from nova.records import CheckpointState, Execution, LaneTiming, PipelineRecord
from nova.settings import load_settings
from schemas import TOPICS, load_schema_set

SCHEMAS = load_schema_set()


@dataclass
class Msg:
    value: bytes
    headers: list[tuple[str, bytes]]


def record(status: str = "completed", **fields: Any) -> PipelineRecord:
    return PipelineRecord(
        request_id="r-1", identity_id="i-1", user_id="u-1", submitted_at=1, prompt="hi",
        status=status,
        lanes=(LaneTiming(lane="A", status="ok", started_at=2, duration_ms=1.5, worker="w"),),
        **fields,
    )


def message(topic: str, rec: PipelineRecord, *, with_headers: bool = True) -> Msg:
    codec = SCHEMAS[TOPICS[topic].value_schema]
    headers = [codec.header, *(rec.kafka_headers() if with_headers else [])]
    return Msg(codec.encode(rec.to_avro()), headers)


class CountingTracker(RequestTracker):
    decoded = 0

    def apply(self, topic: str, data: dict[str, Any]) -> None:  # a record without headers
        self.decoded += 1
        super().apply(topic, data)

    def decode_record(self, topic: str, value: bytes, headers: Any) -> PipelineRecord:
        self.decoded += 1
        return super().decode_record(topic, value, headers)


@pytest.fixture
def tracker() -> CountingTracker:
    return CountingTracker(load_settings(), SCHEMAS)  # never started: no Kafka


def test_a_completed_record_is_known_from_its_headers_and_decoded_only_when_read(
    tracker: CountingTracker,
) -> None:
    rec = record(execution=Execution(provider="p", model="m", text="the answer"))
    tracker.apply_message("completed", message("completed", rec))
    assert tracker.decoded == 0
    view = tracker.get("r-1")
    assert view is not None
    assert tracker.decoded == 1
    assert (view.status, view.identity_id, view.result) == ("completed", "i-1", "the answer")
    assert view.to_json()["lanes"] == [{"lane": "A", "status": "ok", "duration_ms": 1.5}]
    tracker.get("r-1")
    assert tracker.decoded == 1, "decoded once"


def test_only_the_last_reads_keep_a_decoded_record_the_rest_keep_the_raw_value(
    tracker: CountingTracker,
) -> None:
    ids = [f"r-{i}" for i in range(DECODED_KEPT + 1)]
    for rid in ids:
        rec = record(execution=Execution(provider="p", model="m", text=f"answer {rid}"))
        tracker.apply_message("completed", message("completed",
                                                   rec.model_copy(update={"request_id": rid})))
        tracker.get(rid)
    assert tracker.decoded == len(ids)
    assert tracker.get(ids[-1]) is not None
    assert tracker.decoded == len(ids), "the latest read is kept decoded"
    first = tracker.get(ids[0])
    assert tracker.decoded == len(ids) + 1, "the oldest read was decoded again from its bytes"
    assert first is not None
    assert first.result == "answer r-0"


def test_a_record_without_headers_is_decoded_at_once(tracker: CountingTracker) -> None:
    tracker.apply_message("completed", message("completed", record(), with_headers=False))
    assert tracker.decoded == 1
    view = tracker.get("r-1")
    assert view is not None
    assert view.finished


def test_a_late_hold_never_reopens_a_finished_request(tracker: CountingTracker) -> None:
    tracker.apply_message("completed", message("completed", record()))
    cp = CheckpointState(checkpoint_id="c-1", status="pending", reason="PAYMENT",
                         created_at=1, expires_at=2)
    tracker.apply_message("pending", message("pending", record("held", checkpoint=cp)))
    view = tracker.get("r-1")
    assert view is not None
    assert view.status == "completed"


def test_a_held_request_answers_its_checkpoint(tracker: CountingTracker) -> None:
    cp = CheckpointState(checkpoint_id="c-1", status="pending", reason="PAYMENT",
                         created_at=1, expires_at=2)
    tracker.apply_message("pending", message("pending", record("held", checkpoint=cp)))
    view = tracker.get("r-1")
    assert view is not None
    assert view.held
    assert (view.checkpoint_id, view.checkpoint_reason) == ("c-1", "PAYMENT")


def test_an_undecodable_value_keeps_the_state_its_headers_gave(
    tracker: CountingTracker,
) -> None:
    good = message("completed", record())
    tracker.apply_message("completed", Msg(b"\xff\x00garbage", good.headers))
    view = tracker.get("r-1")
    assert view is not None
    assert view.status == "completed"
    assert view.record is None


async def test_a_waiter_is_woken_by_the_headers_and_reads_the_decoded_view(
    tracker: CountingTracker,
) -> None:
    waiting = asyncio.create_task(tracker.wait_until("r-1", lambda v: v.finished, 5))
    await asyncio.sleep(0)
    rec = record(execution=Execution(provider="p", model="m", text="done"))
    tracker.apply_message("completed", message("completed", rec))
    view = await waiting
    assert view is not None
    assert view.result == "done"
