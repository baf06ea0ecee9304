"""Routing is a pure decision: tables in, (provider, model) chain and reasons out."""


import pytest

from nova.errors import ConfigError, ProviderError
from nova.llm.registry import fake_registry, load_registry
from nova.llm.routing import (
    Candidate,
    Router,
    RouteRequest,
    RoutingConfig,
    StateSnapshot,
)

REGISTRY = load_registry()
ROUTER = Router(REGISTRY)
SONNET = Candidate("anthropic", "claude-sonnet-4-6")
GPT = Candidate("openai", "gpt-5.1")
GEMINI = Candidate("google", "gemini-2.5-pro")
MISTRAL = Candidate("mistral", "mistral-large-latest")


def decide(state=None, **request):
    return ROUTER.decide(RouteRequest(**request), state or StateSnapshot())


@pytest.mark.parametrize(
    ("task", "primary"),
    [
        ("code", "anthropic"),
        ("creative", "anthropic"),
        ("analysis", "openai"),
        ("search", "google"),
        ("translation", "google"),
        ("general", "anthropic"),
    ],
)
def test_task_routing_table_picks_the_primary_provider(task, primary):
    decision = decide(task_type=task)
    assert decision.provider == primary
    assert decision.model == REGISTRY.provider(primary).default_model
    assert decision.primary == decision.chain[0]


@pytest.mark.parametrize(
    ("role", "task", "primary"),
    [
        ("orchestrator", "analysis", "anthropic"),
        ("analyst", "code", "openai"),
        ("researcher", "code", "google"),
        ("nova", "analysis", "anthropic"),
    ],
)
def test_role_routing_overrides_the_task(role, task, primary):
    assert decide(task_type=task, role=role).provider == primary


def test_an_unknown_role_falls_back_to_task_routing_and_says_so():
    decision = decide(task_type="analysis", role="poet")
    assert decision.provider == "openai"
    assert "role 'poet' has no route; routed by task" in decision.reasons


def test_default_fallback_chains_follow_the_configuration():
    assert decide(task_type="code").chain == (SONNET, GPT, GEMINI, MISTRAL)
    assert decide(task_type="analysis").chain == (GPT, SONNET, GEMINI, MISTRAL)
    assert decide(task_type="search").chain == (GEMINI, GPT, SONNET, MISTRAL)
    assert decide(task_type="code").fallbacks == (GPT, GEMINI, MISTRAL)


def test_a_model_level_fallback_entry_wins_over_the_provider_entry():
    decision = decide(task_type="code", provider="anthropic", model="claude-opus-4-6")
    assert decision.chain[:2] == (
        Candidate("anthropic", "claude-opus-4-6"),
        Candidate("anthropic", "claude-opus-4-5"),
    )
    assert decision.chain[2] == GPT


def test_nova_role_is_locked_to_anthropic_models_only():
    decision = decide(task_type="search", role="nova")
    assert decision.locked_to == "anthropic"
    assert decision.provider == "anthropic"
    assert {c.provider for c in decision.chain} == {"anthropic"}
    assert len(decision.chain) >= 2  # other Claude models are the fallbacks


@pytest.mark.parametrize(
    ("state", "why"),
    [
        (StateSnapshot(open_circuits=frozenset({"anthropic"})), "circuit breaker open"),
        (StateSnapshot(statuses={"anthropic": "down"}), "health is down"),
        (StateSnapshot(limited=frozenset({"anthropic"})), "over its rate limit"),
    ],
)
def test_nova_role_refuses_rather_than_leaving_anthropic(state, why):
    with pytest.raises(ProviderError) as caught:
        decide(state, task_type="general", role="nova")
    error = caught.value
    assert error.retriable is False
    assert error.provider == "anthropic"
    assert "locked to anthropic" in str(error)
    assert why in str(error)


@pytest.mark.parametrize("strategy", ["cheapest", "fastest", "priority"])
def test_nova_lock_holds_under_every_strategy(strategy):
    state = StateSnapshot(latencies_ms={"groq": 50.0, "anthropic": 900.0})
    decision = decide(state, task_type="general", role="nova", strategy=strategy)
    assert {c.provider for c in decision.chain} == {"anthropic"}


def test_nova_role_cannot_name_another_provider_explicitly():
    with pytest.raises(ProviderError, match="locked to anthropic") as caught:
        decide(task_type="general", role="nova", provider="openai")
    assert caught.value.retriable is False


