"""Lane D holds the identity boundary even for a request that never passed the gateway.

The gateway refuses a request naming another identity's thread or meeting (403 + fact), but
anything
that can produce to the ``requests`` topic skips that check. Lane D resolves every reference
against the entities topic again: such a request must end ``denied`` for IDENTITY_BOUNDARY
before lane F, so no model ever sees it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from nova.ids import uuid7
from nova.kafka.producer import RecordProducer
from nova.records import PipelineRecord, now_ms
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration


async def test_a_foreign_thread_sent_straight_to_kafka_is_denied_in_lane_d(
    gateway: Any, worker_factory: Any, fake_llm: Any, settings: Any,
) -> None:
    tag = uuid.uuid4().hex[:8]
    a, b = f"a-{tag}", f"b-{tag}"
    operator = gateway.auth(f"ops-{tag}", "operator")
    for ident in (a, b):
        r = await gateway.http.post("/api/v2/identities", headers=operator, json={
            "id": ident, "user_id": f"user-{ident}", "display_name": ident})
        assert r.status_code == 201, r.text
    r = await gateway.http.post("/api/v2/threads", headers=gateway.auth(a),
                                json={"title": f"a's thread {tag}"})
    assert r.status_code == 201, r.text
    thread = r.json()["id"]
    r = await gateway.http.post("/api/v2/meetings", headers=gateway.auth(a),
                                json={"title": f"a's meeting {tag}"})
    assert r.status_code == 201, r.text
    meeting = r.json()["id"]
    r = await gateway.http.post(f"/api/v2/meetings/{meeting}/notes", headers=gateway.auth(a),
                                json={"text": f"a's note {tag}"})
    assert r.status_code == 201, r.text
    worker_factory()

    # B, bypassing the gateway, names A's thread.
    foreign = PipelineRecord(request_id=uuid7(), identity_id=b, user_id=f"user-{b}",
                             submitted_at=now_ms(), prompt="Summarise this thread",
                             thread_id=thread, roles=("member",))
    foreign_meeting = PipelineRecord(request_id=uuid7(), identity_id=b, user_id=f"user-{b}",
                                     submitted_at=now_ms(), prompt="Summarise this meeting",
                                     meeting_id=meeting, roles=("member",))
    # A control: A naming its own thread goes through to the model.
    own = PipelineRecord(request_id=uuid7(), identity_id=a, user_id=f"user-{a}",
                         submitted_at=now_ms(), prompt="Summarise this thread",
                         thread_id=thread, roles=("member",))
    producer = RecordProducer(settings)
    await producer.start()
    try:
        for rec in (foreign, foreign_meeting, own):
            await producer.send("requests", rec.request_id, rec)
    finally:
        await producer.stop()

    tracker = gateway.services.tracker

    async def all_finished() -> bool:
        views = [tracker.get(r.request_id) for r in (foreign, foreign_meeting, own)]
        return all(v is not None and v.finished for v in views)

    await eventually(all_finished, timeout_s=120, message="the requests to finish")

    denied = tracker.get(foreign.request_id)
    assert denied.status == "denied", denied
    assert denied.record is not None
    assert denied.record.governance is not None
    assert denied.record.governance.outcome == "deny"
    assert "IDENTITY_BOUNDARY" in (denied.error or ""), denied.error
    assert any("IDENTITY_BOUNDARY" in reason for reason in denied.record.governance.reasons)
    assert denied.result is None
    assert fake_llm.state.calls_for(foreign.request_id) == []

    denied = tracker.get(foreign_meeting.request_id)
    assert denied.status == "denied", denied
    assert f"resource meeting:{meeting} belongs to another identity" in (denied.error or "")
    assert denied.record is not None
    assert denied.record.context is not None
    assert denied.record.context.sources == ()  # lane B read nothing of A's meeting
    assert f"a's note {tag}" not in denied.record.context.text
    assert fake_llm.state.calls_for(foreign_meeting.request_id) == []

    done = tracker.get(own.request_id)
    assert done.status == "completed", done
    assert fake_llm.state.calls_for(own.request_id) != []
