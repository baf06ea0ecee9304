"""Lane F's pure part: from a pipeline record to a route request, and from a routing decision
and an executor outcome back to the record, its LLM events and its alerts.

No I/O and no state: :class:`streams.execution.ExecutionService` holds the machinery (router,
client pool, health board, limits, budget book, spend ledger) and calls these, so what lane F
writes for a given outcome is unit-tested without a provider, a broker or a worker. Event ids
are deterministic (request id and attempt number), so a replay or a redelivery yields the same
rows and the spend tracker recognises a worker's own calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from nova.convert import domain_masks
from nova.domain.amounts import stated_amount
from nova.domain.governance import GovernanceFacts, Rule, refused_providers
from nova.domain.masking import unmask
from nova.entities.models import BudgetEntity
from nova.llm.budgets import Budget
from nova.llm.cost import cost_usd
from nova.llm.executor import Outcome
from nova.llm.registry import Registry
from nova.llm.routing import RouteRequest, RoutingDecision
from nova.records import Alert, Event, Execution, LlmCall, PipelineRecord, now_ms

BudgetLabel = Callable[[str | None], str]  # a budget's id as people read it: "name (id)"


def to_budget(entity: BudgetEntity) -> Budget:
    """The enforceable budget of an entity; its id is its name (stable across renames)."""
    return Budget(
        name=entity.id,
        scope=entity.scope,
        subject=entity.subject,
        period=entity.period,
        soft_usd=entity.soft_usd,
        hard_usd=entity.hard_usd,
    )


def event_id(request_id: str, attempt: int) -> str:
    """The id of a request's n-th LLM attempt event (what the spend tracker recognises)."""
    return f"{request_id}/llm/{attempt}"


def route_request(record: PipelineRecord, tokens: int, max_tokens: int) -> RouteRequest:
    """What the router is asked for ``record``: its task, role and hints, and the tokens of
    its prompt (``tokens``) plus the answer's (``max_tokens``)."""
    intent = record.intent
    return RouteRequest(
        task_type=intent.task_type if intent else "general",
        role=record.role,
        provider=record.provider_hint,
        model=record.model_hint,
        strategy=record.strategy or "task",
        estimated_tokens=tokens + max_tokens,
        priority=record.priority or "normal",
    )


def governed_chain(
    record: PipelineRecord,
    decision: RoutingDecision,
    rules: Sequence[Rule],
    registry: Registry,
    tokens: int,
    max_tokens: int,
) -> tuple[RoutingDecision | None, str]:
    """The routed chain without the providers the identity's provider rules refuse.

    Lane D judged the request with the primary routing chose then; a fallback, or a new
    primary, must obey the same rules (``nova.domain.governance.refused_providers``).
    Returns None when no provider is left, with the reasons.
    """
    if record.intent is None:
        return decision, ""
    if not any(r.match.providers is not None for r in rules):
        return decision, ""
    facts = GovernanceFacts(
        identity_id=record.identity_id,
        sphere_id=record.sphere_id,
        action=record.intent.action,
        task_type=record.intent.task_type,
        roles=frozenset(record.roles),
        provider=None,
        cost_estimate_usd=0.0,
        prompt=record.prompt,
        amount=stated_amount(
            [record.prompt, record.context.text if record.context else ""]
            if record.intent.defers_to_context
            else [record.prompt]
        ),
    )
    judged = record.governance.fired_rules if record.governance else ()
    refused: dict[str, str] = {}
    for c in decision.chain:  # each candidate with its own model's cost estimate
        cost = cost_usd(registry.model(c.provider, c.model), input_tokens=tokens,
                        output_tokens=max_tokens)
        hit = refused_providers(facts, rules, {c.provider: cost}, judged)
        if hit:
            refused[str(c)] = hit[c.provider]
    if not refused:
        return decision, ""
    why = "; ".join(f"{c}: {reason}" for c, reason in refused.items())
    chain = tuple(c for c in decision.chain if str(c) not in refused)
    if not chain:
        return None, why
    return (
        replace(
            decision,
            provider=chain[0].provider,
            model=chain[0].model,
            chain=chain,
            reasons=(*decision.reasons, f"governance removed {why}"),
        ),
        why,
    )


