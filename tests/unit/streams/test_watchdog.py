"""StallDetector: a partition is re-read only when records wait, nothing moves, nothing is read."""

from streams.watchdog import PartitionProgress, StallDetector

STALL = 30.0


def progress(committed, end, last_inbound=None):
    return PartitionProgress(committed=committed, end=end, last_inbound=last_inbound)


def test_a_partition_with_waiting_records_and_no_progress_is_reported_after_the_stall_period():
    d = StallDetector(STALL)
    assert d.check(0.0, {"requests-2": progress(15, 19)}) == []
    assert d.check(29.0, {"requests-2": progress(15, 19)}) == []
    assert d.check(30.0, {"requests-2": progress(15, 19)}) == ["requests-2"]


def test_a_reported_partition_is_not_reported_again_before_another_stall_period():
    d = StallDetector(STALL)
    d.check(0.0, {"p": progress(15, 19)})
    assert d.check(30.0, {"p": progress(15, 19)}) == ["p"]
    assert d.check(35.0, {"p": progress(15, 19)}) == []
    assert d.check(60.0, {"p": progress(15, 19)}) == ["p"]


def test_a_caught_up_partition_is_never_reported():
    d = StallDetector(STALL)
    for t in (0.0, 40.0, 80.0):
        assert d.check(t, {"p": progress(19, 19)}) == []


def test_an_empty_partition_without_a_committed_offset_is_caught_up():
    d = StallDetector(STALL)
    for t in (0.0, 40.0, 80.0):
        assert d.check(t, {"p": progress(None, 0)}) == []


def test_records_never_read_since_start_stall_too():
    d = StallDetector(STALL)
    d.check(0.0, {"p": progress(None, 4)})
    assert d.check(31.0, {"p": progress(None, 4)}) == ["p"]


def test_a_moving_committed_offset_restarts_the_clock():
    d = StallDetector(STALL)
    d.check(0.0, {"p": progress(10, 19)})
    assert d.check(20.0, {"p": progress(12, 19)}) == []
    assert d.check(45.0, {"p": progress(12, 19)}) == []  # 25 s since it last moved
    assert d.check(50.0, {"p": progress(12, 19)}) == ["p"]


def test_a_busy_partition_whose_events_keep_entering_the_stream_is_left_alone():
    """A slow call at the head holds the committed offset, but later events are still read."""
    d = StallDetector(STALL)
    d.check(0.0, {"p": progress(10, 19, last_inbound=0.0)})
    assert d.check(40.0, {"p": progress(10, 19, last_inbound=39.0)}) == []
    assert d.check(80.0, {"p": progress(10, 19, last_inbound=79.0)}) == []


def test_reading_that_stops_starts_the_stall_period_from_the_last_check():
    d = StallDetector(STALL)
    d.check(0.0, {"p": progress(10, 19, last_inbound=0.0)})
    d.check(10.0, {"p": progress(10, 19, last_inbound=9.0)})
    assert d.check(39.0, {"p": progress(10, 19, last_inbound=9.0)}) == []
    assert d.check(41.0, {"p": progress(10, 19, last_inbound=9.0)}) == ["p"]


def test_partitions_are_judged_independently():
    d = StallDetector(STALL)
    d.check(0.0, {"a": progress(1, 5), "b": progress(1, 5)})
    assert d.check(30.0, {"a": progress(1, 5), "b": progress(3, 5)}) == ["a"]


def test_a_revoked_partition_is_forgotten():
    d = StallDetector(STALL)
    d.check(0.0, {"p": progress(1, 5)})
    d.check(10.0, {})  # revoked
    assert d.check(30.0, {"p": progress(1, 5)}) == []  # assigned again: a fresh clock
    assert d.check(60.0, {"p": progress(1, 5)}) == ["p"]
