"""Lane F's agent loop: model call, governed tool calls, results, next call, until an answer,
the agent's step limit or its cost limit.

A request naming ``agent_id`` is run here instead of as one completion. Each step is one
model call through the same router, limits, budgets, breaker and fallbacks as any request
(:class:`~nova.llm.executor.Executor`), on a provider-neutral conversation
(:mod:`nova.llm.tools`), so a fallback mid-run from Anthropic to an OpenAI-compatible provider
carries the same history. What the model sees is lane C's masked prompt (the user's task and
its context); the agent's system prompt follows Nova's. Every tool call it makes is governed
and run by :mod:`streams.agent_tools`.

Recorded: every attempt of every step is an ``llm`` event (numbered on from the previous
step's, so each lands as its own ``llm_calls`` row), every tool call an ``AGENT_TOOL_CALL``
fact in the audit chain with its governance outcome (a crossing also an
``IDENTITY_BOUNDARY`` alert), all with deterministic ids: a run replayed after a crash
repeats the same records rather than adding others.

Limits: ``max_steps`` model calls; ``max_cost_usd`` spent on them (a step is not started
once the run has spent its limit). Either ends the run ``failed``, naming the limit, with
whatever the model said last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from nova.audit.facts import alert_fact, fact
from nova.domain.governance import IDENTITY_BOUNDARY, Rule
from nova.entities.models import AgentEntity
from nova.errors import ProviderError
from nova.llm.clients import Completion
from nova.llm.executor import Attempt, ExecutionRequest, Executor, Outcome
from nova.llm.routing import RoutingDecision
from nova.llm.tools import Conversation, ToolCall, ToolResult, Turn
from nova.records import AuditFact, Event, Execution, PipelineRecord
from nova.settings import Settings
from streams.agent_tools import ToolOutcome, ToolView, judge_and_run, specs_for

AGENT_TOOL_CALL = "AGENT_TOOL_CALL"


class AgentSource(ToolView, Protocol):
    """Agents and what their tools read: the worker's entity view."""

    def agent(self, agent_id: str) -> AgentEntity | None: ...


class Rules(Protocol):
    def rules_for(self, identity_id: str) -> Sequence[Rule]: ...


class Machinery(Protocol):
    """What a run needs of lane F's :class:`~streams.execution.ExecutionService` (named here
    so this module does not import it back)."""

    settings: Settings
    rules: Rules
    executor: Executor

    def route(self, record: PipelineRecord, tokens: int) -> RoutingDecision: ...

    def governed(self, record: PipelineRecord, decision: RoutingDecision, tokens: int
                 ) -> tuple[RoutingDecision | None, str]: ...

    def charge_own(self, record: PipelineRecord, outcome: Outcome) -> None: ...

    def apply(self, record: PipelineRecord, outcome: Outcome, decision: RoutingDecision
              ) -> PipelineRecord: ...

    def events(self, record: PipelineRecord, outcome: Outcome, role: str | None = None
               ) -> tuple[Event, ...]: ...


@dataclass(frozen=True)
class AgentResult:
    """The run's record, its LLM and alert events, whether a provider was reached, and its
    tool-call facts (lane F emits them as it does a request's)."""

    record: PipelineRecord
    events: tuple[Event, ...]
    called: bool
    facts: tuple[AuditFact, ...] = ()


@dataclass
class _Run:
    """What a run has done so far."""

    attempts: list[Attempt]
    facts: list[AuditFact]
    alerts: list[Event]
    cost: float = 0.0
    last: Completion | None = None


def usable(agent: AgentEntity | None, identity: str) -> bool:
    return agent is not None and (agent.owner == identity or agent.visibility == "public")


