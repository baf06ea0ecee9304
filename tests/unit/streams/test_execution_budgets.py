"""ExecutionService: budgets reloaded from entities, spend shared through the ledger."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nova.entities.models import BudgetEntity
from nova.llm.clients import ClientPool, Completion
from nova.llm.outcome import event_id
from nova.records import EncodedPrompt, Intent, Message, PipelineRecord
from nova.settings import load_settings
from streams.execution import ExecutionService
from streams.spend import Charge


class Source:
    def __init__(self):
        self.calls = []

    async def complete(self, provider, model, messages, max_tokens, request_id):
        self.calls.append((provider, request_id))
        return Completion("hi", 1000, 100, 0, 5.0, provider, model)

    async def converse(self, provider, model, conversation, max_tokens, request_id):
        return await self.complete(provider, model, conversation.flat(), max_tokens, request_id)


@dataclass
class Store:
    """The budget and rule source lane F is built with (the worker's entity view)."""

    live: list[BudgetEntity] = field(default_factory=list)
    rules: list[Any] = field(default_factory=list)

    def budgets(self):
        return list(self.live)

    def rules_for(self, identity_id):
        return [r for r in self.rules if r.identity_id == identity_id]


def service(store=None):
    settings = load_settings(environment="test", llm_max_tokens=100)
    store = Store() if store is None else store
    svc = ExecutionService.build(settings.model_copy(update={"llm_fake_url": "http://127.0.0.1:9"}),
                                 budgets=store, rules=store)
    source = Source()
    svc.executor.source = source
    return svc, source


def record(rid, identity="alice"):
    return PipelineRecord(
        request_id=rid, identity_id=identity, user_id="u", submitted_at=0, prompt="hello",
        intent=Intent(task_type="general", action="READ", confidence=1.0),
        encoded=EncodedPrompt(messages=(Message(role="user", content="hello"),),
                              token_estimate=2))


def entity(hard, soft=None, bid="b-1", name="monthly cap"):
    return BudgetEntity(id=bid, owner="alice", name=name, scope="identity", subject="alice",
                        period="month", soft_usd=hard if soft is None else soft, hard_usd=hard,
                        created_at=0)


async def test_budgets_reload_when_the_live_set_changes_and_block_naming_the_budget():
    store = Store()
    svc, source = service(store)
    first = await svc.execute(record("r1"))
    assert first.record.status == "completed"
    spent = first.record.execution.cost_usd
    store.live = [entity(hard=spent)]
    blocked = await svc.execute(record("r2"))
    assert blocked.record.status == "budget_exceeded"
    assert blocked.record.error == "budget exceeded: monthly cap (b-1)"
    assert [c[1] for c in source.calls] == ["r1"]
    assert not svc.refresh_budgets()  # unchanged set: nothing reloaded


async def test_own_events_are_not_charged_twice_but_foreign_ones_are():
    svc, _ = service()
    result = await svc.execute(record("r1"))
    cost = result.record.execution.cost_usd
    own = Charge(event_id("r1", 1), {"identity": "alice"}, cost, _now())
    foreign = Charge("other/llm/1", {"identity": "alice"}, 0.5, _now())
    assert svc.charge([own, foreign]) == 1
    assert svc.ledger.spent("identity", "alice", "month", datetime.now(UTC)) == round(
        cost + 0.5, 9)


async def test_soft_limit_emits_an_alert_event_naming_the_budget():
    svc, _ = service(Store([entity(hard=10.0, soft=0.0)]))
    result = await svc.execute(record("r1"))
    alerts = [e for e in result.events if e.kind == "alert"]
    assert [a.alert.alert_type for a in alerts] == ["BUDGET_SOFT_LIMIT"]
    assert alerts[0].alert.subject == "b-1"
    assert "monthly cap" in alerts[0].alert.message


def _now():
    return datetime.now(UTC)


def test_share_scales_provider_limits():
    svc, _ = service()
    svc.set_share(0.25)
    spec = svc.registry.provider("openai")
    assert svc.executor.limiter is svc.limiter
    assert svc.limiter.check(["provider:openai"], int(spec.tpm * 0.25) + 1, 0.0).allowed is False
    assert svc.limiter.check(["provider:openai"], int(spec.tpm * 0.25) - 10, 0.0).allowed


def test_pool_is_the_fake_when_configured():
    svc, _ = service()
    assert isinstance(svc.pool, ClientPool)
    assert all(p.base_url.startswith("http://127.0.0.1:9/") for p in svc.registry)


async def test_a_redelivered_request_in_flight_is_not_called_twice():
    import asyncio

    svc, source = service()
    first, second = await asyncio.gather(svc.execute(record("r1")), svc.execute(record("r1")))
    assert [c[1] for c in source.calls] == ["r1"]
    assert first.called
    assert not second.called
    assert second.events == ()
    assert second.record.status == "completed"


def test_a_foreign_event_seen_twice_is_charged_once():
    svc, _ = service()
    charge = Charge("other/llm/1", {"identity": "alice"}, 0.5, _now())
    assert svc.charge([charge]) == 1
    assert svc.charge([charge]) == 0
    assert svc.ledger.spent("identity", "alice", "month", _now()) == 0.5


# --- Lane F obeys the identity's provider rules for fallbacks too -------------------------------


def provider_rule(rid, providers, effect="deny", identity="alice"):
    from nova.domain.governance import Rule, RuleMatch

    return Rule(rid, identity, None, effect, 0, RuleMatch(providers=frozenset(providers)))


async def test_a_provider_the_identity_refuses_is_never_called_even_as_the_routed_primary():
    store = Store()
    svc, source = service(store)
    chain = [c.provider for c in svc.route(record("r0"), 2).chain]
    assert len(chain) >= 2, chain
    store.rules = [provider_rule("no-primary", [chain[0]])]
    result = await svc.execute(record("r1"))
    assert result.record.status == "completed"
    assert [p for p, _ in source.calls] == [chain[1]]
    assert result.record.execution.provider == chain[1]


async def test_with_every_provider_refused_the_request_is_denied_and_nothing_is_called():
    store = Store()
    svc, source = service(store)
    chain = {c.provider for c in svc.route(record("r0"), 2).chain}
    store.rules = [provider_rule("none-of-them", chain)]
    result = await svc.execute(record("r1"))
    assert result.record.status == "denied"
    assert "RULE none-of-them: deny" in result.record.error
    assert source.calls == []
    assert not result.called


async def test_another_identitys_provider_rule_changes_nothing_for_me():
    store = Store()
    svc, source = service(store)
    chain = [c.provider for c in svc.route(record("r0"), 2).chain]
    store.rules = [provider_rule("bobs", [chain[0]], identity="bob")]
    result = await svc.execute(record("r1"))
    assert [p for p, _ in source.calls] == [chain[0]]
    assert result.record.status == "completed"


def limits_entity(provider, rpm=None, tpm=None, reset_at=0):
    from nova.entities.models import Changed, ProviderLimitsEntity
    return ProviderLimitsEntity(provider=provider, rpm=rpm, tpm=tpm, reset_at=reset_at,
                                changed=Changed(updated_at=1, updated_by="ops"))


def test_operators_provider_limits_replace_the_registrys_on_the_next_request():
    @dataclass
    class Limits(Store):
        limits: list[Any] = field(default_factory=list)

        def provider_limits(self):
            return list(self.limits)

    store = Limits()
    settings = load_settings(environment="test", llm_max_tokens=100)
    svc = ExecutionService.build(settings.model_copy(update={"llm_fake_url": "http://127.0.0.1:9"}),
                                 budgets=store, rules=store, limits=store)
    svc.set_share(0.5)
    assert not svc.refresh_limits()  # nothing set: the registry's stand
    store.limits = [limits_entity("openai", rpm=4)]
    assert svc.refresh_limits()
    # This worker's share of 4 requests a minute is 2: a third one now is refused.
    assert svc.limiter.acquire(["provider:openai"], 1, 0.0).allowed
    assert svc.limiter.acquire(["provider:openai"], 1, 0.0).allowed
    assert not svc.limiter.acquire(["provider:openai"], 1, 0.0).allowed
    assert svc.executor.limiter is svc.limiter
    assert not svc.refresh_limits()  # unchanged: the buckets keep their levels
    assert not svc.limiter.acquire(["provider:openai"], 1, 0.0).allowed
    store.limits = [limits_entity("openai", rpm=4, reset_at=99)]  # a reset: buckets full again
    assert svc.refresh_limits()
    assert svc.limiter.acquire(["provider:openai"], 1, 0.0).allowed
    svc.set_share(1.0)  # a rebalance keeps the operator's limits
    for _ in range(4):
        assert svc.limiter.acquire(["provider:openai"], 1, 0.0).allowed
    assert not svc.limiter.acquire(["provider:openai"], 1, 0.0).allowed


async def test_a_duplicate_arriving_while_the_attempt_marker_is_written_is_not_taken_for_a_crash():
    """Two gateways can put the same request on the lanes; lane F may see the second copy
    while the first is still waiting for its attempt marker to reach the broker. That copy
    must wait for the first call, not answer ``interrupted`` as if a worker had died."""
    import asyncio
    from types import SimpleNamespace

    from streams.lanes.lane_f_execution import ExecutionLane

    svc, source = service()
    marker_written = asyncio.Event()
    release = asyncio.Event()

    class State:
        def __init__(self):
            self.llm_results = {}

        async def put_durably(self, key, value):
            self.llm_results[key] = value
            marker_written.set()
            await release.wait()  # the broker is slow to acknowledge

    async def nothing(_):
        return None

    ctx: Any = SimpleNamespace(state=State(), settings=svc.settings, emit=nothing, audit=nothing,
                          services=SimpleNamespace(execution=svc))
    lane = ExecutionLane()
    first = asyncio.create_task(lane.process(record("r1"), ctx))
    await marker_written.wait()
    second = asyncio.create_task(lane.process(record("r1"), ctx))
    await asyncio.sleep(0.01)
    release.set()
    outcomes = await asyncio.gather(first, second)
    assert [o.record.status for o in outcomes] == ["completed", "completed"]
    assert [c[1] for c in source.calls] == ["r1"]


async def test_the_result_is_on_the_broker_before_lane_f_hands_the_outcome_on():
    """A SIGKILL after the outcome left lane F but before its result reached the broker left
    only the attempt marker: the redelivered copy answered "interrupted", a second outcome for
    one request (``make chaos`` caught one). The result's write is now awaited first, so a
    broker that refuses it stops the outcome, and the redelivery finds the result."""
    import asyncio
    from types import SimpleNamespace

    import pytest

    from streams.lanes.lane_f_execution import ExecutionLane

    svc, source = service()

    class State:
        def __init__(self):
            self.llm_results = {}
            self.durable = []

        async def put_durably(self, key, value):
            if value is not None and b"completed" in value:
                raise ConnectionError("the broker is gone")  # the result never lands
            self.llm_results[key] = value
            self.durable.append(value)

    async def nothing(_):
        return None

    state = State()
    ctx: Any = SimpleNamespace(state=state, settings=svc.settings, emit=nothing, audit=nothing,
                               services=SimpleNamespace(execution=svc))
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(ExecutionLane().process(record("r1"), ctx), 10)
    assert [c[1] for c in source.calls] == ["r1"]  # called once, under its durable marker
    assert [json_status(v) for v in state.durable] == ["attempted"]  # no outcome without result


def json_status(value):
    import json

    return json.loads(value)["status"]
