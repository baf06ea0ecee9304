"""Lane B specification: a bounded, newest-first, deterministic context snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nova.domain.context import (
    DataspaceItem,
    ThreadMessage,
    build_snapshot,
    estimate_tokens,
)
from nova.errors import ConfigError, ProcessingError

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def msg(i: int, text: str = "x" * 40, minutes: int = 0) -> ThreadMessage:
    return ThreadMessage("t1", f"m{i}", "alice", text, T0 + timedelta(minutes=minutes))


def item(i: int, text: str = "y" * 40, minutes: int = 0) -> DataspaceItem:
    return DataspaceItem("d1", f"i{i}", f"doc {i}", text, T0 + timedelta(minutes=minutes))


@pytest.mark.parametrize(("chars", "tokens"), [(0, 0), (1, 1), (4, 1), (5, 2), (400, 100)])
def test_token_estimate_is_ceil_chars_over_four(chars: int, tokens: int) -> None:
    assert estimate_tokens("a" * chars) == tokens


def test_newest_first_across_messages_and_items() -> None:
    snap = build_snapshot([msg(1, minutes=1), msg(2, minutes=3)], [item(1, minutes=2)], 10_000)
    assert snap.sources == ("msg:t1/m2", "ds:d1/i1", "msg:t1/m1")
    assert snap.item_count == 3
    assert not snap.truncated
    assert snap.total_tokens == sum(i.tokens for i in snap.items)


def test_budget_stops_at_first_item_that_does_not_fit() -> None:
    newest = msg(1, "a" * 40, minutes=3)
    big = msg(2, "b" * 4000, minutes=2)
    small_old = msg(3, "c" * 4, minutes=1)
    snap = build_snapshot([newest, big, small_old], [], budget=100)
    assert snap.sources == ("msg:t1/m1",)  # the small old one is not pulled past the gap
    assert snap.truncated
    assert snap.total_tokens <= snap.budget


def test_zero_budget_gives_empty_truncated_snapshot() -> None:
    snap = build_snapshot([msg(1)], [], budget=0)
    assert snap.items == ()
    assert snap.truncated


def test_empty_inputs_are_not_truncated() -> None:
    snap = build_snapshot([], [], budget=100)
    assert (snap.item_count, snap.total_tokens, snap.truncated) == (0, 0, False)


def test_ties_are_ordered_by_source_id_whatever_the_input_order() -> None:
    a, b = msg(1), msg(2)
    assert build_snapshot([a, b], [], 1000) == build_snapshot([b, a], [], 1000)


def test_negative_budget_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError):
        build_snapshot([], [], budget=-1)


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ProcessingError):
        ThreadMessage("t", "m", "a", "x", datetime(2025, 1, 1))  # noqa: DTZ001
