"""Health probes feed the board and announce each provider's status when it changes."""

from typing import Any, cast

from nova.errors import ProviderError
from nova.llm.health import BreakerConfig, HealthBoard
from nova.llm.registry import load_registry
from streams.health_probe import HealthProbe, health_event

REGISTRY = load_registry()


class Client:
    def __init__(self, name, pool):
        self.name, self.pool = name, pool

    async def probe(self):
        if self.name in self.pool.down:
            raise ProviderError(f"{self.name} down", provider=self.name, status=503)


class Pool:
    def __init__(self):
        self.down = set()

    def client(self, name):
        return Client(name, self)


def make():
    pool, emitted = Pool(), []
    board = HealthBoard(REGISTRY.names, config=BreakerConfig(failure_threshold=2))

    async def emit(event):
        emitted.append(event)

    probe = HealthProbe(REGISTRY, cast(Any, pool), board, emit, clock_ms=lambda: 120_000)
    return probe, pool, emitted


async def test_first_round_announces_everyone_then_only_changes():
    probe, pool, emitted = make()
    enabled = [p.name for p in REGISTRY if p.enabled]
    await probe.tick()
    assert sorted(e.alert.subject for e in emitted) == sorted(enabled)
    emitted.clear()
    await probe.tick()
    assert emitted == []
    pool.down.add("openai")
    await probe.tick()  # one failure of two: degraded by failure rate
    await probe.tick()  # second: breaker opens
    assert [(e.alert.subject, e.alert.message) for e in emitted] == [
        ("openai", "degraded"), ("openai", "down")]


def test_health_event_is_deterministic_per_provider_status_and_minute():
    a = health_event("openai", "down", 60_000 * 7 + 5)
    b = health_event("openai", "down", 60_000 * 7 + 59_000)
    assert a.event_id == b.event_id == "provider-health/openai/down/7"
    assert a.alert is not None
    assert (a.kind, a.alert.alert_type, a.alert.severity) == ("alert", "PROVIDER_HEALTH", "high")
    assert a.identity_id == "system"


async def test_a_failed_announcement_is_retried_next_round():
    probe, _, emitted = make()
    fail = {"on": True}

    async def flaky(event):
        if fail["on"]:
            raise RuntimeError("broker away")
        emitted.append(event)

    probe.emit = flaky
    assert await probe.tick() == []
    fail["on"] = False
    assert len(await probe.tick()) == len([p for p in REGISTRY if p.enabled])


async def test_the_interval_is_read_at_each_tick_so_an_operators_change_applies_at_once():
    pool, emitted, now, interval = Pool(), [], [0.0], [600.0]
    board = HealthBoard(REGISTRY.names)

    async def emit(event):
        emitted.append(event)

    probe = HealthProbe(REGISTRY, cast(Any, pool), board, emit, clock_ms=lambda: 120_000,
                        interval_s=lambda: interval[0], monotonic=lambda: now[0])
    now[0] = 5.0
    assert await probe.maybe_tick() == []  # 600 s have not passed since start-up
    assert emitted == []
    interval[0] = 5.0  # an operator shortens it
    assert await probe.maybe_tick() != []  # the first round announces every provider
    now[0] = 9.0
    emitted.clear()
    pool.down.add("openai")
    await probe.maybe_tick()
    assert board.status("openai") == "healthy"  # not due: no probe was made
    now[0] = 10.0
    await probe.maybe_tick()
    assert board.status("openai") != "healthy"
