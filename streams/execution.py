"""Lane F's machinery: router, client pool, health board, limits and budgets, built once.

One :class:`ExecutionService` per worker process. It turns a pipeline record into a routing
decision, runs it through the executor (fallbacks, retries, limits, budgets) and describes
every attempt as an LLM event for the ``events`` topic, so every call lands in ClickHouse.

Rate limits across several workers: each worker enforces ``share`` = (partitions of the
``executable`` topic it holds) / (all partitions) of every provider's rpm/tpm. Requests are
keyed by random request ids, so they spread evenly over partitions and the shares add up to
the provider's limit without any coordination between workers; the share is recomputed on
every rebalance.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

from nova.errors import ProviderError
from nova.llm.budgets import Budget, BudgetBook
from nova.llm.clients import ClientPool, Message
from nova.llm.cost import cost_usd
from nova.llm.executor import ExecutionRequest, Executor, Outcome, provider_limiter, provider_state
from nova.llm.health import HealthBoard
from nova.llm.limits import RateLimiter
from nova.llm.registry import Registry, fake_registry, load_registry
from nova.llm.routing import RouteRequest, Router, RoutingDecision
from nova.records import Alert, Event, Execution, LlmCall, PipelineRecord, now_ms
from nova.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutionResult:
    record: PipelineRecord
    events: tuple[Event, ...]
    called: bool


class ExecutionService:
    def __init__(self, settings: Settings, registry: Registry, pool: ClientPool) -> None:
        self.settings = settings
        self.registry = registry
        self.pool = pool
        self.router = Router(registry)
        self.board = HealthBoard(registry.names)
        self.limiter: RateLimiter = provider_limiter(registry)
        self.budgets = BudgetBook(())
        self.executor = Executor(pool, registry, limiter=self.limiter, budgets=self.budgets,
                                 board=self.board)

    @classmethod
    def build(cls, settings: Settings) -> ExecutionService:
        registry = load_registry()
        if settings.llm_fake_url:
            registry = fake_registry(settings.llm_fake_url, registry)
        pool = ClientPool.from_settings(settings, os.environ, registry=registry)
        return cls(settings, registry, pool)

    async def aclose(self) -> None:
        await self.pool.aclose()

    def set_share(self, share: float) -> None:
        """Apply this worker's share of every provider limit (see the module docstring)."""
        self.limiter = provider_limiter(self.registry, share=max(share, 1e-6))
        self.executor.limiter = self.limiter

    def set_budgets(self, budgets: Iterable[Budget]) -> None:
        self.budgets.budgets = tuple(budgets)

    def route(self, record: PipelineRecord, tokens: int) -> RoutingDecision:
        intent = record.intent
        request = RouteRequest(
            task_type=intent.task_type if intent else "general",
            role=record.role,
            provider=record.provider_hint,
            model=record.model_hint,
            strategy=record.strategy or "task",
            estimated_tokens=tokens + self.settings.llm_max_tokens,
        )
        now = time.monotonic()
        return self.router.decide(request, provider_state(self.board, self.limiter,
                                                          self.registry, now))

    def estimate_cost(self, record: PipelineRecord, tokens: int) -> float:
        """Expected cost of the routed primary model (0 when nothing can serve it)."""
        try:
            decision = self.route(record, tokens)
        except ProviderError:
            return 0.0
        model = self.registry.model(decision.provider, decision.model)
        return cost_usd(model, input_tokens=tokens, output_tokens=self.settings.llm_max_tokens)

    async def execute(self, record: PipelineRecord) -> ExecutionResult:
        tokens = record.encoded.token_estimate if record.encoded else 0
        try:
            decision = self.route(record, tokens)
        except ProviderError as exc:
            failed = record.model_copy(update={
                "status": "failed", "error": f"routing: {exc}",
                "execution": Execution(attempts=0)})
            return ExecutionResult(failed, (), called=False)
        messages: tuple[Message, ...] = tuple(
            {"role": m.role, "content": m.content}
            for m in (record.encoded.messages if record.encoded else ())
        ) or ({"role": "user", "content": record.prompt},)
        outcome = await self.executor.execute(decision, ExecutionRequest(
            request_id=record.request_id, messages=messages,
            max_tokens=self.settings.llm_max_tokens, identity=record.identity_id,
            sphere=record.sphere_id))
        return ExecutionResult(self._apply(record, outcome), self._events(record, outcome),
                               called=bool(outcome.calls))

    def _apply(self, record: PipelineRecord, outcome: Outcome) -> PipelineRecord:
        c = outcome.completion
        last = outcome.calls[-1] if outcome.calls else None
        execution = Execution(
            provider=c.provider if c else (last.provider if last else None),
            model=c.model if c else (last.model if last else None),
            text=c.text if c else None,
            tokens_in=sum(a.tokens_in for a in outcome.calls),
            tokens_out=sum(a.tokens_out for a in outcome.calls),
            cost_usd=outcome.cost_usd,
            latency_ms=sum(a.latency_ms for a in outcome.calls),
            attempts=len(outcome.calls),
        )
        error = None
        if outcome.status == "budget_exceeded":
            error = f"budget exceeded: {outcome.budget}"
        elif outcome.status == "failed":
            error = outcome.reason or "every provider failed"
            if outcome.limit:
                error = f"{error} (limit: {outcome.limit})"
        return record.model_copy(update={"execution": execution, "status": outcome.status,
                                         "error": error})

    def _events(self, record: PipelineRecord, outcome: Outcome) -> tuple[Event, ...]:
        events = [
            Event(
                event_id=f"{record.request_id}/llm/{a.number}", kind="llm",
                request_id=record.request_id, identity_id=record.identity_id, ts=now_ms(),
                llm=LlmCall(
                    provider=a.provider, model=a.model, role=record.role,
                    task_type=record.intent.task_type if record.intent else None,
                    tokens_in=a.tokens_in, tokens_out=a.tokens_out, cost_usd=a.cost_usd,
                    latency_ms=a.latency_ms, attempt=a.number, fallback_from=a.fallback_from,
                    status=a.status, error=a.error),
            )
            for a in outcome.attempts
        ]
        for i, alert in enumerate(outcome.alerts):
            events.append(Event(
                event_id=f"{record.request_id}/alert/{i}", kind="alert",
                request_id=record.request_id, identity_id=record.identity_id, ts=now_ms(),
                alert=Alert(alert_type="BUDGET_SOFT_LIMIT", subject=alert.budget,
                            message=f"budget {alert.budget} for {alert.subject}: spent "
                                    f"{alert.spent_usd:.6f} of soft limit {alert.limit_usd:.6f} USD",
                            severity="warning")))
        if outcome.status == "budget_exceeded":
            events.append(Event(
                event_id=f"{record.request_id}/alert/budget", kind="alert",
                request_id=record.request_id, identity_id=record.identity_id, ts=now_ms(),
                alert=Alert(alert_type="BUDGET_EXCEEDED", subject=outcome.budget or "",
                            message=f"request blocked by budget {outcome.budget}",
                            severity="high")))
        return tuple(events)
