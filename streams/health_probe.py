"""Provider health probes: keep the worker's health board current and tell everyone else.

Live calls feed the board as they return (``nova.llm.executor``), but an idle provider, or one
the breaker has taken out of rotation, gets no live calls: its recovery would go unnoticed.
So every ``llm_probe_interval_s`` the worker makes each enabled provider's cheapest call
(``nova.llm.health.probe``, a models list) and feeds the outcome to the same board.

The board lives in one process; the gateway and operators need the figure too. When a
provider's status (healthy / degraded / down, as the board derives it) differs from the last
one this worker announced, a ``PROVIDER_HEALTH`` alert event goes to the ``events`` topic and
from there to ClickHouse, where the gateway reads the latest status per provider (argMax).
The first observation after start-up is always announced, so a restarted worker corrects a
stale "down" left by its predecessor. The event id is deterministic per provider, status and
minute, so several workers seeing the same change in the same minute write one row.

The interval is an operator's to change over the API (``ProbeSettingsEntity`` on the entities
topic, read at each :meth:`HealthProbe.maybe_tick`), falling back to the worker's setting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from nova.llm.clients import ClientPool
from nova.llm.health import HealthBoard, probe
from nova.llm.registry import Registry
from nova.llm.routing import HealthStatus
from nova.records import Alert, Event, now_ms

log = logging.getLogger(__name__)

ALERT_TYPE: Final = "PROVIDER_HEALTH"
SYSTEM_IDENTITY: Final = "system"  # provider health belongs to no identity; every caller sees it
SEVERITY: Final[dict[str, str]] = {"healthy": "info", "degraded": "warning", "down": "high"}

Emit = Callable[[Event], Awaitable[None]]


def health_event(provider: str, status: HealthStatus, ts_ms: int) -> Event:
    """The alert announcing ``provider`` is ``status``; ``message`` is the bare status."""
    return Event(
        event_id=f"provider-health/{provider}/{status}/{ts_ms // 60_000}",
        kind="alert",
        request_id=f"provider-health/{provider}",
        identity_id=SYSTEM_IDENTITY,
        ts=ts_ms,
        alert=Alert(alert_type=ALERT_TYPE, subject=provider, message=status,
                    severity=SEVERITY[status]),
    )


class HealthProbe:
    """One probe round per :meth:`tick`; remembers what it announced last per provider."""

    def __init__(
        self,
        registry: Registry,
        pool: ClientPool,
        board: HealthBoard,
        emit: Emit,
        *,
        clock_ms: Callable[[], int] = now_ms,
        interval_s: Callable[[], float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.pool = pool
        self.board = board
        self.emit = emit
        self.clock_ms = clock_ms
        self.interval_s = interval_s
        self.monotonic = monotonic
        self.announced: dict[str, HealthStatus] = {}
        self._last = monotonic()

    @property
    def providers(self) -> list[str]:
        return [p.name for p in self.registry if p.enabled]

    async def maybe_tick(self) -> list[Event]:
        """A probe round when ``interval_s()`` has passed since the last one, else nothing.

        The interval is read each time (an operator's probe settings on the entities topic,
        else the worker's setting), so a change reaches every worker without a restart; the
        worker calls this every second or so.
        """
        now = self.monotonic()
        if self.interval_s is not None and now - self._last < self.interval_s():
            return []
        self._last = now
        return await self.tick()

    async def tick(self) -> list[Event]:
        """Probe every enabled provider at once, then announce the statuses that changed."""
        providers = self.providers
        await asyncio.gather(*(probe(p, self.pool, self.board) for p in providers))
        ts = self.clock_ms()
        changed: list[Event] = []
        for provider in providers:
            status = self.board.status(provider)
            if self.announced.get(provider) == status:
                continue
            event = health_event(provider, status, ts)
            try:
                await self.emit(event)
            except Exception:  # not announced: the next tick tries again
                log.exception("could not announce %s health", provider)
                continue
            self.announced[provider] = status
            changed.append(event)
        return changed
