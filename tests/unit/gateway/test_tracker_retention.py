"""The gateway's request tracker keeps a finished request's view for a while, not for ever:
its waiting client and the GETs that follow find it in memory, anything older is rebuilt from
ClickHouse by the caller, and a request still held or in flight is never dropped for its age."""

from __future__ import annotations

from gateway.tracker import RequestTracker
from nova.records import PipelineRecord
from nova.settings import load_settings
from schemas import load_schema_set

SCHEMAS = load_schema_set()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(rid: str, status: str) -> PipelineRecord:
    return PipelineRecord(request_id=rid, identity_id="i-1", user_id="u-1", submitted_at=1,
                          prompt="hi", status=status)


def tracker(clock: Clock, capacity: int = 1000) -> RequestTracker:
    return RequestTracker(load_settings(), SCHEMAS, capacity=capacity, retain_s=60, clock=clock)


def test_a_finished_view_is_kept_within_the_retention_and_dropped_after_it() -> None:
    clock = Clock()
    t = tracker(clock)
    t.apply_completed(record("old", "completed"))
    clock.now += 59
    t.apply_completed(record("new", "completed"))
    assert t.get("old") is not None
    clock.now += 2  # "old" is 61 s old, "new" 2 s
    t.apply_completed(record("newest", "completed"))
    assert t.get("old") is None
    assert t.get("new") is not None
    assert t.get("newest") is not None
    assert len(t) == 2


def test_held_and_in_flight_views_outlive_the_retention_and_do_not_shield_finished_ones() -> None:
    clock = Clock()
    t = tracker(clock)
    t.apply_pending(record("held", "in_flight"))
    t.accepted(record("flying", "accepted"))
    t.apply_completed(record("done", "completed"))
    clock.now += 3600
    t.apply_completed(record("later", "completed"))
    assert t.get("done") is None  # behind two unfinished views at the front, still dropped
    view = t.get("held")
    assert view is not None
    assert view.held
    assert t.get("flying") is not None
    assert t.get("later") is not None


def test_a_view_that_changes_again_is_retained_from_its_last_change() -> None:
    clock = Clock()
    t = tracker(clock)
    t.apply_pending(record("r", "in_flight"))
    clock.now += 3600
    t.apply_completed(record("r", "completed"))  # approved an hour later, then finished
    clock.now += 30
    t.apply_completed(record("other", "completed"))
    view = t.get("r")
    assert view is not None
    assert view.status == "completed"


def test_capacity_still_bounds_the_views_whatever_their_state() -> None:
    clock = Clock()
    t = tracker(clock, capacity=3)
    for i in range(5):
        t.apply_pending(record(f"held-{i}", "in_flight"))
    assert len(t) == 3
    assert t.get("held-0") is None
    assert t.get("held-4") is not None
