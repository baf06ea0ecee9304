"""Execute one routed request: walk the decision's chain under limits, budgets and the breaker.

The router decides where a request *may* go; the executor finds out where it *can* go right
now. Before each call it checks the budgets with the estimated cost (a hard limit blocks, a soft
one alerts), takes from the rate-limit buckets and asks the breaker; after each failure the retry
policy says retry, fall back or stop. Every call, and every candidate passed over, becomes a
frozen :class:`Attempt`, so the audit trail shows the whole path and what it cost. Sleeping is an
injected coroutine and time an injected clock, so tests assert the exact waits without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from nova.errors import ProviderError
from nova.llm.budgets import BudgetAlert, BudgetBook
from nova.llm.clients import Completion, Message
from nova.llm.cost import cost_usd, estimate_messages_tokens
from nova.llm.health import HealthBoard
from nova.llm.limits import RateLimiter
from nova.llm.registry import ModelSpec, Registry
from nova.llm.retry import RetryPolicy, classify
from nova.llm.routing import Candidate, RoutingDecision, StateSnapshot
from nova.llm.tools import Conversation

AttemptStatus = Literal["ok", "error", "skipped"]
OutcomeStatus = Literal["completed", "failed", "budget_exceeded"]
Sleep = Callable[[float], Awaitable[None]]


class CompletionSource(Protocol):
    """What the executor calls; :class:`~nova.llm.clients.ClientPool` is one."""

    async def complete(
        self,
        provider: str,
        model: str,
        messages: Sequence[Message],
        max_tokens: int,
        request_id: str,
    ) -> Completion: ...

    async def converse(
        self,
        provider: str,
        model: str,
        conversation: Conversation,
        max_tokens: int,
        request_id: str,
    ) -> Completion: ...


@dataclass(frozen=True)
class ExecutionRequest:
    """One call's input. With ``conversation`` (an agent's step) the call offers its tools
    and carries its tool turns; ``messages`` are then its flat form, for estimates."""

    request_id: str
    messages: tuple[Message, ...]
    max_tokens: int = 1024
    identity: str | None = None
    sphere: str | None = None
    conversation: Conversation | None = None


@dataclass(frozen=True)
class Attempt:
    """One call (``ok``/``error``) or one candidate passed over (``skipped``), in order."""

    request_id: str
    number: int
    provider: str
    model: str
    fallback_from: str | None
    status: AttemptStatus
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    waited_s: float = 0.0


@dataclass(frozen=True)
class Outcome:
    status: OutcomeStatus
    attempts: tuple[Attempt, ...]
    completion: Completion | None = None
    cost_usd: float = 0.0
    reason: str | None = None
    budget: str | None = None
    limit: str | None = None
    alerts: tuple[BudgetAlert, ...] = ()

    @property
    def calls(self) -> tuple[Attempt, ...]:
        """The attempts that reached a provider (skips left out)."""
        return tuple(a for a in self.attempts if a.status != "skipped")


Limits = Mapping[str, tuple[int | None, int | None]]  # provider → (rpm, tpm); None: registry's


def effective_limits(registry: Registry, overrides: Limits | None = None,
                     ) -> dict[str, tuple[int, int]]:
    """Every provider's (rpm, tpm): an operator's override where it set one, else the
    registry's (``ProviderLimitsEntity``; an override of a provider not in it is ignored)."""
    overrides = overrides or {}
    out = {}
    for spec in registry:
        rpm, tpm = overrides.get(spec.name, (None, None))
        out[spec.name] = (spec.rpm if rpm is None else rpm, spec.tpm if tpm is None else tpm)
    return out


def provider_limiter(registry: Registry, share: float = 1.0, overrides: Limits | None = None,
                     ) -> RateLimiter:
    """A limiter holding every provider's rpm/tpm (:func:`effective_limits`) as
    ``provider:{name}``, times ``share``; its buckets start full."""
    limiter = RateLimiter()
    for name, (rpm, tpm) in effective_limits(registry, overrides).items():
        limiter.configure(f"provider:{name}", rpm=rpm * share, tpm=tpm * share)
    return limiter


def provider_state(
    board: HealthBoard, limiter: RateLimiter | None, registry: Registry, now: float
) -> StateSnapshot:
    """The :class:`ProviderState` a routing decision needs, from the board and the limiter."""
    limited = (
        [p for p in registry.names if limiter.exhausted(f"provider:{p}", now)] if limiter else []
    )
    return board.snapshot(over_limit=limited)


