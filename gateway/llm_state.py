"""The gateway's view of LLM routing: its own router and the providers' health, in one place.

The gateway answers routing questions (``POST /api/v2/llm/routing/decide``) and monitoring
ones without calling any provider, so it needs the same registry and routing tables the
workers use (built here exactly as ``streams.execution.ExecutionService.build`` does) and a
view of provider health. That view must not be one process's memory: the gateway makes no
calls, and several workers each see their own. It is read from ClickHouse instead
(``analytics.monitoring.latest_probes`` and ``live_call_health``):

- the latest ``PROVIDER_HEALTH`` alert per provider (``argMax`` over ``ts``), which workers
  emit when their probe or live calls change a provider's status (``streams.health_probe``);
- the error rate of live calls over the last ``window_min`` minutes (``llm_calls``), counting
  only failures that say "not there" (5xx, timeouts, refused connections), as the breaker does;
  a 429 or another 4xx proves the provider is up.

The effective status is the worse of the two. The answer is cached for ``ttl_s`` so a burst of
decisions costs one query, and stays usable (all healthy, ``source: none``) when this gateway
has no ClickHouse.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from analytics.client import ClickHouse
from analytics.monitoring import latest_probes, live_call_health
from gateway.boundary import BoundaryGuard
from nova.auth.tokens import Principal
from nova.domain.roles import OPERATOR
from nova.entities.models import ProbeSettingsEntity
from nova.errors import ForbiddenError, NovaError
from nova.llm.clients import ClientPool
from nova.llm.health import BreakerConfig
from nova.llm.registry import Registry, deployment_registry
from nova.llm.routing import HealthStatus, Router, StateSnapshot
from nova.settings import Settings

log = logging.getLogger(__name__)

STATUSES: Final[tuple[HealthStatus, ...]] = ("healthy", "degraded", "down")
_RANK: Final = {s: i for i, s in enumerate(STATUSES)}
MIN_CALLS_FOR_RATE: Final = 5  # fewer calls say nothing about a rate


def worse(a: HealthStatus, b: HealthStatus) -> HealthStatus:
    return a if _RANK[a] >= _RANK[b] else b


@dataclass(frozen=True)
class ProviderHealth:
    """One provider's health as the gateway sees it, with where each part came from."""

    provider: str
    status: HealthStatus
    probe_status: HealthStatus | None = None  # None: no worker has announced one yet
    probe_at: str | None = None
    calls: int = 0
    failures: int = 0
    rate_limited: int = 0
    p50_latency_ms: float | None = None

    @property
    def error_rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider, "status": self.status,
            "probe_status": self.probe_status, "probe_at": self.probe_at,
            "calls": self.calls, "failures": self.failures, "rate_limited": self.rate_limited,
            "error_rate": round(self.error_rate, 4), "p50_latency_ms": self.p50_latency_ms,
        }


def combine(
    provider: str,
    probe: tuple[str, str] | None,
    calls: tuple[int, int, int, float | None] | None,
    degraded_rate: float,
) -> ProviderHealth:
    """Pure: the effective health from the latest probe alert and recent call counts."""
    probe_status: HealthStatus | None = None
    probe_at = None
    if probe is not None:
        probe_status = next((s for s in STATUSES if s == probe[0]), None)
        probe_at = probe[1]
    n, failures, limited, p50 = calls or (0, 0, 0, None)
    rate_status: HealthStatus = "healthy"
    if n >= MIN_CALLS_FOR_RATE and failures / n >= degraded_rate:
        rate_status = "down" if failures == n else "degraded"
    status = worse(probe_status or "healthy", rate_status)
    return ProviderHealth(provider, status, probe_status, probe_at, n, failures, limited, p50)


def _no_overrides() -> ProbeSettingsEntity | None:
    return None


