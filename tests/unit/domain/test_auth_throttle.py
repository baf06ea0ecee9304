"""The failure throttle behind API-key exchange and bearer checks: burst, refill, bounds."""

from __future__ import annotations

import pytest

from nova.auth.throttle import FailureThrottle
from nova.errors import LimitError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(throttle: FailureThrottle, *keys: str) -> list[str]:
    throttle.acquire(*keys)
    return throttle.failed(*keys)


def test_a_burst_of_failures_then_429_with_the_wait_until_the_next_one() -> None:
    clock = Clock()
    throttle = FailureThrottle(6, clock=clock)  # 6 a minute: one every 10 s
    for _ in range(5):
        assert fail(throttle, "source:a") == []
    assert fail(throttle, "source:a") == ["source:a"]  # the sixth runs it out: audit once
    with pytest.raises(LimitError) as info:
        throttle.acquire("source:a")
    assert info.value.limit == "auth:source:a"
    assert info.value.retry_after_s == pytest.approx(10.0)
    assert "retry in 10s" in str(info.value)
    clock.now += 9.9
    with pytest.raises(LimitError):
        throttle.acquire("source:a")
    clock.now += 0.1
    assert fail(throttle, "source:a") == []  # one failure allowed again (reported already)


def test_concurrent_checks_cannot_all_pass_before_the_first_fails() -> None:
    throttle = FailureThrottle(3, clock=Clock())
    for _ in range(3):
        throttle.acquire("source:a")  # three checks in flight, none finished yet
    with pytest.raises(LimitError):
        throttle.acquire("source:a")


def test_keys_are_independent_and_success_costs_nothing() -> None:
    throttle = FailureThrottle(2, clock=Clock())
    fail(throttle, "source:a", "key:k")
    fail(throttle, "source:a", "key:k")
    with pytest.raises(LimitError, match="source:a"):
        throttle.acquire("source:a", "key:k")
    with pytest.raises(LimitError, match="key:k"):
        throttle.acquire("source:b", "key:k")  # another source, same key id: still refused
    throttle.acquire("source:b", "key:other")  # a refusal took nothing from source:b
    throttle.release("source:b", "key:other")
    for _ in range(100):
        throttle.acquire("source:c")  # checks that succeed give their failure back
        throttle.release("source:c")
    assert fail(throttle, "source:c") == []


def test_a_refusal_takes_nothing_from_the_other_keys() -> None:
    throttle = FailureThrottle(1, clock=Clock())
    fail(throttle, "key:k")
    with pytest.raises(LimitError):
        throttle.acquire("source:a", "key:k")
    throttle.acquire("source:a")


def test_a_run_out_key_is_reported_at_most_once_a_window() -> None:
    clock = Clock()
    throttle = FailureThrottle(1, clock=clock)
    assert fail(throttle, "k") == ["k"]
    clock.now += 60
    assert fail(throttle, "k") == ["k"]
    clock.now += 30
    with pytest.raises(LimitError):
        fail(throttle, "k")
    assert throttle.failed("k") == []  # within the window of the last report


def test_state_is_bounded_and_refilled_buckets_are_forgotten() -> None:
    clock = Clock()
    throttle = FailureThrottle(10, clock=clock, max_keys=100)
    for i in range(1000):
        fail(throttle, f"source:{i}")
    assert len(throttle) == 100  # the least recently touched went first
    clock.now += 3600
    assert throttle.wait_s("source:999") == 0
    assert len(throttle) == 99


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
def test_an_unusable_allowance_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        FailureThrottle(rate)