class Executor:
    """Runs requests against a :class:`CompletionSource`; one per process, shared by requests."""

    def __init__(
        self,
        source: CompletionSource,
        registry: Registry,
        *,
        limiter: RateLimiter | None = None,
        budgets: BudgetBook | None = None,
        board: HealthBoard | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.source = source
        self.registry = registry
        self.limiter = limiter
        self.budgets = budgets
        self.board = board
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        self.wall_clock = wall_clock

    async def execute(self, decision: RoutingDecision, request: ExecutionRequest) -> Outcome:
        return await _Run(self, decision, request).run()


Stop = Outcome  # a gate that returns an Outcome ends the request
Skip = str  # a gate that returns a reason passes over the candidate


class _Run:
    """The state of one execution; kept apart so :class:`Executor` stays shareable."""

    def __init__(self, ex: Executor, decision: RoutingDecision, request: ExecutionRequest) -> None:
        self.ex = ex
        self.chain = decision.chain
        self.request = request
        self.attempts: list[Attempt] = []
        self.alerts: dict[str, BudgetAlert] = {}
        self.est_in = estimate_messages_tokens(request.messages)
        self.est_tokens = self.est_in + request.max_tokens
        self.index = 0  # position in the chain
        self.tries_here = 0  # calls made to the current candidate
        self.waited = 0.0  # seconds slept before the next call
        self.calls = 0
        self.blocked_budget: str | None = None
        self.last_reason = "the routing decision has no candidates"

    async def run(self) -> Outcome:
        while self.index < len(self.chain):
            candidate = self.chain[self.index]
            model = self.ex.registry.model(candidate.provider, candidate.model)
            gate = self._budget_gate(candidate, model)
            if gate is None:
                gate = await self._limit_gate(candidate)
            if gate is None:
                gate = self._breaker_gate(candidate)
            if isinstance(gate, Outcome):
                return gate
            if gate is not None:
                self._record(candidate, "skipped", error=gate)
                self._next_candidate(gate)
                continue
            done = await self._call(candidate, model)
            if done is not None:
                return done
        if self.blocked_budget is not None and self.calls == 0:
            return self._outcome(
                "budget_exceeded", reason=self.last_reason, budget=self.blocked_budget
            )
        return self._outcome("failed", reason=f"every candidate failed; last: {self.last_reason}")

    @property
    def has_fallback(self) -> bool:
        return self.index + 1 < len(self.chain)

    def _next_candidate(self, reason: str) -> None:
        self.last_reason = reason
        self.index += 1
        self.tries_here = 0
        self.waited = 0.0

    def _budget_gate(self, candidate: Candidate, model: ModelSpec) -> Stop | Skip | None:
        """Identity and sphere budgets stop the request; a provider budget skips the provider."""
        budgets = self.ex.budgets
        if budgets is None:
            return None
        estimate = cost_usd(model, input_tokens=self.est_in, output_tokens=self.request.max_tokens)
        check = budgets.check(self._subjects(candidate.provider), estimate, self.ex.wall_clock())
        for alert in check.alerts:
            self.alerts.setdefault(alert.budget, alert)
        if check.status != "blocked" or check.budget is None:
            return None
        reason = (
            f"budget {check.budget} would be exceeded "
            f"({check.spent_usd:.6f} of {check.limit_usd:.6f} USD spent)"
        )
        if budgets.scope_of(check.budget) != "provider":
            return self._outcome("budget_exceeded", reason=reason, budget=check.budget)
        self.blocked_budget = self.blocked_budget or check.budget
        return reason

    async def _limit_gate(self, candidate: Candidate) -> Stop | Skip | None:
        """Take from the buckets; wait once if the wait is short and no fallback is better."""
        limiter, policy = self.ex.limiter, self.ex.policy
        if limiter is None:
            return None
        keys = self._limit_keys(candidate.provider)
        verdict = limiter.acquire(keys, self.est_tokens, self.ex.clock())
        provider_limit = (verdict.limit or "").startswith("provider:")
        if (
            not verdict.allowed
            and verdict.wait_s <= policy.max_retry_after_s
            and not (provider_limit and self.has_fallback)
        ):
            await self.ex.sleep(verdict.wait_s)
            self.waited += verdict.wait_s
            verdict = limiter.acquire(keys, self.est_tokens, self.ex.clock())
        if verdict.allowed:
            return None
        reason = f"rate limit {verdict.limit} (wait {verdict.wait_s:.2f}s)"
        if not (verdict.limit or "").startswith("provider:"):
            return self._outcome("failed", reason=reason, limit=verdict.limit)
        return reason

    def _breaker_gate(self, candidate: Candidate) -> Skip | None:
        board = self.ex.board
        if board is None or board.allow(candidate.provider):
            return None
        return f"{candidate.provider}: circuit breaker open"

    async def _call(self, candidate: Candidate, model: ModelSpec) -> Outcome | None:
        """One call; an Outcome when the request is over, None to go round again."""
        ex = self.ex
        self.calls += 1
        self.tries_here += 1
        started = time.perf_counter()
        try:
            if self.request.conversation is not None:
                completion = await ex.source.converse(
                    candidate.provider,
                    candidate.model,
                    self.request.conversation,
                    self.request.max_tokens,
                    self.request.request_id,
                )
            else:
                completion = await ex.source.complete(
                    candidate.provider,
                    candidate.model,
                    self.request.messages,
                    self.request.max_tokens,
                    self.request.request_id,
                )
        except ProviderError as err:
            latency_ms = (time.perf_counter() - started) * 1000
            if ex.board is not None:
                # Only "not there" counts against health; a 429 or a 4xx proves it is alive.
                ex.board.record(candidate.provider, ok=classify(err) != "transient")
            self._record(
                candidate, "error", error=str(err), latency_ms=latency_ms, waited_s=self.waited
            )
            self.last_reason = str(err)
            if self.calls >= ex.policy.max_attempts:
                return self._outcome("failed", reason=f"gave up after {self.calls} attempts: {err}")
            step = ex.policy.decide(
                err, attempt_on_candidate=self.tries_here, has_fallback=self.has_fallback
            )
            if step.action == "fatal":
                return self._outcome("failed", reason=str(err))
            if step.action == "retry_same":
                await ex.sleep(step.delay_s)
                self.waited = step.delay_s
            else:
                self._next_candidate(str(err))
            return None
        return self._succeed(candidate, completion, model)

    def _succeed(self, candidate: Candidate, completion: Completion, model: ModelSpec) -> Outcome:
        ex = self.ex
        charged = cost_usd(
            model,
            input_tokens=completion.tokens_in,
            output_tokens=completion.tokens_out,
            cached_input_tokens=completion.cached_tokens,
        )
        if ex.board is not None:
            ex.board.record(candidate.provider, ok=True, latency_ms=completion.latency_ms)
        if ex.limiter is not None:
            actual = completion.tokens_in + completion.tokens_out
            keys = self._limit_keys(candidate.provider)
            ex.limiter.settle(keys, actual - self.est_tokens, ex.clock())
        if ex.budgets is not None:
            ex.budgets.record(self._subjects(candidate.provider), charged, ex.wall_clock())
        self._record(candidate, "ok", completion=completion, cost=charged, waited_s=self.waited)
        return self._outcome("completed", completion=completion, cost=charged)

    def _subjects(self, provider: str) -> dict[str, str]:
        subjects = {"provider": provider}
        if self.request.identity:
            subjects["identity"] = self.request.identity
        if self.request.sphere:
            subjects["sphere"] = self.request.sphere
        return subjects

    def _limit_keys(self, provider: str) -> list[str]:
        keys = [f"provider:{provider}"]
        if self.request.identity:
            keys.append(f"identity:{self.request.identity}")
        return keys

    def _record(
        self,
        candidate: Candidate,
        status: AttemptStatus,
        *,
        error: str | None = None,
        completion: Completion | None = None,
        cost: float = 0.0,
        latency_ms: float = 0.0,
        waited_s: float = 0.0,
    ) -> None:
        self.attempts.append(
            Attempt(
                request_id=self.request.request_id,
                number=len(self.attempts) + 1,
                provider=candidate.provider,
                model=candidate.model,
                fallback_from=str(self.chain[self.index - 1]) if self.index > 0 else None,
                status=status,
                error=error,
                tokens_in=completion.tokens_in if completion else 0,
                tokens_out=completion.tokens_out if completion else 0,
                cached_tokens=completion.cached_tokens if completion else 0,
                cost_usd=cost,
                latency_ms=completion.latency_ms if completion else latency_ms,
                waited_s=waited_s,
            )
        )

    def _outcome(
        self,
        status: OutcomeStatus,
        *,
        reason: str | None = None,
        completion: Completion | None = None,
        cost: float = 0.0,
        budget: str | None = None,
        limit: str | None = None,
    ) -> Outcome:
        return Outcome(
            status=status,
            attempts=tuple(self.attempts),
            completion=completion,
            cost_usd=cost,
            reason=reason,
            budget=budget,
            limit=limit,
            alerts=tuple(self.alerts.values()),
        )
