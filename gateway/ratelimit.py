"""Per-identity request rate limit at the gateway: one caller cannot starve the others.

Checked on every submitted request (before anything reaches Kafka), with the same token
buckets the workers use for providers (``nova.llm.limits.RateLimiter``), keyed
``identity:{id}``. A refusal is a ``LimitError`` naming the bucket (``identity:{id}:rpm``) and
how long to wait, which ``gateway.problems`` turns into 429 problem+json with ``Retry-After``
and ``limit``.

The rate is ``NOVA_GATEWAY_RPM_PER_IDENTITY`` (default 600 per minute, bursts up to a
minute's worth). Buckets are per gateway process: with n gateways behind a balancer an
identity may reach n times the rate; set the value to the per-identity quota divided by n
(the same share rule the workers apply to provider limits).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from nova.errors import LimitError, StartupError
from nova.llm.limits import RateLimiter
from nova.settings import Settings


def rpm_per_identity(settings: Settings) -> float:
    """Requests per minute each identity may submit to this gateway."""
    return settings.gateway_rpm_per_identity


class IdentityRateLimiter:
    """Token buckets per identity, configured on first sight (identities come and go)."""

    def __init__(self, rpm: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rpm <= 0:
            raise ValueError("the per-identity rate must be positive")
        self.rpm = rpm
        self.clock = clock
        self._limiter = RateLimiter()
        self._known: set[str] = set()

    def key(self, identity: str) -> str:
        key = f"identity:{identity}"
        if key not in self._known:
            self._limiter.configure(key, rpm=self.rpm)
            self._known.add(key)
        return key

    def check(self, identity: str) -> None:
        """Take one request from ``identity``'s bucket, or raise ``LimitError`` (429)."""
        verdict = self._limiter.acquire((self.key(identity),), 0, self.clock())
        if not verdict.allowed:
            limit = verdict.limit or f"identity:{identity}:rpm"
            raise LimitError(
                f"identity {identity} is over its request rate limit "
                f"({self.rpm:g} requests per minute); retry in {verdict.wait_s:.1f}s",
                limit=limit,
                retry_after_s=verdict.wait_s,
            )

    def remaining(self, identity: str) -> float:
        """Requests ``identity`` may make right now (for the rate-limits monitoring route)."""
        key = self.key(identity)
        state = self._limiter.export_state().get(f"{key}:rpm")
        if state is None:
            return self.rpm
        elapsed = max(0.0, self.clock() - state["updated_at"])
        return min(self.rpm, state["tokens"] + elapsed * self.rpm / 60.0)


def build_rate_limiter(settings: Settings) -> IdentityRateLimiter:
    """The gateway's limiter; an unusable rate refuses start-up (it is never skipped)."""
    rpm = rpm_per_identity(settings)
    if not math.isfinite(rpm) or rpm <= 0:
        raise StartupError(
            "the gateway",
            "no identity rate limiter can be built",
            f"NOVA_GATEWAY_RPM_PER_IDENTITY={rpm:g} must be a positive number of requests per "
            "minute (default 600)",
        )
    return IdentityRateLimiter(rpm)
