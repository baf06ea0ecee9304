"""Lane F's machinery: router, client pool, health board, limits and budgets, built once.

What lane F makes of a record and an outcome (the route request, the chain the identity's
rules leave, the executed record, its LLM and alert events) is pure and lives in
:mod:`nova.llm.outcome`; this module holds the state those calls need.

One :class:`ExecutionService` per worker process. It turns a pipeline record into a routing
decision, runs it through the executor (fallbacks, retries, limits, budgets) and describes
every attempt as an LLM event for the ``events`` topic, so every call lands in ClickHouse.

Rate limits across several workers: each worker enforces ``share`` = (partitions of the
``executable`` topic it holds) / (all partitions) of every provider's rpm/tpm. Requests are
keyed by random request ids, so they spread evenly over partitions and the shares add up to
the provider's limit without any coordination between workers; the share is recomputed on
every rebalance. Why this is right: the ``executable`` topic is keyed by request id (a
UUIDv7, hashed by murmur2), so a partition carries 1/n of the traffic and a worker holding k
of n partitions carries k/n of it; its k/n share of the quota is exactly its part. Limits are
never oversubscribed, because Kafka assigns each partition to exactly one member, so the
shares of a group sum to at most 1 (a worker holding none keeps 1.0 but receives nothing).
The price: a rebalance starts fresh, full buckets (a one-off burst of at most one share), and
quota idles on a worker whose partitions are quiet. Identity limits are the gateway's
(``gateway/ratelimit.py``), on submission, not here.

Budgets come from the entities topic (:class:`~nova.entities.models.BudgetEntity`, every
owner's), through the budget source the service is built with (required: a service without
one refuses to be built), and are reloaded before an execution when the set of live budgets
changed; provider rules come the same way from its required rule source. Spend
comes from this worker's own calls plus everyone's, read back from ``events`` by
:class:`streams.spend.SpendTracker` (see that module). Both are in a
:class:`~streams.spend.SpendLedger` from which the budget book's spend is derived.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from nova.domain.governance import Rule
from nova.domain.http_allow import NOTHING
from nova.entities.models import BudgetEntity, ProviderLimitsEntity
from nova.errors import ConfigError, ProviderError, StartupError
from nova.llm.budgets import Budget, BudgetBook
from nova.llm.clients import ClientPool, Message
from nova.llm.cost import cost_usd
from nova.llm.executor import ExecutionRequest, Executor, Outcome, provider_limiter, provider_state
from nova.llm.health import HealthBoard
from nova.llm.limits import RateLimiter
from nova.llm.outcome import (
    event_id,
    executed_record,
    governed_chain,
    outcome_events,
    route_request,
    to_budget,
)
from nova.llm.registry import Registry, deployment_registry
from nova.llm.routing import Router, RouteRequest, RoutingDecision
from nova.records import AuditFact, Event, Execution, PipelineRecord
from nova.settings import Settings
from streams.agent_http import AgentHttp
from streams.agent_run import AgentSource, AgentWrites, run_agent
from streams.spend import Charge, SpendLedger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutionResult:
    record: PipelineRecord
    events: tuple[Event, ...]
    called: bool
    replayed: bool = False  # a copy of this process's earlier result for the same request
    facts: tuple[AuditFact, ...] = ()  # an agent run's tool calls, for the audit chain
    paused: bool = False  # an agent run held at a tool call's checkpoint (record ``held``)


OWN_EVENTS_KEPT = 100_000  # own charged event ids awaiting their echo from the topic
SEEN_EVENTS_KEPT = 200_000  # charged event ids remembered against redelivered duplicates
RESULTS_KEPT = 10_000  # recent results replayed to a redelivered request in this process
RESULTS_KEEP_S = 60.0  # ... for this long: by then lane F's llm_results entry answers a copy
READY_TIMEOUT_S = 60.0  # how often a worker still waiting for budgets and spend says so


class BudgetSource(Protocol):
    """Where live budgets come from: the worker's entity view (``EntityState.budgets``)."""

    def budgets(self) -> Sequence[BudgetEntity]: ...


