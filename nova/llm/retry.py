"""Retry and fallback policy: after a failed call, wait and retry, move down the chain, or stop.

The classification is the part that matters: a 429 or a 5xx says "not now / not here", so the
router's fallback chain is the best hedge; a context-window overflow says "not this model", so a
bigger one is tried; any other 4xx says "this request is wrong" and no provider will accept it,
so retrying only burns money. A 429 that says when to come back (``Retry-After``, in seconds or
as an HTTP date) is waited as told when the wait is short; backoff otherwise is exponential with
full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"), with the random source
injectable so tests see exact delays.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from nova.errors import ProviderError

ErrorKind = Literal["rate_limited", "transient", "context_overflow", "fatal"]
Action = Literal["retry_same", "fall_back", "fatal"]


class ContextWindowError(ProviderError):
    """The prompt does not fit the model's context window; a larger model may take it."""

    def __init__(self, message: str, *, provider: str, status: int | None = 400) -> None:
        super().__init__(message, provider=provider, status=status, retriable=True)


def classify(error: ProviderError) -> ErrorKind:
    """Sort a provider error into the four kinds the policy acts on.

    No status (timeouts, refused connections, a provider without credentials here) counts as
    transient: another provider may well answer.
    """
    if isinstance(error, ContextWindowError):
        return "context_overflow"
    status = error.status
    if status == 429:
        return "rate_limited"
    if status is None or status >= 500 or status == 408:
        return "transient"
    return "fatal"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), else None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryDecision:
    action: Action
    delay_s: float = 0.0
    kind: ErrorKind = "fatal"


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, how long, and where next.

    ``max_attempts_per_candidate`` bounds retries on one (provider, model); ``max_attempts``
    bounds the whole request, fallbacks included.
    """

    max_attempts: int = 6
    max_attempts_per_candidate: int = 2
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_retry_after_s: float = 30.0
    rand: Callable[[], float] = field(default=random.random, compare=False)

    def backoff_s(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))] for attempt 1, 2, …"""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** max(0, attempt - 1))
        return self.rand() * ceiling

    def decide(
        self, error: ProviderError, *, attempt_on_candidate: int, has_fallback: bool
    ) -> RetryDecision:
        """What to do after ``error`` on the ``attempt_on_candidate``-th try of one candidate."""
        kind = classify(error)
        if kind == "fatal":
            return RetryDecision("fatal", kind=kind)
        if kind == "context_overflow":
            return RetryDecision("fall_back" if has_fallback else "fatal", kind=kind)
        can_retry = attempt_on_candidate < self.max_attempts_per_candidate
        after = error.retry_after_s
        if (
            kind == "rate_limited"
            and after is not None
            and after <= self.max_retry_after_s
            and can_retry
        ):
            return RetryDecision("retry_same", after, kind)
        if has_fallback:
            return RetryDecision("fall_back", kind=kind)
        if can_retry:
            delay = after if after is not None and after <= self.max_retry_after_s else None
            return RetryDecision(
                "retry_same", self.backoff_s(attempt_on_candidate) if delay is None else delay, kind
            )
        return RetryDecision("fatal", kind=kind)
