"""Undecodable bytes on a lane topic are parked on the dead-letter topic, and the lane goes on.

Garbage is produced to lane B's input (``intents``) keyed by the id of a valid request sent right
after it, so both land on the same partition and the valid record is the one the lane reads
next: it must still travel the remaining lanes to ``completed``.
"""

from __future__ import annotations

from typing import Any

import pytest

from nova.ids import uuid7
from nova.kafka.producer import RecordProducer
from nova.records import DeadLetter, Event, PipelineRecord, now_ms
from schemas import SCHEMA_HEADER, load_schema_set
from tests.integration.conftest import eventually
from tests.integration.pipeline_checks import DONE, LANES, read_records, read_topic

pytestmark = pytest.mark.integration

GARBAGE = b"\x00garbage"


async def test_garbage_is_dead_lettered_and_the_next_record_completes(
    settings: Any, worker_factory: Any,
):
    request_id = uuid7()
    codec = load_schema_set()["pipeline_record"]
    producer = RecordProducer(settings)
    await producer.start()
    try:
        # Each variant of "not a pipeline record" the codec must refuse.
        cases = {
            "no header": [],
            "current schema header": [codec.header],
            "unknown schema header": [(SCHEMA_HEADER, b"1234567890")],
        }
        for headers in cases.values():
            await producer.send_raw("intents", request_id.encode(), GARBAGE, headers)
        await producer.send("requests", request_id, PipelineRecord(
            request_id=request_id, identity_id="identity-alice", user_id="user-alice",
            submitted_at=now_ms(), prompt="Summarise this thread"))
    finally:
        await producer.stop()

    worker_factory()  # LLM calls go to the session's fake provider server (settings)

    async def completed() -> PipelineRecord | None:
        records = await read_records(settings, "completed", PipelineRecord)
        return next((r for r in records if r.request_id == request_id), None)

    done = await eventually(completed, 60, message=f"{request_id} on the completed topic")
    assert done.status in DONE, (done.status, done.error)
    assert [t.lane for t in done.lanes] == list(LANES)

    letters = await read_records(settings, "deadletter", DeadLetter)
    by_position = {(d.partition, d.offset): d for d in letters}
    assert len(by_position) == len(cases), letters
    for letter in by_position.values():
        assert letter.source_topic == settings.topic("intents")
        assert letter.lane == "B"
        assert letter.value == GARBAGE
        assert letter.key == request_id.encode()
        assert letter.reason
    reasons = {letter.headers.get(SCHEMA_HEADER): letter for letter in by_position.values()}
    assert SCHEMA_HEADER in reasons[None].reason  # "record has no nova-schema header"
    assert reasons[codec.header[1]].error_type == "SchemaError"
    assert reasons[b"1234567890"].error_type == "UnknownSchemaError"
    # The garbage came first on its partition, and the valid request followed on the same one.
    on_intents = [r for r in await read_topic(settings, "intents") if r.key == request_id.encode()]
    valid = [r for r in on_intents if r.value != GARBAGE]
    assert len(valid) == 1
    assert {(valid[0].partition, o) for o in range(valid[0].offset)} >= set(by_position)

    # No lane failed on the valid request, and the garbage produced no lane event.
    lane_events = [(e.request_id, ln) for e in await read_records(settings, "events", Event)
                   for ln in ((e.lane,) if e.lane is not None else e.lanes)]
    assert {rid for rid, _ in lane_events} == {request_id}
    assert {ln.lane: ln.status for _, ln in lane_events} == dict.fromkeys(LANES, "ok")
