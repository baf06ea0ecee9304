"""The gateway's pure LLM pieces: health from ClickHouse rows, identity limits, data scope."""

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from gateway.boundary import BoundaryGuard
from gateway.llm_state import combine, data_scope
from gateway.ratelimit import IdentityRateLimiter, rpm_per_identity
from nova.auth.tokens import Principal
from nova.errors import ForbiddenError, LimitError
from nova.settings import load_settings


def test_health_is_the_worse_of_probe_and_live_error_rate():
    assert combine("openai", None, None, 0.25).status == "healthy"
    assert combine("openai", ("down", "t"), None, 0.25).status == "down"
    assert combine("openai", ("healthy", "t"), (10, 3, 0, 5.0), 0.25).status == "degraded"
    assert combine("openai", ("healthy", "t"), (5, 5, 0, None), 0.25).status == "down"
    few = combine("openai", ("healthy", "t"), (2, 2, 0, None), 0.25)
    assert few.status == "healthy"
    assert few.error_rate == 1.0


def test_identity_limit_refuses_with_the_bucket_and_the_wait():
    now = [0.0]
    limiter = IdentityRateLimiter(2, clock=lambda: now[0])
    limiter.check("alice")
    limiter.check("alice")
    limiter.check("bob")  # buckets are per identity
    with pytest.raises(LimitError) as refused:
        limiter.check("alice")
    assert refused.value.limit == "identity:alice:rpm"
    assert refused.value.retry_after_s == pytest.approx(30.0)
    now[0] = 30.0
    limiter.check("alice")


def test_rpm_setting_defaults_until_it_exists():
    settings = load_settings(environment="test")
    assert rpm_per_identity(settings) == 600
    assert rpm_per_identity(settings.model_copy(update={"gateway_rpm_per_identity": 3})) == 3


def _principal(*roles):
    return Principal(sub="u", identity="alice", roles=frozenset(roles),
                     expires_at=datetime.now(UTC))


class _Producer:
    """Collects what the boundary guard sends (topic, key, record)."""

    def __init__(self):
        self.sent = []

    async def send(self, topic, key, record):
        self.sent.append((topic, key, record))


async def test_every_role_sees_its_own_identity_and_only_an_operator_sees_everyone():
    producer = _Producer()
    guard = BoundaryGuard(cast(Any, None), cast(Any, None), producer)  # data_scope needs neither
    assert await data_scope(_principal("member"), None, guard) == "alice"
    assert await data_scope(_principal("member"), "alice", guard) == "alice"
    assert await data_scope(_principal("analyst"), None, guard) == "alice"
    assert await data_scope(_principal("admin", "analyst"), None, guard) == "alice"
    assert await data_scope(_principal("operator"), None, guard) is None
    assert await data_scope(_principal("operator"), "bob", guard) == "bob"
    assert producer.sent == []
    for roles in (("member",), ("analyst",), ("admin",), ("member", "approver", "admin",
                                                         "analyst")):
        with pytest.raises(ForbiddenError):
            await data_scope(_principal(*roles), "bob", guard)
    # Each refusal is a boundary crossing like any other: an IDENTITY_BOUNDARY fact, by alice.
    alerts = [r.alert for topic, _, r in producer.sent if topic == "events"]
    assert [(a.alert_type, a.subject) for a in alerts] == [
        ("IDENTITY_BOUNDARY", "monitoring:bob")] * 4
    assert [topic for topic, _, _ in producer.sent] == ["events", "facts"] * 4
    assert all(r.identity_id == "alice" for _, _, r in producer.sent)


async def test_health_is_judged_by_an_operators_probe_settings_when_there_are_some():
    from gateway.llm_state import HealthView
    from nova.entities.models import Changed, ProbeSettingsEntity
    from nova.llm.registry import load_registry

    view = HealthView(load_registry(), window_min=5, degraded_rate=0.25)
    assert view.judged_by() == (5, 0.25)
    chosen = ProbeSettingsEntity(interval_s=10, window_min=15, degraded_failure_rate=0.5,
                                 changed=Changed(updated_at=1, updated_by="ops"))
    view.overrides = lambda: chosen
    assert view.judged_by() == (15, 0.5)
    assert set(await view.providers(None)) == set(view.registry.names)  # no ClickHouse: none


async def test_a_check_names_the_outcome_and_how_long_it_took():
    from gateway.llm_state import check_provider
    from nova.errors import ProviderError

    class Client:
        def __init__(self, fail):
            self.fail = fail

        async def probe(self):
            if self.fail:
                raise ProviderError("HTTP 503 from openai", provider="openai", status=503)

    class Pool:
        def __init__(self, fail):
            self.fail = fail

        def client(self, provider):
            return Client(self.fail)

    ticks = iter([1.0, 1.25, 2.0, 2.5])
    ok = await check_provider(cast(Any, Pool(False)), "openai", clock=lambda: next(ticks))
    assert (ok.status, ok.latency_ms, ok.error) == ("healthy", 250.0, None)
    down = await check_provider(cast(Any, Pool(True)), "openai", clock=lambda: next(ticks))
    assert (down.status, down.latency_ms) == ("down", 500.0)
    assert down.error is not None
    assert "HTTP 503" in down.error