def test_nova_role_may_name_a_specific_claude_model():
    decision = decide(task_type="general", role="nova", model="claude-haiku-4-5")
    assert decision.primary == Candidate("anthropic", "claude-haiku-4-5")


def test_unavailable_providers_are_skipped_with_reasons():
    state = StateSnapshot(
        open_circuits=frozenset({"anthropic"}),
        statuses={"openai": "down"},
        limited=frozenset({"google"}),
    )
    decision = decide(state, task_type="code")
    assert decision.chain == (MISTRAL,)
    assert decision.reasons == (
        "anthropic: skipped, circuit breaker open",
        "openai: skipped, health is down",
        "google: skipped, over its rate limit",
    )


def test_degraded_providers_stay_in_the_chain_but_move_to_the_end():
    decision = decide(StateSnapshot(statuses={"anthropic": "degraded"}), task_type="code")
    assert decision.chain == (GPT, GEMINI, MISTRAL, SONNET)
    assert "anthropic: degraded, moved to the end of the chain" in decision.reasons


def test_when_nothing_can_serve_the_error_is_retriable_and_lists_reasons():
    everything = frozenset(REGISTRY.names)
    with pytest.raises(ProviderError, match="no provider can serve") as caught:
        decide(StateSnapshot(open_circuits=everything), task_type="code")
    assert caught.value.retriable is True


def test_models_whose_window_is_too_small_are_skipped():
    # 300k tokens: Claude (200k) and mistral-large (131k) cannot; gpt-5.1 (400k) and gemini can.
    decision = decide(task_type="code", estimated_tokens=300_000)
    assert decision.chain[:2] == (GPT, GEMINI)
    assert "anthropic: skipped, no model fits 300000 tokens (largest 200000)" in decision.reasons
    # mistral's default does not fit but codestral (256k) does not either; mistral drops out.
    assert all(c.provider != "mistral" for c in decision.chain)


def test_a_provider_swaps_to_a_bigger_model_of_its_own_when_the_default_is_too_small():
    decision = decide(task_type="analysis", provider="mistral", estimated_tokens=200_000)
    assert decision.primary == Candidate("mistral", "codestral-latest")


def test_an_explicit_model_too_small_for_the_prompt_is_skipped_with_a_reason():
    decision = decide(
        task_type="general", provider="openai", model="gpt-5.1", estimated_tokens=500_000
    )
    assert decision.primary != GPT
    assert any("openai/gpt-5.1: skipped, context window 400000" in r for r in decision.reasons)


def test_explicit_provider_and_model_lead_the_chain():
    decision = decide(task_type="code", provider="groq", model="llama-3.1-8b-instant")
    assert decision.primary == Candidate("groq", "llama-3.1-8b-instant")
    decision = decide(task_type="code", model="gemini-2.5-flash")
    assert decision.primary == Candidate("google", "gemini-2.5-flash")


def test_disabled_providers_are_only_used_when_named():
    assert all(c.provider != "ollama" for c in decide(task_type="code", strategy="cheapest").chain)
    assert decide(task_type="code", provider="ollama").primary == Candidate("ollama", "llama3.1:8b")


def test_cheapest_strategy_orders_by_blended_price():
    decision = decide(task_type="code", strategy="cheapest")
    prices = [REGISTRY.model(c.provider, c.model) for c in decision.chain]
    blended = [m.input + m.output for m in prices]
    assert blended == sorted(blended)
    assert decision.primary == Candidate("groq", "llama-3.1-8b-instant")


def test_fastest_strategy_uses_observed_latency_then_priority():
    state = StateSnapshot(latencies_ms={"mistral": 120.0, "openai": 300.0, "anthropic": 800.0})
    decision = decide(state, task_type="code", strategy="fastest")
    assert [c.provider for c in decision.chain] == ["mistral", "openai", "anthropic", "google"]


def test_priority_strategy_follows_registry_priority():
    decision = decide(task_type="search", strategy="priority")
    assert [c.provider for c in decision.chain] == ["anthropic", "openai", "google", "mistral"]