def executed_record(
    record: PipelineRecord, outcome: Outcome, decision: RoutingDecision | None,
    budget_label: BudgetLabel,
) -> PipelineRecord:
    """``record`` as lane F hands it to lane G: its execution (the answer unmasked), status
    and error (``decision`` None: an agent run resumed that ended before routing again)."""
    c = outcome.completion
    last = outcome.calls[-1] if outcome.calls else None
    # The provider saw placeholders ([IBAN_1]); the user reads their own values back.
    masks = domain_masks(record.encoded.masks) if record.encoded else ()
    execution = Execution(
        provider=c.provider if c else (last.provider if last else None),
        model=c.model if c else (last.model if last else None),
        text=unmask(c.text, masks) if c and c.text is not None else None,
        tokens_in=sum(a.tokens_in for a in outcome.calls),
        tokens_out=sum(a.tokens_out for a in outcome.calls),
        cost_usd=outcome.cost_usd,
        latency_ms=sum(a.latency_ms for a in outcome.calls),
        attempts=len(outcome.calls),
    )
    error = None
    if outcome.status == "budget_exceeded":
        error = f"budget exceeded: {budget_label(outcome.budget)}"
    elif outcome.status == "failed":
        error = outcome.reason or "every provider failed"
        if outcome.limit:
            error = f"{error} (limit: {outcome.limit})"
        if decision is not None and decision.locked_to is not None:
            error = (
                f"role {record.role!r} is locked to {decision.locked_to}, which could "
                f"not serve it; no other provider may: {error}"
            )
    return record.model_copy(
        update={"execution": execution, "status": outcome.status, "error": error}
    )


def outcome_events(
    record: PipelineRecord, outcome: Outcome, budget_label: BudgetLabel, role: str | None = None
) -> tuple[Event, ...]:
    """One LLM event per attempt (made for ``role``, default the record's), then an alert per
    budget crossing its soft limit and one when a budget blocked the request."""
    events = [
        Event(
            event_id=event_id(record.request_id, a.number),
            kind="llm",
            request_id=record.request_id,
            identity_id=record.identity_id,
            ts=now_ms(),
            llm=LlmCall(
                provider=a.provider,
                model=a.model,
                role=role or record.role,
                task_type=record.intent.task_type if record.intent else None,
                tokens_in=a.tokens_in,
                tokens_out=a.tokens_out,
                cost_usd=a.cost_usd,
                latency_ms=a.latency_ms,
                attempt=a.number,
                fallback_from=a.fallback_from,
                status=a.status,
                error=a.error,
            ),
        )
        for a in outcome.attempts
    ]
    for i, alert in enumerate(outcome.alerts):
        message = (
            f"budget {budget_label(alert.budget)} for {alert.subject}: spent "
            f"{alert.spent_usd:.6f} of soft limit {alert.limit_usd:.6f} USD"
        )
        events.append(
            alert_event(record, str(i), "BUDGET_SOFT_LIMIT", alert.budget, message, "warning")
        )
    if outcome.status == "budget_exceeded":
        message = f"request blocked by budget {budget_label(outcome.budget)}"
        events.append(
            alert_event(record, "budget", "BUDGET_EXCEEDED", outcome.budget or "", message, "high")
        )
    return tuple(events)


def alert_event(
    record: PipelineRecord, suffix: str, alert_type: str, subject: str, message: str, severity: str
) -> Event:
    """An alert about one request; the id is deterministic so a replay yields the same row."""
    return Event(
        event_id=f"{record.request_id}/alert/{suffix}",
        kind="alert",
        request_id=record.request_id,
        identity_id=record.identity_id,
        ts=now_ms(),
        alert=Alert(alert_type=alert_type, subject=subject, message=message, severity=severity),
    )
