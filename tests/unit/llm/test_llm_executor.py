"""The executor walks a decision's chain under budgets, limits, breaker and retry policy.

These tests use a scripted completion source to state the rules exactly; the same paths
through the real SDKs and the fake server are in test_llm_sdk_fake_server.py.
"""

from datetime import UTC, datetime

import pytest

from nova.errors import ProviderError
from nova.llm.budgets import Budget, BudgetBook
from nova.llm.clients import Completion
from nova.llm.executor import ExecutionRequest, Executor, provider_limiter, provider_state
from nova.llm.health import BreakerConfig, HealthBoard
from nova.llm.limits import RateLimiter
from nova.llm.registry import load_registry
from nova.llm.retry import ContextWindowError, RetryPolicy
from nova.llm.routing import Candidate, Router, RouteRequest, RoutingDecision

REGISTRY = load_registry()
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
SONNET = Candidate("anthropic", "claude-sonnet-4-6")
GPT = Candidate("openai", "gpt-5.1")
GEMINI = Candidate("google", "gemini-2.5-pro")


class ScriptedSource:
    """Answers from a per-provider script; an exhausted script answers successfully."""

    def __init__(self, **scripts):
        self.scripts = {p: list(s) for p, s in scripts.items()}
        self.calls = []

    async def complete(self, provider, model, messages, max_tokens, request_id):
        self.calls.append((provider, model, request_id))
        script = self.scripts.get(provider, [])
        step = script.pop(0) if script else None
        if isinstance(step, Exception):
            raise step
        return Completion(f"ok from {provider}", 1000, 100, 0, 12.5, provider, model)


class Sleeps:
    def __init__(self):
        self.delays = []

    async def __call__(self, seconds):
        self.delays.append(seconds)


def decision(*chain):
    return RoutingDecision(chain[0].provider, chain[0].model, chain, (), "task")


def request(**kw):
    return ExecutionRequest("req-1", ({"role": "user", "content": "hello"},), max_tokens=100, **kw)


def executor(source, **kw):
    sleeps = Sleeps()
    ex = Executor(source, REGISTRY, sleep=sleeps, clock=lambda: 0.0, wall_clock=lambda: NOW, **kw)
    return ex, sleeps


def err(status, retry_after=None, provider="anthropic"):
    return ProviderError(
        f"HTTP {status}", provider=provider, status=status, retry_after_s=retry_after
    )


async def test_success_on_the_primary_records_one_priced_attempt():
    ex, sleeps = executor(ScriptedSource())
    outcome = await ex.execute(decision(SONNET, GPT), request())
    assert outcome.status == "completed"
    assert outcome.completion is not None
    assert outcome.completion.provider == "anthropic"
    (attempt,) = outcome.attempts
    assert (attempt.number, attempt.status, attempt.fallback_from) == (1, "ok", None)
    assert attempt.cost_usd == pytest.approx(1000 * 3e-6 + 100 * 15e-6)
    assert outcome.cost_usd == attempt.cost_usd
    assert sleeps.delays == []


async def test_a_5xx_falls_back_and_records_both_attempts():
    source = ScriptedSource(anthropic=[err(503)])
    ex, sleeps = executor(source)
    outcome = await ex.execute(decision(SONNET, GPT, GEMINI), request())
    assert outcome.status == "completed"
    assert [(a.provider, a.status, a.fallback_from) for a in outcome.attempts] == [
        ("anthropic", "error", None),
        ("openai", "ok", "anthropic/claude-sonnet-4-6"),
    ]
    assert "HTTP 503" in (outcome.attempts[0].error or "")
    assert sleeps.delays == []  # a different provider needs no wait


async def test_a_429_with_retry_after_is_waited_as_told_on_the_same_candidate():
    source = ScriptedSource(anthropic=[err(429, retry_after=2.5)])
    ex, sleeps = executor(source)
    outcome = await ex.execute(decision(SONNET, GPT), request())
    assert sleeps.delays == [2.5]
    assert [(a.provider, a.status, a.waited_s) for a in outcome.attempts] == [
        ("anthropic", "error", 0.0),
        ("anthropic", "ok", 2.5),
    ]


async def test_a_context_overflow_moves_on_to_the_next_model():
    source = ScriptedSource(anthropic=[ContextWindowError("too long", provider="anthropic")])
    ex, _ = executor(source)
    outcome = await ex.execute(decision(SONNET, GPT), request())
    assert outcome.completion is not None
    assert outcome.completion.provider == "openai"


async def test_a_fatal_4xx_stops_without_trying_anyone_else():
    source = ScriptedSource(anthropic=[err(401)])
    ex, _ = executor(source)
    outcome = await ex.execute(decision(SONNET, GPT), request())
    assert outcome.status == "failed"
    assert "HTTP 401" in (outcome.reason or "")
    assert [c[0] for c in source.calls] == ["anthropic"]


async def test_the_last_candidate_is_retried_with_backoff_then_given_up():
    source = ScriptedSource(anthropic=[err(500), err(500), err(500)])
    policy = RetryPolicy(max_attempts_per_candidate=2, base_delay_s=1.0, rand=lambda: 0.5)
    ex, sleeps = executor(source, policy=policy)
    outcome = await ex.execute(decision(SONNET), request())
    assert outcome.status == "failed"
    assert sleeps.delays == [0.5]
    assert len(outcome.calls) == 2


async def test_max_attempts_bounds_the_whole_request():
    source = ScriptedSource(anthropic=[err(500)], openai=[err(500, provider="openai")])
    ex, _ = executor(source, policy=RetryPolicy(max_attempts=2))
    outcome = await ex.execute(decision(SONNET, GPT, GEMINI), request())
    assert outcome.status == "failed"
    assert "gave up after 2 attempts" in (outcome.reason or "")
    assert len(source.calls) == 2


