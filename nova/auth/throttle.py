"""Failed credential checks, counted per key (source address, API key id): the pure part.

Each key owns a bucket of *failures* that holds ``per_minute`` of them and refills at that rate.
Every check first takes one (:meth:`~FailureThrottle.acquire`, synchronously, so a hundred
concurrent attempts cannot all pass a check before the first of them has failed); while a
bucket holds less than one, the check is refused before any work is done, with the time until
the next failure is allowed. A check that succeeds gives it back
(:meth:`~FailureThrottle.release`), so a client that authenticates correctly is never slowed,
while guessing is held to ``per_minute`` failures a minute per key after a first burst of as
many.

The keyed state is bounded: at most ``max_keys`` buckets are kept (the least recently touched
go first; a forgotten bucket is a full one, the state of a key never seen). A bucket that has
refilled is dropped as well. ``clock`` is injectable, so tests need no sleeps.

:meth:`FailureThrottle.failed` also says which keys have just run out, at most once a window
per key, so that a caller can record an audit fact for a burst of failures without writing one
per refused attempt (an attacker must not be able to flood the audit trail either).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from nova.errors import LimitError

WINDOW_S = 60.0


@dataclass
class _Bucket:
    tokens: float
    updated: float
    reported_at: float | None = None


class FailureThrottle:
    """Token buckets of failures per key; see the module docstring."""

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if not math.isfinite(per_minute) or per_minute <= 0:
            raise ValueError("the failure allowance must be a positive number per minute")
        self.capacity = per_minute
        self.refill_per_s = per_minute / WINDOW_S
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _refilled(self, key: str, now: float) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        bucket.tokens = min(
            self.capacity, bucket.tokens + max(0.0, now - bucket.updated) * self.refill_per_s
        )
        bucket.updated = now
        reported_long_ago = bucket.reported_at is None or now - bucket.reported_at >= WINDOW_S
        if bucket.tokens >= self.capacity and reported_long_ago:
            del self._buckets[key]  # as good as never seen
            return None
        return bucket

    def wait_s(self, key: str) -> float:
        """Seconds before ``key`` may fail again (0 when it may be checked now)."""
        bucket = self._refilled(key, self.clock())
        if bucket is None or bucket.tokens >= 1.0:
            return 0.0
        return (1.0 - bucket.tokens) / self.refill_per_s

    def acquire(self, *keys: str, what: str = "credential checks") -> None:
        """Take one failure from each key for the check about to run, or raise ``LimitError``
        (429 with Retry-After) when any of them has run out; nothing is taken then."""
        now = self.clock()
        buckets = []
        for key in keys:
            bucket = self._refilled(key, now) or _Bucket(self.capacity, now)
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) / self.refill_per_s
                raise LimitError(
                    f"too many failed {what} from {key}; retry in {math.ceil(wait)}s",
                    limit=f"auth:{key}",
                    retry_after_s=wait,
                )
            buckets.append((key, bucket))
        for key, bucket in buckets:
            bucket.tokens -= 1.0
            self._buckets[key] = bucket
            self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def release(self, *keys: str) -> None:
        """The check succeeded: give back what :meth:`acquire` took."""
        now = self.clock()
        for key in keys:
            bucket = self._refilled(key, now)
            if bucket is not None:
                bucket.tokens = min(self.capacity, bucket.tokens + 1.0)

    def failed(self, *keys: str) -> list[str]:
        """The check failed (its failure stays taken): the keys that have run out, each
        reported at most once a window."""
        now = self.clock()
        exhausted = []
        for key in keys:
            bucket = self._refilled(key, now)
            if bucket is None or bucket.tokens >= 1.0:
                continue
            if bucket.reported_at is None or now - bucket.reported_at >= WINDOW_S:
                bucket.reported_at = now
                exhausted.append(key)
        return exhausted

    def __len__(self) -> int:
        return len(self._buckets)