def test_max_chain_bounds_the_fallbacks():
    router = Router(REGISTRY, RoutingConfig(max_chain=2))
    assert len(router.decide(RouteRequest(task_type="code")).chain) == 2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            RoutingConfig(task_routing={"code": "nobody"}),
            "task_routing\\[code\\]: unknown provider 'nobody'",
        ),
        (
            RoutingConfig(role_routing={"x": "openai/gpt-0"}),
            "role_routing\\[x\\]: provider 'openai' has no model",
        ),
        (RoutingConfig(fallbacks={"anthropic": ("nope",)}), "fallbacks\\[anthropic\\]"),
        (RoutingConfig(task_routing={"poetry": "openai"}), "unknown task types"),
        (RoutingConfig(task_routing={"code": "openai"}), "no route for \\['analysis'"),
        (RoutingConfig(max_chain=0), "max_chain"),
    ],
)
def test_routing_tables_are_validated_against_the_registry(config, message):
    with pytest.raises(ConfigError, match=message):
        Router(REGISTRY, config)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RouteRequest(task_type="poetry"), "unknown task type"),
        (RouteRequest(strategy="random"), "unknown routing strategy"),
        (RouteRequest(provider="nobody"), "unknown LLM provider"),
        (RouteRequest(model="gpt-0"), "no provider offers model"),
        (RouteRequest(provider="openai", model="claude-haiku-4-5"), "has no model"),
        (RouteRequest(provider="openai", model="claude-3-haiku"), "has no model"),
        (RouteRequest(priority="urgent"), "unknown priority"),
    ],
)
def test_bad_requests_are_config_errors(request_, message):
    with pytest.raises(ConfigError, match=message):
        ROUTER.decide(request_)


# -- the seed's model names (aliases in providers.yaml) and priority -------------------------
FAKE_ROUTER = Router(fake_registry("http://127.0.0.1:1"))  # every provider enabled, as in tests