class LimitSource(Protocol):
    """Where operators' provider limits come from: the worker's entity view."""

    def provider_limits(self) -> Sequence[ProviderLimitsEntity]: ...


class RuleSource(Protocol):
    """Where an identity's rules come from: the worker's entity view (``rules_for``)."""

    def rules_for(self, identity_id: str) -> Sequence[Rule]: ...


Wait = Callable[[], Awaitable[Any]]
LANE_F = "lane F (execution)"


class ExecutionService:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        pool: ClientPool,
        *,
        budgets: BudgetSource,
        rules: RuleSource,
        limits: LimitSource | None = None,
        agents: AgentSource | None = None,
        http: AgentHttp | None = None,
    ) -> None:
        # Typed callers cannot omit them; this stops untyped wiring at start-up too, instead
        # of at the first request (budgets unchecked, or every call failing).
        if budgets is None:
            raise StartupError(LANE_F, "no budget source (budgets would go unchecked)",
                               "build it with the worker's entity view as its budget source")
        if rules is None:
            raise StartupError(LANE_F, "no rule source (provider rules would go unchecked)",
                               "build it with the worker's entity view as its rule source")
        self.settings = settings
        self.registry = registry
        self.pool = pool
        self.router = Router(registry)
        self.board = HealthBoard(registry.names)
        self.limit_source = limits
        self._share = 1.0
        self._limits: tuple[ProviderLimitsEntity, ...] = ()
        self.limiter: RateLimiter = provider_limiter(registry)
        self.budgets = BudgetBook(())
        self.executor = Executor(
            pool, registry, limiter=self.limiter, budgets=self.budgets, board=self.board
        )
        self.ledger = SpendLedger()
        self.budget_source = budgets
        self.rules = rules
        self.agents = agents  # agents and what their tools read (None: agent runs fail)
        # agents' http_call client (default: none allowed, so every http_call is refused)
        self.http = http if http is not None else AgentHttp(NOTHING)
        # agents' writes, on agent-writes (set by the app, ``streams.app``; None: refused)
        self.writes: AgentWrites | None = None
        self.waits: list[Wait] = []  # readiness gates (entities, spend)
        self._loaded: tuple[BudgetEntity, ...] = ()
        self._labels: dict[str, str] = {}
        self._own: OrderedDict[str, None] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._inflight: dict[str, asyncio.Event] = {}
        self._recent = RecentResults(RESULTS_KEPT, RESULTS_KEEP_S)
        self._ready = False

    @classmethod
    def build(
        cls, settings: Settings, *, budgets: BudgetSource, rules: RuleSource,
        limits: LimitSource | None = None,
        agents: AgentSource | None = None,
    ) -> ExecutionService:
        registry = deployment_registry(settings, os.environ)
        pool = ClientPool.from_settings(settings, os.environ, registry=registry)
        return cls(settings, registry, pool, budgets=budgets, rules=rules, limits=limits,
                   agents=agents, http=AgentHttp.from_settings(settings))

    def hold_until(self, *ready: Wait) -> None:
        """Hold the first execution until every ``ready`` returns (entities, spend loaded)."""
        self.waits.extend(ready)

    async def aclose(self) -> None:
        await self.pool.aclose()
        await self.http.aclose()

    def set_share(self, share: float) -> None:
        """Apply this worker's share of every provider limit (see the module docstring)."""
        self._share = max(share, 1e-6)
        self._rebuild_limiter()

    def _rebuild_limiter(self) -> None:
        overrides = {e.provider: (e.rpm, e.tpm) for e in self._limits}
        self.limiter = provider_limiter(self.registry, share=self._share, overrides=overrides)
        self.executor.limiter = self.limiter

    def refresh_limits(self) -> bool:
        """Adopt operators' provider limits when they changed (a new limit, or a reset): the
        limiter is rebuilt with its buckets full. True when it was. O(providers)."""
        if self.limit_source is None:
            return False
        live = tuple(self.limit_source.provider_limits())
        if live == self._limits:
            return False
        self._limits = live
        self._rebuild_limiter()
        return True

    def set_budgets(self, budgets: Iterable[Budget]) -> None:
        self.budgets.budgets = tuple(budgets)
        self._derive_spend()

    # -- shared state ------------------------------------------------------------------
    async def _await_ready(self) -> None:
        """Before the first execution: wait until budgets and spend are loaded (fail closed).

        Redelivered requests reach lane F straight after a restart; without this gate they
        would run before the worker knows the budgets or the month's spend.
        """
        if self._ready:
            return
        while True:  # fail closed: no provider is called before the budgets are known
            try:
                await asyncio.wait_for(asyncio.gather(*(w() for w in self.waits)), READY_TIMEOUT_S)
                break
            except TimeoutError:
                log.error(
                    "budgets or spend still not loaded after %ss; holding LLM calls",
                    READY_TIMEOUT_S,
                )
        self._ready = True

    def refresh_budgets(self) -> bool:
        """Reload budgets when the live set changed; True when it did. O(budgets)."""
        live = tuple(self.budget_source.budgets())
        if live == self._loaded:
            return False
        self._loaded = live
        self._labels = {b.id: b.name for b in live}
        self.set_budgets(to_budget(b) for b in live)
        return True

    def budget_label(self, budget_id: str | None) -> str:
        if budget_id is None:
            return "unknown"
        name = self._labels.get(budget_id)
        return f"{name} ({budget_id})" if name and name != budget_id else budget_id

    def _derive_spend(self) -> None:
        self.budgets.spend = self.ledger.book_spend(self.budgets.budgets, datetime.now(UTC))

    def charge(self, charges: Iterable[Charge]) -> int:
        """Charge other workers' (and earlier incarnations') calls; skip our own. ChargeSink."""
        applied = 0
        for c in charges:
            own = c.event_id in self._own
            if own:
                del self._own[c.event_id]
            if own or c.event_id in self._seen:  # ours, or a redelivered duplicate's echo
                _remember(self._seen, c.event_id, None, SEEN_EVENTS_KEPT)
                continue
            _remember(self._seen, c.event_id, None, SEEN_EVENTS_KEPT)
            self.ledger.add(c.subjects, c.cost_usd, c.at)
            applied += 1
        if applied:
            self._derive_spend()
        return applied

    async def consult(
        self,
        record: PipelineRecord,
        role: str,
        messages: tuple[Message, ...],
        *,
        max_tokens: int,
        attempt_base: int,
    ) -> tuple[Outcome | None, tuple[Event, ...]]:
        """One side call for ``record`` on behalf of ``role`` (lane D's second opinion).

        It goes through the same router, limits, budgets and fallbacks as lane F's call and is
        charged to the same identity, but its attempts are numbered from ``attempt_base`` + 1 so
        that their LLM events (and ClickHouse rows) never collide with lane F's own attempts of
        the request. None when no provider can serve ``role`` now.
        """
        await self._await_ready()
        self.refresh_budgets()
        self.refresh_limits()
        tokens = sum(len(m["content"]) for m in messages) // 4 + 1
        request = RouteRequest(task_type="analysis", role=role,
                               estimated_tokens=tokens + max_tokens)
        try:
            decision = self.router.decide(
                request, provider_state(self.board, self.limiter, self.registry, time.monotonic())
            )
        except ProviderError:
            return None, ()
        outcome = await self.executor.execute(
            decision,
            ExecutionRequest(
                request_id=f"{record.request_id}:{role}",
                messages=messages,
                max_tokens=max_tokens,
                identity=record.identity_id,
                sphere=record.sphere_id,
            ),
        )
        outcome = replace(outcome, attempts=tuple(
            replace(a, number=a.number + attempt_base) for a in outcome.attempts))
        self.charge_own(record, outcome)
        calls = tuple(e for e in self.events(record, outcome, role=role) if e.kind == "llm")
        return outcome, calls

    def charge_own(self, record: PipelineRecord, outcome: Outcome) -> None:
        """Our calls were charged to the budget book by the executor; the ledger too, here."""
        at = datetime.now(UTC)
        for a in outcome.calls:
            if a.status != "ok" or a.cost_usd <= 0:
                continue
            subjects = {"provider": a.provider, "identity": record.identity_id}
            if record.sphere_id:
                subjects["sphere"] = record.sphere_id
            self.ledger.add(subjects, a.cost_usd, at)
            _remember(self._own, event_id(record.request_id, a.number), None, OWN_EVENTS_KEPT)

    def route(self, record: PipelineRecord, tokens: int) -> RoutingDecision:
        """The routing decision for ``record``; a provider or model this registry does not
        know (a gateway checks them, but a record may come from another deployment's) is a
        non-retriable :class:`ProviderError`, so the request fails instead of the lane."""
        request = route_request(record, tokens, self.settings.llm_max_tokens)
        now = time.monotonic()
        try:
            return self.router.decide(
                request, provider_state(self.board, self.limiter, self.registry, now)
            )
        except ConfigError as exc:
            raise ProviderError(str(exc), provider="router", retriable=False) from exc

    def primary_provider(self, record: PipelineRecord, tokens: int) -> str | None:
        """The routed primary provider (None when nothing can serve the request)."""
        try:
            return self.route(record, tokens).provider
        except ProviderError:
            return None

    def estimate_cost(self, record: PipelineRecord, tokens: int) -> float:
        """Expected cost of the routed primary model (0 when nothing can serve it)."""
        try:
            decision = self.route(record, tokens)
        except ProviderError:
            return 0.0
        model = self.registry.model(decision.provider, decision.model)
        return cost_usd(model, input_tokens=tokens, output_tokens=self.settings.llm_max_tokens)

    def handles(self, run: str) -> bool:
        """Whether this process is calling, or has just called, for ``run`` (a request id, or
        a resumed agent run's :func:`run_key`; a redelivery within the process then waits
        for that call or replays it)."""
        return run in self._inflight or run in self._recent

    async def execute(
        self, record: PipelineRecord, before: Callable[[], Awaitable[None]] | None = None,
        run: str | None = None,
    ) -> ExecutionResult:
        """Execute ``record`` at most once in this process, however often it is delivered.

        A consumer-group rebalance redelivers uncommitted records while their first delivery
        may still be in flight here (lane F acknowledges in order, after the call): a second
        delivery waits for the first and gets its result instead of calling the provider
        again. The copy carries no events nor facts (the first emits them) and
        ``called=False`` (the first records the idempotency entry). Across processes, lane
        F's ``llm_results`` table and ClickHouse's row identity take over.

        ``before`` runs once the request counts as this process's (lane F's attempt marker):
        a second delivery arriving while it runs waits too, instead of taking the marker for
        a crashed worker's.

        ``run`` names the execution when it is not the request's first (an agent run resumed
        after a checkpoint: :func:`run_key`), so it is not answered with the paused part's
        result.
        """
        rid = run or record.request_id
        running = self._inflight.get(rid)
        if running is not None:
            await running.wait()
        done = self._recent.get(rid)
        if done is not None:
            return replace(done, events=(), facts=(), called=False, replayed=True)
        gate = asyncio.Event()
        self._inflight[rid] = gate
        try:
            if before is not None:
                await before()
            result = await self._execute(record)
            self._recent.put(rid, result)
            return result
        finally:
            if self._inflight.get(rid) is gate:
                del self._inflight[rid]
            gate.set()

    async def _execute(self, record: PipelineRecord) -> ExecutionResult:
        await self._await_ready()
        self.refresh_budgets()
        self.refresh_limits()
        if record.agent_id is not None:
            if self.agents is None:
                failed = record.model_copy(update={
                    "status": "failed", "error": "this worker runs no agents (no agent source)",
                    "execution": Execution(attempts=0)})
                return ExecutionResult(failed, (), called=False)
            ran = await run_agent(self, record, self.agents)
            return ExecutionResult(ran.record, ran.events, ran.called, facts=ran.facts,
                                   paused=ran.paused)
        tokens = record.encoded.token_estimate if record.encoded else 0
        try:
            decision = self.route(record, tokens)
        except ProviderError as exc:
            failed = record.model_copy(
                update={
                    "status": "failed",
                    "error": f"routing: {exc}",
                    "execution": Execution(attempts=0),
                }
            )
            return ExecutionResult(failed, (), called=False)
        governed, refused = self.governed(record, decision, tokens)
        if governed is None:
            failed = record.model_copy(
                update={
                    "status": "denied",
                    "error": "governance: every provider that could serve this request is "
                    f"refused by the identity's rules ({refused})",
                    "execution": Execution(attempts=0),
                }
            )
            return ExecutionResult(failed, (), called=False)
        decision = governed
        if record.encoded is None or not record.encoded.messages:
            # Fail closed: only lane C's messages (identifiers masked) may reach a provider,
            # never the raw prompt.
            failed = record.model_copy(
                update={
                    "status": "failed",
                    "error": "no encoded prompt (lane C): nothing is sent unmasked",
                    "execution": Execution(attempts=0),
                }
            )
            return ExecutionResult(failed, (), called=False)
        messages: tuple[Message, ...] = tuple(
            {"role": m.role, "content": m.content} for m in record.encoded.messages
        )
        outcome = await self.executor.execute(
            decision,
            ExecutionRequest(
                request_id=record.request_id,
                messages=messages,
                max_tokens=self.settings.llm_max_tokens,
                identity=record.identity_id,
                sphere=record.sphere_id,
            ),
        )
        self.charge_own(record, outcome)  # no await since the executor charged the book
        return ExecutionResult(
            self.apply(record, outcome, decision),
            self.events(record, outcome),
            called=bool(outcome.calls),
        )

    def governed(
        self, record: PipelineRecord, decision: RoutingDecision, tokens: int
    ) -> tuple[RoutingDecision | None, str]:
        """The routed chain the identity's provider rules leave (``governed_chain``)."""
        if record.intent is None:
            return decision, ""
        return governed_chain(record, decision, self.rules.rules_for(record.identity_id),
                              self.registry, tokens, self.settings.llm_max_tokens)

    def apply(
        self, record: PipelineRecord, outcome: Outcome, decision: RoutingDecision | None
    ) -> PipelineRecord:
        return executed_record(record, outcome, decision, self.budget_label)

    def events(
        self, record: PipelineRecord, outcome: Outcome, role: str | None = None
    ) -> tuple[Event, ...]:
        return outcome_events(record, outcome, self.budget_label, role)


