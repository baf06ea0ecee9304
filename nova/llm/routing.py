"""Pure routing: which provider and model serve a request, and what to try if it fails.

Routing is a decision, not an action. It is a function of the request (task, role, explicit
choice, strategy, size) and a snapshot of provider state (health, breaker, rate limits), so it
is tested with tables of cases and no network. The decision carries its whole fallback chain
and the reasons every other option was skipped, so the audit trail can show why a request went
where it went.

The ``nova`` role is locked to Anthropic: its chain holds Claude models only, and when Anthropic
cannot serve, the decision refuses (non-retriable :class:`~nova.errors.ProviderError`) rather
than quietly sending Nova's own reasoning to another vendor.

A model may be named by an older name the registry lists as one of its aliases (the seed's
``claude-3-haiku-20240307``, ``gpt-4o``): a bare name goes to an enabled provider before a
disabled one, to a model of that id before one it is an alias of, then by provider priority, so
an alias never sends a request to a provider nobody enabled. The decision says which model the
name stood for. A request's ``priority`` picks among the models of each provider in its chain
that it does not name: ``normal`` the provider's default, ``low`` its cheapest (the cheap models
are the fast ones), ``high`` its most expensive.

Everything that does not depend on the request is indexed when the :class:`Router` is built,
so a decision is a handful of dict lookups (well under a millisecond).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, Protocol, get_args

from nova.domain.kinds import Priority as Priority
from nova.domain.kinds import TaskType as TaskType
from nova.errors import ConfigError, ProviderError
from nova.llm.registry import ModelSpec, ProviderSpec, Registry

Strategy = Literal["task", "cheapest", "fastest", "priority"]
HealthStatus = Literal["healthy", "degraded", "down"]

TASK_TYPES: frozenset[str] = frozenset(get_args(TaskType))
STRATEGIES: frozenset[str] = frozenset(get_args(Strategy))
PRIORITIES: frozenset[str] = frozenset(get_args(Priority))

DEFAULT_TASK_ROUTING: Mapping[str, str] = MappingProxyType(
    {
        "code": "anthropic",
        "creative": "anthropic",
        "analysis": "openai",
        "search": "google",
        "translation": "google",
        "general": "anthropic",
    }
)
DEFAULT_ROLE_ROUTING: Mapping[str, str] = MappingProxyType(
    {
        "nova": "anthropic",
        "orchestrator": "anthropic",
        "analyst": "openai",
        "researcher": "google",
        "classifier": "openai/gpt-5-mini",  # lane D's optional second opinion: small and cheap
    }
)
DEFAULT_LOCKED_ROLES: Mapping[str, str] = MappingProxyType({"nova": "anthropic"})
# Keys are a provider, a "provider/model", or "*" for any provider without its own entry.
# Targets are a provider (its default model, or the first that fits) or a "provider/model".
DEFAULT_FALLBACKS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "anthropic": ("openai", "google", "mistral"),
        "anthropic/claude-opus-4-6": ("anthropic/claude-opus-4-5", "openai", "google"),
        "openai": ("anthropic", "google", "mistral"),
        "google": ("openai", "anthropic", "mistral"),
        "mistral": ("openai", "anthropic", "google"),
        "*": ("anthropic", "openai", "google"),
    }
)


class ProviderState(Protocol):
    """What the router needs to know about providers right now (health board + limiter)."""

    def status(self, provider: str) -> HealthStatus: ...

    def circuit_open(self, provider: str) -> bool: ...

    def over_limit(self, provider: str) -> bool: ...

    def latency_ms(self, provider: str) -> float | None: ...


@dataclass(frozen=True)
class StateSnapshot:
    """A plain-data :class:`ProviderState`; providers not mentioned are healthy and unknown."""

    statuses: Mapping[str, HealthStatus] = field(default_factory=dict)
    open_circuits: frozenset[str] = frozenset()
    limited: frozenset[str] = frozenset()
    latencies_ms: Mapping[str, float] = field(default_factory=dict)

    def status(self, provider: str) -> HealthStatus:
        return self.statuses.get(provider, "healthy")

    def circuit_open(self, provider: str) -> bool:
        return provider in self.open_circuits

    def over_limit(self, provider: str) -> bool:
        return provider in self.limited

    def latency_ms(self, provider: str) -> float | None:
        return self.latencies_ms.get(provider)


ALL_HEALTHY = StateSnapshot()


@dataclass(frozen=True, slots=True)
class Candidate:
    """One (provider, model) the executor may call."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class RouteRequest:
    """What routing depends on; ``estimated_tokens`` is the prompt plus expected output."""

    task_type: str = "general"
    role: str | None = None
    provider: str | None = None
    model: str | None = None
    strategy: str = "task"
    estimated_tokens: int = 0
    priority: str = "normal"


