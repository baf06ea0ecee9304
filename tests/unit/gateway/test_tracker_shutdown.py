"""A stopping gateway answers the requests waiting for an outcome at once, instead of holding
its shutdown for as long as their clients asked to wait (``wait_ms``)."""

from __future__ import annotations

import asyncio

from gateway.tracker import RequestTracker
from nova.records import PipelineRecord
from nova.settings import load_settings
from schemas import load_schema_set


async def test_release_answers_every_waiter_with_its_request_as_it_stands() -> None:
    tracker = RequestTracker(load_settings(), load_schema_set())  # never started: no Kafka
    tracker.accepted(PipelineRecord(request_id="r-1", identity_id="i-1", user_id="u-1",
                                    submitted_at=0, prompt="hello"))
    waiting = asyncio.create_task(tracker.wait_until("r-1", lambda v: v.finished, 3600))
    await asyncio.sleep(0)
    assert not waiting.done()

    tracker.release_waiters()
    view = await waiting  # not an hour later
    assert view is not None
    assert view.status == "accepted"
    # and one that starts waiting afterwards does not wait at all
    assert await tracker.wait_until("r-2", lambda v: v.finished, 3600) is None
