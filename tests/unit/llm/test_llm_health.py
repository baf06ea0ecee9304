"""Circuit breaker and health board, driven by a fake clock (no sleeping)."""

import pytest

from nova.llm.health import BreakerConfig, CircuitBreaker, HealthBoard


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_breaker_opens_after_n_consecutive_failures():
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=30)
    for _ in range(2):
        breaker.record_failure(0)
    assert breaker.state(0) == "closed"
    assert breaker.allow(0)
    breaker.record_failure(0)
    assert breaker.state(0) == "open"
    assert not breaker.allow(1)


def test_a_success_resets_the_consecutive_count():
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=30)
    breaker.record_failure(0)
    breaker.record_failure(0)
    breaker.record_success(0)
    breaker.record_failure(0)
    breaker.record_failure(0)
    assert breaker.state(0) == "closed"


def test_open_becomes_half_open_after_cooldown_and_admits_one_trial():
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=30)
    breaker.record_failure(100)
    assert breaker.state(129.9) == "open"
    assert breaker.state(130) == "half-open"
    assert breaker.allow(130) is True
    assert breaker.allow(130) is False  # the trial is still out


def test_half_open_closes_on_success_and_reopens_on_failure():
    closing = CircuitBreaker(failure_threshold=1, cooldown_s=10)
    closing.record_failure(0)
    assert closing.allow(10)
    closing.record_success(11)
    assert closing.state(11) == "closed"

    reopening = CircuitBreaker(failure_threshold=5, cooldown_s=10)
    for _ in range(5):
        reopening.record_failure(0)
    assert reopening.allow(10)
    reopening.record_failure(12)  # one failure in half-open is enough
    assert reopening.state(12) == "open"
    assert reopening.state(21.9) == "open"  # a fresh cooldown from the trial's failure
    assert reopening.state(22) == "half-open"


def test_threshold_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        CircuitBreaker(failure_threshold=0)


def make_board(**config):
    clock = FakeClock()
    board = HealthBoard(["anthropic", "openai"], config=BreakerConfig(**config), clock=clock)
    return board, clock


def test_board_status_follows_the_breaker_and_recent_failures():
    board, clock = make_board(
        failure_threshold=3, cooldown_s=30, window=8, degraded_failure_rate=0.25
    )
    assert board.status("anthropic") == "healthy"
    for ok in (True, True, True, False, True, False):
        board.record("anthropic", ok=ok)
    assert board.status("anthropic") == "degraded"  # 2 of 6 failed
    for _ in range(3):
        board.record("anthropic", ok=False)
    assert board.status("anthropic") == "down"
    assert board.circuit_open("anthropic")
    clock.advance(30)
    assert board.status("anthropic") == "degraded"  # half-open
    assert board.allow("anthropic")
    assert not board.allow("anthropic")
    board.record("anthropic", ok=True)
    assert board.breaker_state("anthropic") == "closed"
    assert board.status("openai") == "healthy"


def test_recent_window_forgets_old_failures():
    board, _ = make_board(failure_threshold=10, window=4)
    board.record("openai", ok=False)
    for _ in range(4):
        board.record("openai", ok=True)
    assert board.status("openai") == "healthy"


def test_latency_is_an_ewma_of_successful_calls():
    board, _ = make_board(latency_alpha=0.5)
    assert board.latency_ms("openai") is None
    board.record("openai", ok=True, latency_ms=100)
    board.record("openai", ok=True, latency_ms=200)
    board.record("openai", ok=False, latency_ms=10_000)  # failures do not count
    assert board.latency_ms("openai") == 150


def test_snapshot_freezes_state_for_routing_and_learns_new_providers():
    board, _ = make_board(failure_threshold=1)
    board.record("groq", ok=False)
    board.record("openai", ok=True, latency_ms=42)
    snap = board.snapshot(over_limit=["anthropic"])
    assert snap.circuit_open("groq")
    assert snap.status("groq") == "down"
    assert snap.over_limit("anthropic")
    assert not board.over_limit("anthropic")
    assert snap.latency_ms("openai") == 42
    board.record("groq", ok=True)
    assert snap.circuit_open("groq")  # the snapshot does not change under the router