@dataclass(frozen=True)
class RoutingDecision:
    """Where to send a request: ``chain[0]`` first, then the rest in order."""

    provider: str
    model: str
    chain: tuple[Candidate, ...]
    reasons: tuple[str, ...]
    strategy: str
    locked_to: str | None = None
    priority: str = "normal"

    @property
    def primary(self) -> Candidate:
        return self.chain[0]

    @property
    def fallbacks(self) -> tuple[Candidate, ...]:
        return self.chain[1:]


@dataclass(frozen=True)
class RoutingConfig:
    """The routing tables; the defaults are the seed's."""

    task_routing: Mapping[str, str] = field(default_factory=lambda: DEFAULT_TASK_ROUTING)
    role_routing: Mapping[str, str] = field(default_factory=lambda: DEFAULT_ROLE_ROUTING)
    locked_roles: Mapping[str, str] = field(default_factory=lambda: DEFAULT_LOCKED_ROLES)
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_FALLBACKS)
    max_chain: int = 4


Entry = tuple[str, str | None]  # (provider, model or None for "its best fitting model")


def models_by_priority(spec: ProviderSpec) -> dict[str, tuple[ModelSpec, ...]]:
    """A provider's models in the order each priority tries them (module docstring); ties keep
    the registry's order."""
    return {
        "normal": spec.models_in_preference(),
        "low": tuple(sorted(spec.models, key=lambda m: m.blended_price)),
        "high": tuple(sorted(spec.models, key=lambda m: -m.blended_price)),
    }


def parse_target(target: str) -> Entry:
    """``"openai"`` → ("openai", None); ``"openrouter/openai/gpt-5-mini"`` splits at the first /."""
    provider, _, model = target.partition("/")
    return provider, (model or None)


