"""Rate-limit math: requests-per-minute and tokens-per-minute token buckets, keyed by string.

Provider limits (``provider:openai``) keep Nova under each vendor's quota so a burst becomes a
short wait or a fallback instead of a storm of 429s; identity limits (``identity:abc``) stop one
caller from starving the rest. The limiter is pure: every call takes ``now`` (seconds, from any
clock the caller chooses) and the answer is either "allowed" or "wait this long, because of that
limit". Its whole state exports to and imports from plain dicts, so it can later live in a
Kafka-backed table; use a wall clock (``time.time``) when state moves between processes.

Sharing a limit between workers: the simplest correct scheme gives each of ``n`` workers a
1/n share (:meth:`RateLimiter.with_share`) and keeps buckets local, so the sum never exceeds the
quota and no coordination is needed on the hot path. Its cost is unused share on idle workers;
a refinement rebalances shares from the table (each worker publishes recent demand, shares are
recomputed proportionally every few seconds) without ever letting their sum exceed one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class LimitDecision:
    """``allowed``, or how long to wait and which bucket (``key:rpm`` / ``key:tpm``) said no."""

    allowed: bool
    wait_s: float = 0.0
    limit: str | None = None


ALLOWED = LimitDecision(True)


@dataclass(frozen=True)
class BucketSpec:
    capacity: float
    refill_per_s: float


class RateLimiter:
    """Token buckets per key; keys without a configured limit are unlimited."""

    def __init__(self) -> None:
        self._specs: dict[str, BucketSpec] = {}
        self._tokens: dict[str, float] = {}
        self._updated: dict[str, float] = {}

    def configure(self, key: str, *, rpm: float | None = None, tpm: float | None = None) -> None:
        """Set ``key``'s per-minute limits; a bucket starts full when first used."""
        for suffix, per_minute in (("rpm", rpm), ("tpm", tpm)):
            bucket = f"{key}:{suffix}"
            if per_minute is None:
                self._specs.pop(bucket, None)
                continue
            if per_minute <= 0:
                raise ValueError(f"{bucket} must be positive")
            self._specs[bucket] = BucketSpec(per_minute, per_minute / 60.0)

    def with_share(self, fraction: float) -> RateLimiter:
        """A fresh limiter with every limit scaled by ``fraction`` (one worker's share)."""
        if not 0 < fraction <= 1:
            raise ValueError("a share is in (0, 1]")
        other = RateLimiter()
        other._specs = {
            b: BucketSpec(s.capacity * fraction, s.refill_per_s * fraction)
            for b, s in self._specs.items()
        }
        return other

    def _level(self, bucket: str, now: float) -> float:
        spec = self._specs[bucket]
        if bucket not in self._tokens:
            return spec.capacity
        elapsed = max(0.0, now - self._updated[bucket])
        return min(spec.capacity, self._tokens[bucket] + elapsed * spec.refill_per_s)

    def _demands(self, keys: Iterable[str], tokens: int) -> list[tuple[str, float]]:
        demands: list[tuple[str, float]] = []
        for key in keys:
            for suffix, amount in (("rpm", 1.0), ("tpm", float(tokens))):
                bucket = f"{key}:{suffix}"
                if bucket in self._specs:
                    demands.append((bucket, amount))
        return demands

    def check(self, keys: Iterable[str], tokens: int, now: float) -> LimitDecision:
        """Would one request of ``tokens`` tokens fit every key's buckets now? Consumes nothing.

        When several buckets say no, the answer names the one with the longest wait. A request
        larger than a bucket's capacity can never fit: its wait is ``inf``.
        """
        worst = ALLOWED
        for bucket, amount in self._demands(keys, tokens):
            level = self._level(bucket, now)
            if level >= amount:
                continue
            spec = self._specs[bucket]
            wait = math.inf if amount > spec.capacity else (amount - level) / spec.refill_per_s
            if worst.allowed or wait > worst.wait_s:
                worst = LimitDecision(False, wait, bucket)
        return worst

    def acquire(self, keys: Iterable[str], tokens: int, now: float) -> LimitDecision:
        """Like :meth:`check`, and when allowed take the request and tokens from every bucket."""
        keys = tuple(keys)
        decision = self.check(keys, tokens, now)
        if decision.allowed:
            for bucket, amount in self._demands(keys, tokens):
                self._set(bucket, self._level(bucket, now) - amount, now)
        return decision

    def settle(self, keys: Iterable[str], token_delta: int, now: float) -> None:
        """Correct the token buckets once actual usage is known (``actual - estimated``).

        Under-estimates may take a bucket below zero: the debt delays later requests.
        """
        for key in keys:
            bucket = f"{key}:tpm"
            if bucket in self._specs:
                capacity = self._specs[bucket].capacity
                self._set(bucket, min(capacity, self._level(bucket, now) - token_delta), now)

    def take(self, key: str, requests: float, now: float) -> None:
        """Take ``requests`` from ``key``'s request bucket whatever its level: another process
        sharing the limit admitted them. Below zero, the debt delays later requests."""
        bucket = f"{key}:rpm"
        if bucket in self._specs:
            self._set(bucket, self._level(bucket, now) - requests, now)

    def exhausted(self, key: str, now: float) -> bool:
        """True when not even a zero-token request would be allowed for ``key`` now."""
        if not self.check((key,), 0, now).allowed:
            return True
        bucket = f"{key}:tpm"
        return bucket in self._specs and self._level(bucket, now) <= 0

    def _set(self, bucket: str, level: float, now: float) -> None:
        self._tokens[bucket] = level
        self._updated[bucket] = now

    def export_state(self) -> dict[str, dict[str, float]]:
        """Bucket levels as plain data: ``{bucket: {"tokens": t, "updated_at": now}}``."""
        return {
            b: {"tokens": self._tokens[b], "updated_at": self._updated[b]} for b in self._tokens
        }

    def import_state(self, state: Mapping[str, Mapping[str, float]]) -> None:
        """Adopt levels exported by :meth:`export_state` (e.g. read back from a shared table)."""
        for bucket, values in state.items():
            self._set(bucket, float(values["tokens"]), float(values["updated_at"]))