async def test_an_identity_budget_blocks_before_any_call():
    budgets = BudgetBook(
        [Budget("abc-day", "identity", "abc", "day", soft_usd=0.0005, hard_usd=0.001)]
    )
    source = ScriptedSource()
    ex, _ = executor(source, budgets=budgets)
    outcome = await ex.execute(decision(SONNET, GPT), request(identity="abc"))
    assert outcome.status == "budget_exceeded"
    assert outcome.budget == "abc-day"
    assert source.calls == []
    assert outcome.attempts == ()


async def test_a_provider_budget_skips_that_provider_and_spend_is_recorded():
    budgets = BudgetBook(
        [
            Budget("claude-day", "provider", "anthropic", "day", soft_usd=0, hard_usd=0.0001),
            Budget("abc-month", "identity", "abc", "month", soft_usd=0.001, hard_usd=100),
        ]
    )
    ex, _ = executor(ScriptedSource(), budgets=budgets)
    outcome = await ex.execute(decision(SONNET, GPT), request(identity="abc"))
    assert outcome.status == "completed"
    assert [(a.provider, a.status) for a in outcome.attempts] == [
        ("anthropic", "skipped"),
        ("openai", "ok"),
    ]
    assert "budget claude-day" in (outcome.attempts[0].error or "")
    assert [a.budget for a in outcome.alerts] == ["abc-month"]
    assert budgets.spend["abc-month:abc"]["spent_usd"] == outcome.cost_usd > 0


async def test_when_every_provider_is_over_budget_the_outcome_names_the_budget():
    budgets = BudgetBook([Budget("vendors", "provider", "*", "day", soft_usd=0, hard_usd=0.0001)])
    ex, _ = executor(ScriptedSource(), budgets=budgets)
    outcome = await ex.execute(decision(SONNET, GPT), request())
    assert (outcome.status, outcome.budget) == ("budget_exceeded", "vendors")


async def test_a_provider_over_its_rate_limit_is_skipped_for_the_next():
    limiter = RateLimiter()
    limiter.configure("provider:anthropic", rpm=1)
    limiter.acquire(["provider:anthropic"], 0, now=0.0)
    ex, sleeps = executor(ScriptedSource(), limiter=limiter)
    outcome = await ex.execute(decision(SONNET, GPT), request())
    assert [(a.provider, a.status) for a in outcome.attempts] == [
        ("anthropic", "skipped"),
        ("openai", "ok"),
    ]
    assert "provider:anthropic:rpm" in (outcome.attempts[0].error or "")
    assert sleeps.delays == []


async def test_an_identity_limit_waits_once_when_short_and_fails_when_long():
    limiter = RateLimiter()
    limiter.configure("identity:abc", rpm=60)  # one a second
    limiter.acquire(["identity:abc"] * 60, 0, now=0.0)
    ex, sleeps = executor(ScriptedSource(), limiter=limiter)
    outcome = await ex.execute(decision(SONNET), request(identity="abc"))
    # the fake clock does not move, so after the one allowed wait the limit still says no
    assert sleeps.delays == [pytest.approx(1.0)]
    assert (outcome.status, outcome.limit) == ("failed", "identity:abc:rpm")


async def test_an_open_breaker_skips_the_provider_and_live_failures_open_it():
    board = HealthBoard(
        REGISTRY.names, config=BreakerConfig(failure_threshold=2), clock=lambda: 0.0
    )
    source = ScriptedSource(anthropic=[err(500), err(500)])
    ex, _ = executor(source, board=board)
    await ex.execute(decision(SONNET, GPT), request())
    await ex.execute(decision(SONNET, GPT), request())
    assert board.circuit_open("anthropic")
    third = await ex.execute(decision(SONNET, GPT), request())
    assert [(a.provider, a.status) for a in third.attempts] == [
        ("anthropic", "skipped"),
        ("openai", "ok"),
    ]
    assert board.latency_ms("openai") == 12.5


async def test_a_4xx_does_not_count_against_health():
    board = HealthBoard(
        REGISTRY.names, config=BreakerConfig(failure_threshold=1), clock=lambda: 0.0
    )
    ex, _ = executor(ScriptedSource(anthropic=[err(400)]), board=board)
    await ex.execute(decision(SONNET), request())
    assert not board.circuit_open("anthropic")


def test_provider_state_combines_the_board_and_the_limiter_for_the_router():
    limiter = provider_limiter(REGISTRY)
    limiter.acquire(["provider:perplexity"] * 150, 0, now=0.0)  # its rpm is 150
    board = HealthBoard(
        REGISTRY.names, config=BreakerConfig(failure_threshold=1), clock=lambda: 0.0
    )
    board.record("anthropic", ok=False)
    state = provider_state(board, limiter, REGISTRY, now=0.0)
    assert state.over_limit("perplexity")
    assert not state.over_limit("openai")
    routed = Router(REGISTRY).decide(RouteRequest(task_type="code"), state)
    assert routed.provider == "openai"


def test_effective_limits_take_an_operators_figure_and_keep_the_registrys_otherwise():
    from nova.llm.executor import effective_limits
    spec = REGISTRY.provider("openai")
    limits = effective_limits(REGISTRY, {"openai": (7, None), "nowhere": (1, 1)})
    assert limits["openai"] == (7, spec.tpm)
    assert "nowhere" not in limits  # a provider the registry does not know changes nothing
    other = REGISTRY.provider("anthropic")
    assert limits["anthropic"] == (other.rpm, other.tpm)
    assert effective_limits(REGISTRY) == {p.name: (p.rpm, p.tpm) for p in REGISTRY}
