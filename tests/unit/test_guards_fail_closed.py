"""Guards fail closed: a component that cannot build a guard refuses to start, and no lane
skips a check because a collaborator is missing.

One test per guard (the I/O-bound ones, the boundary guard and the worker's entity view, are in
``tests/integration/test_startup_refusals.py``): the rate limiter, the rules and the budgets
here, plus lane D judging owners and rules against its entity view whatever happens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.ratelimit import build_rate_limiter
from gateway.services import start_services
from nova.domain.governance import Rule, RuleMatch
from nova.entities.store import EntitiesUnavailableError
from nova.entities.view import Witness
from nova.errors import LimitError, StartupError
from nova.records import EncodedPrompt, Intent, Message, PipelineRecord, now_ms
from nova.settings import Settings, load_settings
from streams.execution import ExecutionService
from streams.lanes.lane_d_governance import GovernanceLane

DEAD_KAFKA = "127.0.0.1:1"  # nothing listens there: any attempt to connect fails at once


def settings(**overrides: Any) -> Any:
    return load_settings(environment="test", kafka_bootstrap_servers=DEAD_KAFKA, **overrides)


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


# -- rate limiter ------------------------------------------------------------------------------
@pytest.mark.parametrize("rpm", [0.0, -5.0, math.nan, math.inf])
async def test_the_gateway_refuses_to_start_without_a_working_rate_limiter(rpm: float) -> None:
    """A rate that cannot limit is refused before the gateway connects to anything (the
    settings name an unreachable Kafka: a refusal about Kafka would mean the limiter came
    too late, or was skipped)."""
    with pytest.raises(StartupError) as refused:
        await start_services(settings(gateway_rpm_per_identity=rpm))
    message = one_line(refused.value)
    assert message.startswith("the gateway refuses to start: no identity rate limiter")
    assert "NOVA_GATEWAY_RPM_PER_IDENTITY" in message
    assert "Kafka" not in message


def test_the_rate_limiter_the_gateway_builds_limits() -> None:
    limiter = build_rate_limiter(settings(gateway_rpm_per_identity=2))
    limiter.check("alice")
    limiter.check("alice")
    with pytest.raises(LimitError):
        limiter.check("alice")


# -- authentication throttle -------------------------------------------------------------------
@pytest.mark.parametrize("per_minute", [0.0, -1.0, math.nan, math.inf])
async def test_the_gateway_refuses_to_start_without_a_working_auth_throttle(
    per_minute: float,
) -> None:
    """Like the rate limiter: refused before anything connects (Kafka is unreachable here)."""
    with pytest.raises(StartupError) as refused:
        await start_services(settings(auth_failures_per_minute=per_minute))
    message = one_line(refused.value)
    assert message.startswith("the gateway refuses to start: no authentication throttle")
    assert "NOVA_AUTH_FAILURES_PER_MINUTE" in message
    assert "Kafka" not in message


# -- rules and budgets (lane F) ----------------------------------------------------------------
@dataclass
class Entities:
    """A budget and rule source, as the worker's entity view is."""

    rules: list[Rule] = field(default_factory=list)

    def budgets(self) -> list[Any]:
        return []

    def rules_for(self, identity_id: str) -> list[Rule]:
        return [r for r in self.rules if r.identity_id == identity_id]


def test_lane_f_refuses_to_start_without_a_budget_source() -> None:
    with pytest.raises(StartupError) as refused:
        ExecutionService.build(settings(), budgets=None, rules=Entities())  # type: ignore[arg-type]
    message = one_line(refused.value)
    assert message.startswith("lane F (execution) refuses to start: no budget source")


def test_lane_f_refuses_to_start_without_a_rule_source() -> None:
    with pytest.raises(StartupError) as refused:
        ExecutionService.build(settings(), budgets=Entities(), rules=None)  # type: ignore[arg-type]
    message = one_line(refused.value)
    assert message.startswith("lane F (execution) refuses to start: no rule source")


# -- lane D never skips owners or rules --------------------------------------------------------
@dataclass
class View:
    """An entity view: owners by ``kind:id``, rules, and whether it can sync at all."""

    owners: dict[str, str] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    available: bool = True
    syncs: int = 0

    async def sync(self, witness: Witness | None = None) -> None:
        if not self.available:
            raise EntitiesUnavailableError("the entity store stopped tailing")
        self.syncs += 1

    async def ready(self) -> None:
        return None

    def owner(self, kind: str, entity_id: str) -> str | None:
        return self.owners.get(f"{kind}:{entity_id}")

    def sphere_of(self, identity_id: str) -> str | None:
        return None

    def thread_messages(self, thread_id: str) -> list[Any]:
        return []

    def dataspace_items(self, dataspace_id: str) -> list[Any]:
        return []

    def rules_for(self, identity_id: str) -> list[Rule]:
        return [r for r in self.rules if r.identity_id == identity_id]


@dataclass
class Services:
    entities: View


@dataclass
class Ctx:
    """The parts of LaneContext lane D uses."""

    services: Services
    facts: list[Any] = field(default_factory=list)
    settings: Settings = field(default_factory=lambda: settings())

    def primary_provider(self, record: PipelineRecord, tokens: int) -> str | None:
        return "anthropic"

    def estimate_cost(self, record: PipelineRecord, tokens: int) -> float:
        return 0.0

    async def audit(self, fact: Any) -> None:
        self.facts.append(fact)

    def witness(self) -> Witness | None:
        return None


def request(**fields: Any) -> PipelineRecord:
    return PipelineRecord(
        request_id="r-1", identity_id="alice", user_id="u-alice", submitted_at=now_ms(),
        prompt="Summarise the notes", roles=("member",),
        intent=Intent(task_type="general", action="READ", confidence=1.0),
        encoded=EncodedPrompt(messages=(Message(role="user", content="Summarise the notes"),),
                              token_estimate=5),
        status="in_flight", **fields,
    )


async def test_lane_d_refuses_another_identitys_thread_from_its_entity_view() -> None:
    ctx = Ctx(Services(View(owners={"thread:t-1": "bob"})))
    out = await GovernanceLane().process(request(thread_id="t-1"), ctx)  # type: ignore[arg-type]
    assert out.record.status == "denied"
    assert out.record.governance is not None
    assert any("IDENTITY_BOUNDARY" in r for r in out.record.governance.reasons)


async def test_lane_d_applies_the_identitys_rules_from_its_entity_view() -> None:
    deny = Rule("no-reads", "alice", None, "deny", 0, RuleMatch(actions=frozenset({"READ"})))
    view = View(rules=[deny])
    out = await GovernanceLane().process(request(), Ctx(Services(view)))  # type: ignore[arg-type]
    assert out.record.status == "denied"
    assert out.record.governance is not None
    assert "RULE no-reads: deny" in out.record.governance.reasons
    assert view.syncs == 1  # rules read after the barrier, even with no resource referenced


async def test_lane_d_never_judges_without_its_entity_view() -> None:
    """An entity view that cannot sync stops the lane (the runtime dead-letters the record and
    ends the request failed); it is never judged as if it had no owners and no rules."""
    ctx = Ctx(Services(View(available=False)))
    with pytest.raises(EntitiesUnavailableError):
        await GovernanceLane().process(request(), ctx)  # type: ignore[arg-type]
    assert ctx.facts == []
