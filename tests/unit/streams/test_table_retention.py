"""Lane E's and F's tables forget finished requests after ``table_keep_s``, never a waiting one."""

from __future__ import annotations

import json

from nova.records import PipelineRecord
from schemas.topics import changelog_configs
from streams.execution import ExecutionResult, RecentResults
from streams.held import held_entry
from streams.lanes.lane_f_execution import attempt_marker
from streams.retention import YOUNG_RUN, TableRetention, written_at


def pipeline_record() -> PipelineRecord:
    return PipelineRecord(request_id="r-1", identity_id="i-1", user_id="u-1", submitted_at=1,
                          prompt="hi", status="held")


class Clock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def result(at: int, status: str = "completed") -> bytes:
    return json.dumps({"at": at, "status": status, "error": None, "execution": None}).encode()


def test_a_finished_entry_leaves_memory_once_older_than_the_keep_and_not_before() -> None:
    clock = Clock()
    store = {b"old": result(clock.now - 5_000), b"young": result(clock.now - 500)}
    retention = TableRetention(store, keep_ms=1_000, now_ms=clock)
    assert retention.sweep() == 1
    assert list(store) == [b"young"]
    clock.now += 600
    assert retention.sweep() == 1
    assert store == {}


def test_entries_waiting_for_a_person_stay_however_old() -> None:
    clock = Clock()
    record = pipeline_record()
    paused = json.dumps({"status": "paused", "held": "r/cp", "at": 0}).encode()
    pending = json.dumps({"state": "pending", "at": 0,
                          "record": record.model_dump(mode="json")}).encode()
    store = {b"paused": paused, b"pending": pending, b"done": result(0)}
    retention = TableRetention(store, keep_ms=1_000, now_ms=clock)
    assert retention.sweep() == 1
    assert set(store) == {b"paused", b"pending"}


def test_entries_from_before_timestamps_count_from_the_first_sweep() -> None:
    clock = Clock()
    store = {b"legacy": json.dumps({"status": "attempted"}).encode(), b"junk": b"\xff not json"}
    retention = TableRetention(store, keep_ms=1_000, now_ms=clock)
    assert retention.sweep() == 0
    clock.now += 1_001
    assert retention.sweep() == 2


def test_the_stores_key_partition_index_is_kept_in_step() -> None:
    clock = Clock()
    store = {b"a": result(0), b"b": result(clock.now)}
    partitions = {b"a": 0, b"b": 3}
    TableRetention(store, 1_000, clock, partitions=partitions).sweep()
    assert partitions == {b"b": 3}


def test_one_entry_rewritten_in_place_does_not_shield_the_old_ones_behind_it() -> None:
    clock = Clock()
    store = {b"decided-late": result(clock.now), b"old-1": result(0), b"old-2": result(0)}
    assert TableRetention(store, 1_000, clock).sweep() == 2
    assert list(store) == [b"decided-late"]


def test_a_sweep_stops_after_a_run_of_young_entries_so_its_cost_is_what_it_evicts() -> None:
    clock = Clock()
    store = {f"young-{i}".encode(): result(clock.now) for i in range(YOUNG_RUN)}
    store[b"old-behind"] = result(0)  # out of order behind a full run: left for a later sweep
    assert TableRetention(store, 1_000, clock).sweep() == 0
    assert b"old-behind" in store


def test_lane_f_markers_and_lane_e_entries_are_dated() -> None:
    assert isinstance(written_at(attempt_marker(None)), int)
    assert json.loads(attempt_marker(None))["status"] == "attempted"
    assert "run" not in json.loads(attempt_marker(None))
    assert json.loads(attempt_marker("r@cp"))["run"] == "r@cp"
    record = pipeline_record()
    assert written_at(held_entry(record, "approved")) == json.loads(
        held_entry(record, "approved"))["at"]
    assert written_at(held_entry(record, "pending")) is None


def test_changelogs_are_compacted_and_forgotten_only_well_after_a_checkpoint_could_be_decided(
) -> None:
    configs = changelog_configs(checkpoint_ttl_s=86_400, keep_s=600)
    assert configs["cleanup.policy"] == "compact,delete"
    assert int(configs["retention.ms"]) > 86_400 * 1000
    assert int(changelog_configs(60, 600)["retention.ms"]) > 600 * 1000


def test_recent_results_are_bounded_in_number_and_in_time() -> None:
    now = [0.0]
    recent = RecentResults(keep=2, keep_s=60, clock=lambda: now[0])
    done = ExecutionResult(pipeline_record(), (), called=True)
    for key in ("a", "b", "c"):
        recent.put(key, done)
    assert "a" not in recent
    assert "b" in recent
    assert "c" in recent
    now[0] = 59.0
    assert recent.get("c") is done
    now[0] = 61.0
    assert recent.get("c") is None
    assert len(recent) == 0
