"""Commits never pass the record at the committed offset until it is acknowledged."""

from streams.consumer import head_is_done


def test_the_head_record_acknowledged_allows_the_commit():
    assert head_is_done(12, [12, 13, 14], [])


def test_a_missing_head_record_holds_the_commit_even_when_the_next_one_is_acknowledged():
    # Faust 0.15 alone would commit 19 here, past record 12.
    assert not head_is_done(12, [13, 14, 15, 16, 17, 18], [])


def test_a_missing_head_holds_the_commit_at_offset_zero_too():
    assert not head_is_done(0, [1, 2], [])
    assert head_is_done(0, [0, 1], [])


def test_a_known_gap_starting_at_the_head_counts_as_done():
    """Offsets that do not exist (a gap Faust recorded while reading) are not waited for."""
    assert head_is_done(12, [15, 16], [12])


def test_nothing_committed_yet_leaves_the_decision_to_faust():
    assert head_is_done(None, [3, 4], [])


def test_nothing_acknowledged_is_not_a_reason_to_hold():
    assert head_is_done(12, [], [])