@dataclass
class HealthView:
    """Provider health from ClickHouse, cached for ``ttl_s``.

    ``window_min`` and ``degraded_rate`` are the defaults; ``overrides`` returns an operator's
    probe settings (``ProbeSettingsEntity``, the entity view's, set once the store runs), whose
    figures win, so every gateway judges health alike and a restart keeps them.
    """

    registry: Registry
    window_min: int = 5
    ttl_s: float = 2.0
    degraded_rate: float = BreakerConfig().degraded_failure_rate
    overrides: Callable[[], ProbeSettingsEntity | None] = _no_overrides
    _cached: dict[str, ProviderHealth] = field(default_factory=dict)
    _at: float = float("-inf")
    _judged_by: tuple[int, float] = (0, 0.0)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def judged_by(self) -> tuple[int, float]:
        """The (window in minutes, degraded failure share) health is judged by now."""
        chosen = self.overrides()
        if chosen is None:
            return self.window_min, self.degraded_rate
        return chosen.window_min, chosen.degraded_failure_rate

    async def providers(self, ch: ClickHouse | None) -> dict[str, ProviderHealth]:
        """Every registry provider's health (cached; recomputed when older than ``ttl_s`` or
        when the settings it is judged by changed)."""
        async with self._lock:
            window_min, degraded_rate = judged_by = self.judged_by()
            fresh = time.monotonic() - self._at < self.ttl_s and judged_by == self._judged_by
            if fresh and self._cached:
                return self._cached
            probes: dict[str, tuple[str, str]] = {}
            calls: dict[str, tuple[int, int, int, float | None]] = {}
            if ch is not None:
                try:
                    probes = await asyncio.to_thread(latest_probes, ch)
                    calls = await asyncio.to_thread(live_call_health, ch, window_min)
                except Exception:  # health must not take the gateway down; say so instead
                    log.exception("provider health query failed; answering from no data")
            self._cached = {
                p: combine(p, probes.get(p), calls.get(p), degraded_rate)
                for p in self.registry.names
            }
            self._at, self._judged_by = time.monotonic(), judged_by
            return self._cached

    async def snapshot(self, ch: ClickHouse | None) -> StateSnapshot:
        """The router's :class:`ProviderState`: statuses and latencies (no limits here)."""
        health = await self.providers(ch)
        return StateSnapshot(
            statuses={p: h.status for p, h in health.items()},
            latencies_ms={p: h.p50_latency_ms for p, h in health.items()
                          if h.p50_latency_ms is not None},
        )

    def invalidate(self) -> None:
        self._at = float("-inf")


@dataclass
class LlmState:
    """What the LLM routes share (``Services.llm``, ``gateway.deps.LlmDep``).

    ``pool`` is for on-demand health checks only (``POST .../health/{provider}/check``): the
    gateway makes no completion calls. Its clients are built on first use and closed with the
    services.
    """

    registry: Registry
    router: Router
    health: HealthView
    pool: ClientPool


def build_registry(settings: Settings) -> Registry:
    """The registry the workers use (:func:`~nova.llm.registry.deployment_registry`)."""
    return deployment_registry(settings, os.environ)


def build_llm_state(settings: Settings) -> LlmState:
    registry = build_registry(settings)
    return LlmState(registry=registry, router=Router(registry), health=HealthView(registry),
                    pool=ClientPool.from_settings(settings, os.environ, registry=registry))


@dataclass(frozen=True)
class CheckOutcome:
    """One on-demand check of a provider: did its cheapest call answer, how fast, and if not
    why (the error's class and message, which name no secret)."""

    provider: str
    status: HealthStatus
    latency_ms: float
    error: str | None = None


async def check_provider(pool: ClientPool, provider: str,
                         clock: Callable[[], float] = time.perf_counter) -> CheckOutcome:
    """Make ``provider``'s cheapest call (a models list, as the workers' probe does) now."""
    started = clock()
    try:
        await pool.client(provider).probe()
    except NovaError as exc:
        return CheckOutcome(provider, "down", round((clock() - started) * 1000, 3),
                            f"{type(exc).__name__}: {exc}"[:500])
    return CheckOutcome(provider, "healthy", round((clock() - started) * 1000, 3))


# -- what the LLM and monitoring routes share ---------------------------------------------
SEE_ALL_ROLES: Final = (OPERATOR,)


async def data_scope(principal: Principal, identity: str | None, guard: BoundaryGuard,
                     ) -> str | None:
    """Whose data a monitoring answer covers: an identity, or None for every identity.

    Every role but ``operator`` acts within its token's identity (``nova.domain.roles``):
    members, approvers, admins and analysts see their own identity's figures, and asking for
    another is a boundary crossing, refused with a 403 and recorded as an IDENTITY_BOUNDARY fact
    like every other one. An operator sees every identity, or one when it passes ``identity``:
    the figures hold costs and counts, never prompts or answers, and reading them changes
    nothing, so it is not an audited act.
    """
    if principal.has_role(*SEE_ALL_ROLES):
        return identity
    if identity is not None and identity != principal.identity:
        await guard.violation(principal, "monitoring", identity, identity, operation="read")
        raise ForbiddenError("only an operator reads another identity's figures")
    return principal.identity