def run_key(request_id: str, checkpoint_id: str | None = None) -> str:
    """What names one execution of a request: its first, or its agent run resumed after the
    tool-call checkpoint ``checkpoint_id``."""
    return request_id if checkpoint_id is None else f"{request_id}@{checkpoint_id}"


class RecentResults:
    """This process's latest results, for copies of a request delivered while (or just after)
    it ran: at most ``keep`` of them, none older than ``keep_s``. Bounded in time as well as
    in number, because each holds a whole record: by count alone, 10,000 of them were the
    worker's growth in ``make bench-soak``. After ``keep_s`` the durable ``llm_results`` entry
    answers a copy instead."""

    def __init__(self, keep: int, keep_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keep, self.keep_s, self.clock = keep, keep_s, clock
        self._items: OrderedDict[str, tuple[float, ExecutionResult]] = OrderedDict()

    def put(self, key: str, result: ExecutionResult) -> None:
        now = self.clock()
        self._items[key] = (now, result)
        self._items.move_to_end(key)
        self._prune(now)

    def get(self, key: str) -> ExecutionResult | None:
        self._prune(self.clock())
        item = self._items.get(key)
        return None if item is None else item[1]

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None if isinstance(key, str) else False

    def __len__(self) -> int:
        return len(self._items)

    def _prune(self, now: float) -> None:
        items, oldest = self._items, now - self.keep_s
        while items and (len(items) > self.keep or next(iter(items.values()))[0] < oldest):
            items.popitem(last=False)


def _remember(store: OrderedDict[str, Any], key: str, value: Any, keep: int) -> None:
    """Insert into a bounded LRU: the oldest entries go first."""
    store[key] = value
    store.move_to_end(key)
    while len(store) > keep:
        store.popitem(last=False)
