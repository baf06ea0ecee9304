"""Provider health: a circuit breaker per provider and a status derived from recent outcomes.

A provider that keeps failing should stop receiving traffic at once (the breaker opens), get a
single trial call after a cool-down (half-open), and come back only when that trial succeeds.
Live call outcomes and probe outcomes feed the same board, so an idle provider's recovery is
noticed too. Time is a clock function handed in, so tests step it instead of sleeping.

    closed ──N consecutive failures──▶ open ──cooldown elapsed──▶ half-open
      ▲                                  ▲                          │
      └────────────── success ───────────┼──────── failure ─────────┘

Status: ``down`` while the breaker is open, ``degraded`` while half-open or when the recent
failure rate reaches the threshold, otherwise ``healthy``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from nova.errors import NovaError
from nova.llm.routing import HealthStatus, StateSnapshot

if TYPE_CHECKING:
    from nova.llm.clients import ClientPool

BreakerState = Literal["closed", "open", "half-open"]
Clock = Callable[[], float]


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int = 5
    cooldown_s: float = 30.0
    window: int = 20  # recent outcomes kept for the failure rate
    degraded_failure_rate: float = 0.25
    latency_alpha: float = 0.2  # EWMA weight of the newest latency sample


class CircuitBreaker:
    """One provider's breaker. Every method takes ``now`` so it is pure with respect to time."""

    def __init__(self, failure_threshold: int = 5, cooldown_s: float = 30.0) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    def state(self, now: float) -> BreakerState:
        if self._state == "open" and now - self._opened_at >= self.cooldown_s:
            self._state = "half-open"
            self._trial_in_flight = False
        return self._state

    def allow(self, now: float) -> bool:
        """Whether a call may go out now; in half-open only one trial call at a time."""
        state = self.state(now)
        if state == "closed":
            return True
        if state == "half-open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self, now: float) -> None:
        self.state(now)
        self._state = "closed"
        self._failures = 0
        self._trial_in_flight = False

    def record_failure(self, now: float) -> None:
        state = self.state(now)
        self._failures += 1
        if state == "half-open" or self._failures >= self.failure_threshold:
            self._state = "open"
            self._opened_at = now
            self._trial_in_flight = False


class HealthBoard:
    """Breakers, recent outcomes and latency EWMA for every provider; a :class:`ProviderState`."""

    def __init__(
        self,
        providers: Iterable[str],
        *,
        config: BreakerConfig | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.config = config or BreakerConfig()
        self._clock = clock
        self._breakers = {
            p: CircuitBreaker(self.config.failure_threshold, self.config.cooldown_s)
            for p in providers
        }
        self._recent: dict[str, deque[bool]] = {
            p: deque(maxlen=self.config.window) for p in self._breakers
        }
        self._latency: dict[str, float] = {}

    def breaker(self, provider: str) -> CircuitBreaker:
        if provider not in self._breakers:
            self._breakers[provider] = CircuitBreaker(
                self.config.failure_threshold, self.config.cooldown_s
            )
            self._recent[provider] = deque(maxlen=self.config.window)
        return self._breakers[provider]

    def allow(self, provider: str) -> bool:
        return self.breaker(provider).allow(self._clock())

    def record(self, provider: str, *, ok: bool, latency_ms: float | None = None) -> None:
        """Feed one outcome (a live call or a probe) into the provider's breaker and stats."""
        now = self._clock()
        breaker = self.breaker(provider)
        if ok:
            breaker.record_success(now)
        else:
            breaker.record_failure(now)
        self._recent[provider].append(ok)
        if ok and latency_ms is not None:
            previous = self._latency.get(provider)
            alpha = self.config.latency_alpha
            self._latency[provider] = (
                latency_ms if previous is None else alpha * latency_ms + (1 - alpha) * previous
            )

    def breaker_state(self, provider: str) -> BreakerState:
        return self.breaker(provider).state(self._clock())

    def status(self, provider: str) -> HealthStatus:
        state = self.breaker_state(provider)
        if state == "open":
            return "down"
        if state == "half-open":
            return "degraded"
        recent = self._recent[provider]
        if recent and recent.count(False) / len(recent) >= self.config.degraded_failure_rate:
            return "degraded"
        return "healthy"

    def circuit_open(self, provider: str) -> bool:
        return self.breaker_state(provider) == "open"

    def over_limit(self, provider: str) -> bool:
        return False

    def latency_ms(self, provider: str) -> float | None:
        return self._latency.get(provider)

    def snapshot(self, over_limit: Iterable[str] = ()) -> StateSnapshot:
        """Freeze the board (plus the providers the limiter says are over) for one decision."""
        names = list(self._breakers)
        return StateSnapshot(
            statuses={p: self.status(p) for p in names},
            open_circuits=frozenset(p for p in names if self.circuit_open(p)),
            limited=frozenset(over_limit),
            latencies_ms=dict(self._latency),
        )


async def probe(provider: str, pool: ClientPool, board: HealthBoard) -> bool:
    """Make the provider's cheapest call and record the outcome; True when it answered.

    A probe's latency (a models list) says nothing about completion latency, so it does not
    feed the EWMA that the ``fastest`` strategy reads.
    """
    try:
        await pool.client(provider).probe()
    except NovaError:
        board.record(provider, ok=False)
        return False
    board.record(provider, ok=True)
    return True
