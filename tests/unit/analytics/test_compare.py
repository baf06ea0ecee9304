"""What "equal to a replay" tolerates: t-digest's order-dependent estimates, nothing else."""

from __future__ import annotations

from typing import Any

from analytics.compare import differences


def snap(rollup: list[tuple[Any, ...]], **parts: Any) -> dict[str, Any]:
    return {"counts": {"lane_events": 7}, "latency_rollup": rollup, **parts}


def test_quantile_estimates_a_little_apart_are_equal() -> None:
    live = snap([("lane", "A", 3000, 2, (1.204, 3.91, 12.5))])
    replayed = snap([("lane", "A", 3000, 2, (1.211, 3.95, 12.2))])
    assert differences(live, replayed) == []


def test_a_count_apart_differs_even_with_the_same_quantiles() -> None:
    live = snap([("lane", "A", 3000, 2, (1.2, 3.9, 12.5))])
    replayed = snap([("lane", "A", 3001, 2, (1.2, 3.9, 12.5))])
    assert differences(live, replayed) == ["latency_rollup"]


def test_quantiles_far_apart_differ() -> None:
    live = snap([("lane", "F", 3000, 0, (20.0, 40.0, 80.0))])
    replayed = snap([("lane", "F", 3000, 0, (20.0, 40.0, 95.0))])
    assert differences(live, replayed) == ["latency_rollup"]


def test_a_missing_subject_differs() -> None:
    live = snap([("lane", "A", 1, 0, (1.0,)), ("lane", "B", 1, 0, (1.0,))])
    replayed = snap([("lane", "A", 1, 0, (1.0,))])
    assert differences(live, replayed) == ["latency_rollup"]


def test_every_other_part_compares_exactly() -> None:
    live = snap([], v_cost_daily=[("2026-12-01", 0.000123)])
    replayed = snap([], v_cost_daily=[("2026-12-01", 0.000124)])
    assert differences(live, replayed) == ["v_cost_daily"]