class Router:
    """Builds :class:`RoutingDecision` values from a registry and routing tables."""

    def __init__(self, registry: Registry, config: RoutingConfig | None = None) -> None:
        self.registry = registry
        self.config = config or RoutingConfig()
        if self.config.max_chain < 1:
            raise ConfigError("routing max_chain must be at least 1")
        self._check_tables()
        self._models: dict[str, dict[str, tuple[ModelSpec, ...]]] = {
            p.name: models_by_priority(p) for p in registry
        }
        self._enabled = frozenset(p.name for p in registry if p.enabled)
        self._priority: dict[str, int] = {p.name: p.priority for p in registry}
        self._by_priority: tuple[Entry, ...] = tuple(
            (p.name, None)
            for p in sorted(registry, key=lambda p: (p.priority, p.name))
            if p.enabled
        )
        # Cheapest by blended list price (input + output per million), then provider priority.
        self._by_price: tuple[Entry, ...] = tuple(
            (p.name, m.id)
            for p, m in sorted(
                ((p, m) for p in registry if p.enabled for m in p.models),
                key=lambda pm: (pm[1].input + pm[1].output, pm[0].priority, pm[1].id),
            )
        )
        self._fallback_entries: dict[str, tuple[Entry, ...]] = {
            key: tuple(parse_target(t) for t in targets)
            for key, targets in self.config.fallbacks.items()
        }
        # Who serves a bare model name: enabled first, its own id before an alias, then priority.
        offers: dict[str, list[tuple[bool, bool, int, str, str]]] = {}
        for p in registry:
            for m in p.models:
                for name, alias in ((m.id, False), *((a, True) for a in m.aliases)):
                    offers.setdefault(name, []).append(
                        (not p.enabled, alias, p.priority, p.name, m.id))
        self._owner: dict[str, tuple[str, str]] = {
            name: (best[3], best[4]) for name, found in offers.items() for best in [min(found)]
        }

    def _check_tables(self) -> None:
        cfg = self.config
        targets: list[tuple[str, str]] = [
            *((f"task_routing[{k}]", v) for k, v in cfg.task_routing.items()),
            *((f"role_routing[{k}]", v) for k, v in cfg.role_routing.items()),
            *((f"locked_roles[{k}]", v) for k, v in cfg.locked_roles.items()),
            *(
                (f"fallbacks[{k}]", t)
                for k, ts in cfg.fallbacks.items()
                for t in ((*ts, k) if k != "*" else ts)
            ),
        ]
        for where, target in targets:
            provider, model = parse_target(target)
            if provider not in self.registry:
                raise ConfigError(f"routing {where}: unknown provider {provider!r}")
            if model is not None and not self.registry.provider(provider).has_model(model):
                raise ConfigError(f"routing {where}: provider {provider!r} has no model {model!r}")
        unknown_tasks = set(cfg.task_routing) - TASK_TYPES
        if unknown_tasks:
            raise ConfigError(f"routing task_routing: unknown task types {sorted(unknown_tasks)}")
        missing_tasks = TASK_TYPES - set(cfg.task_routing)
        if missing_tasks:
            raise ConfigError(f"routing task_routing: no route for {sorted(missing_tasks)}")

    def decide(self, request: RouteRequest, state: ProviderState = ALL_HEALTHY) -> RoutingDecision:
        """Choose the primary candidate and the fallback chain for ``request``."""
        if request.task_type not in TASK_TYPES:
            raise ConfigError(
                f"unknown task type {request.task_type!r}; one of {sorted(TASK_TYPES)}"
            )
        if request.strategy not in STRATEGIES:
            raise ConfigError(f"unknown routing strategy {request.strategy!r}")
        if request.priority not in PRIORITIES:
            raise ConfigError(
                f"unknown priority {request.priority!r}; one of {sorted(PRIORITIES)}"
            )
        lock = self.config.locked_roles.get(request.role) if request.role else None
        reasons: list[str] = []
        explicit = self.explicit(request, lock)
        if explicit is not None and explicit[1] is not None and explicit[1] != request.model:
            reasons.append(f"model {request.model!r} is served as {explicit[0]}/{explicit[1]}")
        if lock is not None:
            entries = self._locked_entries(lock, explicit, request.priority)
        else:
            entries = self._entries(request, explicit, state, reasons)
        chain = self._resolve(entries, request, state, reasons, explicit)
        if not chain:
            detail = "; ".join(reasons) or "no candidates"
            if lock is not None:
                raise ProviderError(
                    f"role {request.role!r} is locked to {lock}, which cannot serve it now "
                    f"({detail}); no other provider may serve this role",
                    provider=lock,
                    retriable=False,
                )
            first = entries[0][0] if entries else "router"
            raise ProviderError(f"no provider can serve this request: {detail}", provider=first)
        return RoutingDecision(
            provider=chain[0].provider,
            model=chain[0].model,
            chain=chain,
            reasons=tuple(reasons),
            strategy=request.strategy,
            locked_to=lock,
            priority=request.priority,
        )

    def explicit(self, request: RouteRequest, lock: str | None = None) -> Entry | None:
        """The (provider, model id) a request names, its aliases resolved; None if it names
        neither. :class:`~nova.errors.ConfigError` for a name nobody offers,
        :class:`~nova.errors.ProviderError` for a provider the role's lock forbids."""
        provider, model = request.provider, request.model
        if lock is None and request.role:
            lock = self.config.locked_roles.get(request.role)
        if provider is None and model is None:
            return None
        if provider is None:
            assert model is not None
            if lock is not None and self.registry.provider(lock).resolve(model) is not None:
                provider = lock
            elif model in self._owner:
                provider = self._owner[model][0]
            else:
                raise ConfigError(f"no provider offers model {model!r} (the model names and "
                                  "aliases Nova accepts: docs/llm.md, Model names)")
        spec = self.registry.provider(provider)
        if model is not None:
            resolved = spec.resolve(model)
            if resolved is None:
                raise ConfigError(f"provider {provider!r} has no model {model!r}")
            model = resolved
        if lock is not None and provider != lock:
            raise ProviderError(
                f"role {request.role!r} is locked to {lock}; it may not be sent to {provider}",
                provider=provider,
                retriable=False,
            )
        return provider, model

    def _locked_entries(self, lock: str, explicit: Entry | None, priority: str) -> list[Entry]:
        entries: list[Entry] = [explicit] if explicit else []
        entries.extend((lock, m.id) for m in self._models[lock][priority])
        return entries

    def _entries(
        self,
        request: RouteRequest,
        explicit: Entry | None,
        state: ProviderState,
        reasons: list[str],
    ) -> list[Entry]:
        head: list[Entry] = [explicit] if explicit else []
        if request.strategy == "cheapest":
            return head + list(self._by_price)
        if request.strategy == "priority":
            return head + list(self._by_priority)
        if request.strategy == "fastest":
            return head + self._by_latency(state)
        primary = explicit
        if primary is None and request.role is not None:
            target = self.config.role_routing.get(request.role)
            if target is None:
                reasons.append(f"role {request.role!r} has no route; routed by task")
            else:
                primary = parse_target(target)
        if primary is None:
            primary = parse_target(self.config.task_routing[request.task_type])
        provider, model = primary
        model_id = model or self._models[provider][request.priority][0].id
        fallbacks = (
            self._fallback_entries.get(f"{provider}/{model_id}")
            or self._fallback_entries.get(provider)
            or self._fallback_entries.get("*", ())
        )
        return [primary, *fallbacks]

    def _by_latency(self, state: ProviderState) -> list[Entry]:
        def key(entry: Entry) -> tuple[bool, float, int]:
            latency = state.latency_ms(entry[0])
            return (latency is None, latency or 0.0, self._priority[entry[0]])

        return sorted(self._by_priority, key=key)

    def _resolve(
        self,
        entries: list[Entry],
        request: RouteRequest,
        state: ProviderState,
        reasons: list[str],
        explicit: Entry | None,
    ) -> tuple[Candidate, ...]:
        healthy: list[Candidate] = []
        degraded: list[Candidate] = []
        seen: set[Candidate] = set()
        verdicts: dict[str, str | None] = {}
        limit = self.config.max_chain
        for provider, model in entries:
            if len(healthy) >= limit:
                break
            if provider not in verdicts:
                verdicts[provider] = self._unavailable(provider, state, explicit)
                if verdicts[provider]:
                    reasons.append(f"{provider}: skipped, {verdicts[provider]}")
            if verdicts[provider]:
                continue
            candidate = self._fit(provider, model, request, reasons)
            if candidate is None or candidate in seen:
                continue
            seen.add(candidate)
            if state.status(provider) == "degraded":
                degraded.append(candidate)
            else:
                healthy.append(candidate)
        for provider in dict.fromkeys(c.provider for c in degraded):
            reasons.append(f"{provider}: degraded, moved to the end of the chain")
        return tuple((healthy + degraded)[:limit])

    def _unavailable(
        self, provider: str, state: ProviderState, explicit: Entry | None
    ) -> str | None:
        if provider not in self._enabled and (explicit is None or explicit[0] != provider):
            return "disabled in the registry"
        if state.circuit_open(provider):
            return "circuit breaker open"
        if state.status(provider) == "down":
            return "health is down"
        if state.over_limit(provider):
            return "over its rate limit"
        return None

    def _fit(
        self, provider: str, model: str | None, request: RouteRequest, reasons: list[str]
    ) -> Candidate | None:
        tokens = request.estimated_tokens
        if model is not None:
            window = self.registry.model(provider, model).context_window
            if window < tokens:
                reasons.append(
                    f"{provider}/{model}: skipped, context window {window} "
                    f"< {tokens} estimated tokens"
                )
                return None
            return Candidate(provider, model)
        models = self._models[provider][request.priority]
        for spec in models:
            if spec.context_window >= tokens:
                return Candidate(provider, spec.id)
        largest = max(m.context_window for m in models)
        reasons.append(f"{provider}: skipped, no model fits {tokens} tokens (largest {largest})")
        return None