@pytest.mark.parametrize(
    ("model", "served"),
    [
        ("claude-3-opus", "anthropic/claude-opus-4-6"),
        ("claude-3-opus-20240229", "anthropic/claude-opus-4-6"),
        ("claude-3-sonnet", "anthropic/claude-sonnet-4-6"),
        ("claude-3-sonnet-20240229", "anthropic/claude-sonnet-4-6"),
        ("claude-3-5-sonnet-20241022", "anthropic/claude-sonnet-4-6"),
        ("claude-3-haiku", "anthropic/claude-haiku-4-5"),
        ("claude-3-haiku-20240307", "anthropic/claude-haiku-4-5"),
        ("gpt-4o", "openai/gpt-4.1"),  # not azure-openai/gpt-4o: that provider is disabled
        ("gpt-4-turbo", "openai/gpt-4.1"),
        ("gpt-3.5-turbo", "openai/gpt-5-nano"),
        ("gemini-2.0-flash", "google/gemini-2.5-flash"),
        ("gemini-1.5-pro", "google/gemini-2.5-pro"),
        ("mistral-large", "mistral/mistral-large-latest"),
        ("mistral-medium", "mistral/mistral-medium-latest"),
        ("command-r-plus", "cohere/command-r-plus-08-2024"),
        ("command-r", "cohere/command-r-08-2024"),
        ("llama-3.1-405b", "meta/Llama-4-Maverick-17B-128E-Instruct-FP8"),
        ("llama-3.1-70b", "groq/llama-3.3-70b-versatile"),  # four hosts: the first by priority
        ("llama3", "groq/llama-3.1-8b-instant"),  # before ollama, which is disabled
        ("mixtral-8x7b", "together/meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ("claude-haiku-4-5", "anthropic/claude-haiku-4-5"),  # a current id is itself
    ],
)
def test_the_seeds_model_names_are_served_by_current_models(model, served):
    decision = decide(task_type="general", model=model)
    assert str(decision.primary) == served
    alias = served.split("/", 1)[1] != model
    assert any(f"model {model!r} is served as {served}" in r for r in decision.reasons) is alias


@pytest.mark.parametrize(
    ("model", "provider", "served"),
    [
        ("gpt-4o", None, "azure-openai/gpt-4o"),  # enabled here: its own id beats an alias
        ("gpt-4o", "openai", "openai/gpt-4.1"),  # a named provider resolves within itself
        ("llama-3.1-70b", "together", "together/meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ("llama-3.1-70b", "meta", "meta/Llama-3.3-70B-Instruct"),
        ("llama3", None, "groq/llama-3.1-8b-instant"),  # enabled both: priority decides
        ("llama3", "ollama", "ollama/llama3.1:8b"),
    ],
)
def test_a_bare_name_prefers_an_exact_id_then_priority_and_a_named_provider_wins(
    model, provider, served
):
    decision = FAKE_ROUTER.decide(RouteRequest(model=model, provider=provider))
    assert str(decision.primary) == served


@pytest.mark.parametrize(
    ("model", "served"),
    [
        ("claude-3-opus-20240229", "claude-opus-4-6"),  # the seed's NovaLLM.ALLOWED_MODELS
        ("claude-3-sonnet-20240229", "claude-sonnet-4-6"),
        ("claude-3-haiku-20240307", "claude-haiku-4-5"),
        ("claude-3-haiku", "claude-haiku-4-5"),
    ],
)
def test_the_nova_role_takes_the_claude_aliases_and_stays_on_anthropic(model, served):
    decision = decide(task_type="code", role="nova", model=model)
    assert decision.primary == Candidate("anthropic", served)
    assert {c.provider for c in decision.chain} == {"anthropic"}


@pytest.mark.parametrize("model", ["gpt-4o", "gemini-2.0-flash", "llama-3.1-70b"])
def test_the_nova_role_refuses_another_vendors_alias(model):
    with pytest.raises(ProviderError, match="locked to anthropic") as caught:
        decide(task_type="code", role="nova", model=model)
    assert caught.value.retriable is False


def test_aliases_are_resolved_by_explicit_too():
    assert ROUTER.explicit(RouteRequest(model="claude-3-opus")) == ("anthropic", "claude-opus-4-6")
    assert ROUTER.explicit(RouteRequest(provider="openai")) == ("openai", None)
    assert ROUTER.explicit(RouteRequest()) is None
    with pytest.raises(ProviderError, match="locked"):
        ROUTER.explicit(RouteRequest(role="nova", model="gpt-4o"))


@pytest.mark.parametrize(
    ("request_", "primary"),
    [
        (RouteRequest(task_type="code"), "anthropic/claude-sonnet-4-6"),
        (RouteRequest(task_type="code", priority="normal"), "anthropic/claude-sonnet-4-6"),
        (RouteRequest(task_type="code", priority="low"), "anthropic/claude-haiku-4-5"),
        (RouteRequest(task_type="code", priority="high"), "anthropic/claude-opus-4-6"),
        (RouteRequest(task_type="analysis", priority="low"), "openai/gpt-5-nano"),
        (RouteRequest(task_type="analysis", priority="high"), "openai/gpt-5.1"),
        (RouteRequest(task_type="search", priority="low"), "google/gemini-2.5-flash-lite"),
        (RouteRequest(task_type="search", priority="high"), "google/gemini-2.5-pro"),
        (RouteRequest(role="nova", priority="low"), "anthropic/claude-haiku-4-5"),
        (RouteRequest(role="nova", priority="high"), "anthropic/claude-opus-4-6"),
        (RouteRequest(provider="mistral", priority="low"), "mistral/mistral-small-latest"),
        # A named model wins over the priority; the priority still orders the fallbacks.
        (RouteRequest(model="claude-3-haiku", priority="high"), "anthropic/claude-haiku-4-5"),
        (RouteRequest(strategy="priority", priority="low"), "anthropic/claude-haiku-4-5"),
    ],
)
def test_priority_moves_between_cheaper_and_premium_models_of_the_routed_provider(
    request_, primary
):
    decision = ROUTER.decide(request_)
    assert str(decision.primary) == primary
    assert decision.priority == request_.priority


@pytest.mark.parametrize("priority", ["low", "high"])
def test_priority_picks_each_fallback_providers_tier_too(priority):
    decision = decide(task_type="code", priority=priority)
    for c in decision.chain:
        prices = [m.blended_price for m in REGISTRY.provider(c.provider).models]
        want = min(prices) if priority == "low" else max(prices)
        assert REGISTRY.model(c.provider, c.model).blended_price == want, c


def test_a_low_priority_gives_way_to_a_dearer_model_when_no_cheap_one_fits():
    # gpt-4.1 has the largest window of OpenAI's models: at 500k tokens only it fits.
    decision = decide(task_type="analysis", priority="low", estimated_tokens=500_000)
    assert decision.primary == Candidate("openai", "gpt-4.1")