async def run_agent(service: Machinery, record: PipelineRecord,
                    source: AgentSource) -> AgentResult:
    """Run ``record``'s agent for its identity (module docstring); never raises for what the
    model or a provider does: the outcome is in the record."""
    agent = source.agent(record.agent_id or "")
    if agent is None or not usable(agent, record.identity_id):
        # The gateway refused this already; a record produced straight to Kafka gets here.
        return AgentResult(_failed(record, f"agent {record.agent_id} is not available to "
                                       "this identity"), (), called=False)
    if record.encoded is None or not record.encoded.messages:
        return AgentResult(_failed(record, "no encoded prompt (lane C): nothing is sent "
                                       "unmasked"), (), called=False)
    system = "\n\n".join(m.content for m in record.encoded.messages if m.role == "system")
    task = "\n\n".join(m.content for m in record.encoded.messages if m.role == "user")
    if agent.system_prompt:
        system = f"{system}\n\n{agent.system_prompt}" if system else agent.system_prompt
    conversation = Conversation(system, (Turn("user", task),), specs_for(agent))
    run = _Run([], [], [])
    rules = service.rules.rules_for(record.identity_id)
    decision: RoutingDecision | None = None
    reason: str | None = None
    status = "failed"
    for step in range(1, agent.max_steps + 1):
        if run.cost >= agent.max_cost_usd:
            reason = (f"agent cost limit: {run.cost:.6f} of {agent.max_cost_usd:g} USD spent "
                      f"after {step - 1} model calls, without an answer")
            break
        tokens = sum(len(m["content"]) for m in conversation.flat()) // 4 + 1
        try:
            decision = service.route(record, tokens)
        except ProviderError as exc:
            reason = f"routing: {exc}"
            break
        governed, refused = service.governed(record, decision, tokens)
        if governed is None:
            status, reason = "denied", ("governance: every provider that could serve this "
                                        f"request is refused by the identity's rules ({refused})")
            break
        decision = governed
        outcome = await service.executor.execute(decision, ExecutionRequest(
            request_id=record.request_id, messages=conversation.flat(),
            max_tokens=service.settings.llm_max_tokens, identity=record.identity_id,
            sphere=record.sphere_id, conversation=conversation))
        base = len(run.attempts)
        outcome = replace(outcome, attempts=tuple(
            replace(a, number=a.number + base) for a in outcome.attempts))
        service.charge_own(record, outcome)
        run.attempts += outcome.attempts
        run.cost += outcome.cost_usd
        if outcome.status != "completed" or outcome.completion is None:
            status, reason = outcome.status, outcome.reason
            break
        run.last = outcome.completion
        calls = outcome.completion.tool_calls
        if not calls:
            status, reason = "completed", None
            break
        results = [_govern(record, agent, step, j, call, source, rules, run)
                   for j, call in enumerate(calls)]
        conversation = conversation.then(
            Turn("assistant", outcome.completion.text, calls=calls),
            Turn("tool", results=tuple(results)))
    else:
        reason = (f"agent step limit: {agent.max_steps} model calls without an answer "
                  f"({run.cost:.6f} USD spent)")
    total = Outcome(status="completed" if status == "completed" else
                    ("budget_exceeded" if status == "budget_exceeded" else "failed"),
                    attempts=tuple(run.attempts), completion=run.last, cost_usd=run.cost,
                    reason=reason)
    if decision is None:
        out = _failed(record, reason or "the agent made no call")
    else:
        out = service.apply(record, total, decision)
        if status == "denied":
            out = out.model_copy(update={"status": "denied", "error": reason})
    events = (*service.events(record, total), *run.alerts)
    return AgentResult(out, events, called=bool(run.attempts), facts=tuple(run.facts))


def _govern(record: PipelineRecord, agent: AgentEntity, step: int, index: int,
            call: ToolCall, source: AgentSource, rules: Sequence[Rule], run: _Run) -> ToolResult:
    """Judge and run one call; record it (and a crossing); the result the model gets."""
    outcome: ToolOutcome = judge_and_run(record, agent, call, source, rules)
    gov = outcome.decision
    suffix = f"{step}/{index}"
    run.facts.append(fact(AGENT_TOOL_CALL, record.identity_id, {
        "agent_id": agent.id,
        "step": step,
        "tool": call.name,
        "verdict": outcome.verdict,
        "governance": gov.outcome if gov else None,
        "fired_rules": list(gov.fired_rule_ids) if gov else [],
        "reasons": list(gov.reasons) if gov else [outcome.content],
    }, request_id=record.request_id, actor=record.user_id, suffix=suffix))
    if outcome.crossing is not None:
        kind, rid, owner = outcome.crossing
        event, audit = alert_fact(IDENTITY_BOUNDARY, record.identity_id, record.user_id,
                                  record.request_id, {
                                      "resource_kind": kind, "resource_id": rid,
                                      "owner_identity": owner, "operation": f"tool:{call.name}",
                                      "agent_id": agent.id},
                                  event_id=f"{record.request_id}/boundary/{suffix}")
        run.alerts.append(event)
        run.facts.append(audit)
    return ToolResult(call.id, outcome.content, is_error=outcome.is_error)


def _failed(record: PipelineRecord, error: str) -> PipelineRecord:
    return record.model_copy(update={"status": "failed", "error": error,
                                     "execution": Execution(attempts=0)})
