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
step's, so each lands as its own ``llm_calls`` row) and an ``AGENT_STEP`` fact in the audit
chain (its step and attempt, provider, model, tokens, cost and the model's stop reason, never
what was said), every tool call an ``AGENT_TOOL_CALL``
fact in the audit chain with its place (step, index), tool, action type, arguments (what it
names; what it writes only as a length: ``nova.domain.agents.recorded_arguments``) and
governance outcome (a crossing also an ``IDENTITY_BOUNDARY`` alert), all with deterministic
ids: a run replayed after a crash repeats the same records rather than adding others.
``nova replay --request`` reads the run back from these step by step
(``analytics.agent_trail``).

An approved ``http_call`` is made here, in the resumed run (so under the attempt marker lane
F put for it: once, whatever is redelivered), with the worker's one client
(:class:`~streams.agent_http.AgentHttp`, built with the execution service); its fact adds
the URL called (without its query), the status and the body's length, never the body. One
the client would not make at all (its host resolves to an address that may not be reached)
is answered and recorded ``refused``, as a call refused before it was held is.

An allowed (or approved) WRITE (``append_thread``, ``append_meeting_note``) is put on
``agent-writes`` as an :class:`~nova.records.AgentWrite` whose id is a hash of the request id,
step and call index, and the model is told "appended" once the broker has it, not once the
gateway applied it: the gateway's applier (``gateway.agent_writes``) checks it again, signs
and writes it once, or refuses it with an ``AGENT_WRITE_REFUSED`` fact. Its tool-call fact
adds the ``write_id``. The worker never writes ``entities``, nor holds the key that signs them.

Pausing: a call that needs a person's approval stops the run there. Everything needed to go
on (:class:`~nova.llm.agent_pause.AgentPause`) is put in the record, which is held at a
checkpoint of that call's own (its id derived from the request id and the call's step and
index, so it never meets the request's own checkpoint nor another call's) and waits as a held
request does, in lane E's table and on ``pending``, where the checkpoint API shows it. Once
it is decided, lane E sends the record back to lane F, which resumes here: approved, the call
is judged again and made; rejected or expired, the model is told a person refused it; either
way the step's remaining calls are governed and the loop goes on to an answer or a limit,
with the step, the cost and the attempt numbers where the pause left them. Each such call has
two facts: ``held`` when it stopped the run, and its end (``executed``, ``rejected``,
``expired``, or ``denied`` by a rule added meanwhile) naming the checkpoint and who decided.

Limits: ``max_steps`` model calls; ``max_cost_usd`` spent on them (a step is not started
once the run has spent its limit). Either ends the run ``failed``, naming the limit, with
whatever the model said last.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from nova.audit.facts import AGENT_MESSAGE_SENT, AGENT_STEP, AGENT_TOOL_CALL, alert_fact, fact
from nova.convert import checkpoint_record
from nova.domain.agents import TOOL_ACTIONS, agent_write_id, recorded_arguments
from nova.domain.checkpoints import checkpoint_id_for, open_checkpoint
from nova.domain.governance import IDENTITY_BOUNDARY, Rule
from nova.entities.models import AgentEntity
from nova.errors import ProviderError
from nova.llm.agent_pause import AgentPause, HeldDecision
from nova.llm.clients import Completion
from nova.llm.executor import Attempt, ExecutionRequest, Executor, Outcome
from nova.llm.routing import RoutingDecision
from nova.llm.tools import Conversation, ToolCall, ToolResult, Turn
from nova.records import (
    AgentWrite,
    AuditFact,
    CheckpointState,
    Event,
    Execution,
    PipelineRecord,
    now_ms,
)
from nova.settings import Settings
from streams.agent_http import AgentHttp
from streams.agent_tools import (
    ToolOutcome,
    ToolView,
    answered,
    decided,
    judge_and_run,
    specs_for,
)

log = logging.getLogger(__name__)


class AgentSource(ToolView, Protocol):
    """Agents and what their tools read: the worker's entity view."""

    def agent(self, agent_id: str) -> AgentEntity | None: ...


class Rules(Protocol):
    def rules_for(self, identity_id: str) -> Sequence[Rule]: ...


class AgentWrites(Protocol):
    """Where an agent's allowed writes go: ``agent-writes``, durably (``streams.app``)."""

    async def write(self, write: AgentWrite) -> None: ...


class Machinery(Protocol):
    """What a run needs of lane F's :class:`~streams.execution.ExecutionService` (named here
    so this module does not import it back)."""

    settings: Settings
    rules: Rules
    executor: Executor
    http: AgentHttp
    writes: AgentWrites | None  # None: WRITE tools are refused (no way to the gateway)

    def route(self, record: PipelineRecord, tokens: int) -> RoutingDecision: ...

    def governed(self, record: PipelineRecord, decision: RoutingDecision, tokens: int
                 ) -> tuple[RoutingDecision | None, str]: ...

    def charge_own(self, record: PipelineRecord, outcome: Outcome) -> None: ...

    def apply(self, record: PipelineRecord, outcome: Outcome,
              decision: RoutingDecision | None) -> PipelineRecord: ...

    def events(self, record: PipelineRecord, outcome: Outcome, role: str | None = None
               ) -> tuple[Event, ...]: ...


@dataclass(frozen=True)
class AgentResult:
    """The run's record, its LLM and alert events, whether a provider was reached, its
    tool-call facts (lane F emits them as it does a request's), and whether it is paused at a
    tool call's checkpoint (the record is ``held``, with its ``agent_pause``)."""

    record: PipelineRecord
    events: tuple[Event, ...]
    called: bool
    facts: tuple[AuditFact, ...] = ()
    paused: bool = False


@dataclass
class _Run:
    """What a run has done so far (``emitted``: attempts whose events the run's earlier part,
    before a pause, emitted already)."""

    attempts: list[Attempt]
    facts: list[AuditFact]
    alerts: list[Event]
    cost: float = 0.0
    last: Completion | None = None
    emitted: int = 0
    pause: AgentPause | None = None


def usable(agent: AgentEntity | None, identity: str) -> bool:
    return agent is not None and (agent.owner == identity or agent.visibility == "public")


def tool_part(step: int, index: int) -> str:
    """The place of a tool call in its run, which names its checkpoint (``checkpoint_id_for``)."""
    return f"tool/{step}/{index}"


async def run_agent(service: Machinery, record: PipelineRecord,
                    source: AgentSource) -> AgentResult:
    """Run ``record``'s agent for its identity, or go on with a run paused at a tool call whose
    checkpoint is decided (module docstring); never raises for what the model or a provider
    does: the outcome is in the record."""
    agent = source.agent(record.agent_id or "")
    if agent is None or not usable(agent, record.identity_id):
        # The gateway refused this already; a record produced straight to Kafka gets here.
        return AgentResult(_failed(record, f"agent {record.agent_id} is not available to "
                                       "this identity"), (), called=False)
    if record.encoded is None or not record.encoded.messages:
        return AgentResult(_failed(record, "no encoded prompt (lane C): nothing is sent "
                                       "unmasked"), (), called=False)
    rules = service.rules.rules_for(record.identity_id)
    step = 1
    if record.agent_pause is None:
        system = "\n\n".join(m.content for m in record.encoded.messages if m.role == "system")
        task = "\n\n".join(m.content for m in record.encoded.messages if m.role == "user")
        if agent.system_prompt:
            system = f"{system}\n\n{agent.system_prompt}" if system else agent.system_prompt
        conversation = Conversation(system, (Turn("user", task),), specs_for(agent))
        run = _Run([], [], [])
    else:
        pause = AgentPause.from_json(record.agent_pause)
        decided_cp = record.checkpoint
        record = record.model_copy(update={"agent_pause": None, "status": "in_flight",
                                           "checkpoint": pause.request_checkpoint,
                                           "error": None})
        run = _Run(list(pause.attempts), [], [], cost=pause.cost_usd, last=pause.last,
                   emitted=len(pause.attempts))
        conversation = Conversation(pause.system, pause.turns, specs_for(agent))
        first = await _resolve(service, record, agent, pause, decided_cp, source, rules, run)
        going_on = await _tool_calls(service, record, agent, pause.step, pause.text,
                                     pause.calls, [*pause.results, first], conversation,
                                     source, rules, run)
        if going_on is None:
            return _paused(service, record, agent, run)
        conversation, step = going_on, pause.step + 1
    decision: RoutingDecision | None = None
    reason: str | None = None
    status = "failed"
    while True:
        if step > agent.max_steps:
            reason = (f"agent step limit: {agent.max_steps} model calls without an answer "
                      f"({run.cost:.6f} USD spent)")
            break
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
        _steps(record, agent, step, outcome, run)
        if outcome.status != "completed" or outcome.completion is None:
            status, reason = outcome.status, outcome.reason
            break
        run.last = outcome.completion
        calls = outcome.completion.tool_calls
        if not calls:
            status, reason = "completed", None
            break
        going_on = await _tool_calls(service, record, agent, step, outcome.completion.text,
                                     calls, [], conversation, source, rules, run)
        if going_on is None:
            return _paused(service, record, agent, run)
        conversation, step = going_on, step + 1
    total = Outcome(status="completed" if status == "completed" else
                    ("budget_exceeded" if status == "budget_exceeded" else "failed"),
                    attempts=tuple(run.attempts), completion=run.last, cost_usd=run.cost,
                    reason=reason)
    if decision is None and not run.attempts:
        out = _failed(record, reason or "the agent made no call")
    else:
        out = service.apply(record, total, decision)
        if status == "denied":
            out = out.model_copy(update={"status": "denied", "error": reason})
    events = (*service.events(record, replace(total, attempts=total.attempts[run.emitted:])),
              *run.alerts)
    return AgentResult(out, events, called=bool(run.attempts), facts=tuple(run.facts))


async def _tool_calls(service: Machinery, record: PipelineRecord, agent: AgentEntity,
                      step: int, text: str, calls: tuple[ToolCall, ...],
                      results: list[ToolResult], conversation: Conversation,
                      source: AgentSource, rules: Sequence[Rule], run: _Run
                      ) -> Conversation | None:
    """Govern and run the step's calls after those with ``results``; the conversation with the
    step's answer and results, or None when a call is held (``run.pause`` says where)."""
    for j in range(len(results), len(calls)):
        outcome = await _made(service, record, agent, step, j, judge_and_run(
            record, agent, calls[j], source, rules, endpoints=service.http.endpoints))
        if outcome.verdict == "held":
            _record(record, agent, step, j, calls[j], outcome, run, f"{step}/{j}", held=True)
            gov = outcome.decision
            assert gov is not None, "a held call was judged"
            run.pause = AgentPause(
                agent_id=agent.id, checkpoint_id=checkpoint_id_for(
                    record.request_id, tool_part(step, j)),
                step=step, system=conversation.system, turns=conversation.turns, text=text,
                calls=calls, results=tuple(results), index=j, attempts=tuple(run.attempts),
                cost_usd=run.cost, last=run.last, decision=HeldDecision(
                    outcome=gov.outcome, fired_rules=gov.fired_rule_ids, reasons=gov.reasons,
                    checkpoint_reason=gov.checkpoint_reason or "approval required",
                    approvals_required=gov.approvals_required),
                request_checkpoint=record.checkpoint)
            return None
        results.append(_record(record, agent, step, j, calls[j], outcome, run, f"{step}/{j}"))
    return conversation.then(Turn("assistant", text, calls=calls),
                             Turn("tool", results=tuple(results)))


async def _resolve(service: Machinery, record: PipelineRecord, agent: AgentEntity,
                   pause: AgentPause, checkpoint: CheckpointState | None, source: AgentSource,
                   rules: Sequence[Rule], run: _Run) -> ToolResult:
    """The held call once its checkpoint is decided: approved, judged again and made (once:
    lane F's attempt marker covers the resumed run); rejected or expired, the model is told."""
    call = pause.call
    if checkpoint is None or checkpoint.checkpoint_id != pause.checkpoint_id \
            or checkpoint.status == "pending":  # lane F resumes decided runs only: fail closed
        outcome = ToolOutcome("refused", f"refused: {call.name} has no decision; it was not made")
        suffix = f"{pause.step}/{pause.index}/undecided"
    elif checkpoint.status == "approved":
        outcome = await _made(service, record, agent, pause.step, pause.index, judge_and_run(
            record, agent, call, source, rules, approved=True,
            endpoints=service.http.endpoints))
        suffix = f"{pause.step}/{pause.index}/approved"
    else:
        outcome = decided(call, checkpoint)
        suffix = f"{pause.step}/{pause.index}/{checkpoint.status}"
    by = checkpoint.decided_by if checkpoint is not None else None
    return _record(record, agent, pause.step, pause.index, call, outcome, run, suffix, held=True,
                   decided_by=by)


async def _made(service: Machinery, record: PipelineRecord, agent: AgentEntity, step: int,
                index: int, outcome: ToolOutcome) -> ToolOutcome:
    """Make an approved ``http_call`` (``outcome.request``), once: only a resumed run makes
    one, under the attempt marker lane F put for that run. Put an allowed write
    (``outcome.write``) on ``agent-writes`` and return once it is on the broker: the model is
    told "appended" then, not once the gateway applied it (it applies each write once, by
    its id, or refuses it with an audit fact; the run does not wait for either)."""
    if outcome.write is not None:
        return await _written(service, record, agent, step, index, outcome)
    if outcome.request is None:
        return outcome
    answer = await service.http.call(outcome.request, agent.allowed_hosts)
    if answer.refused:  # nothing was sent (an address the name resolves to, say): a refusal
        why = (answer.error or "").removeprefix("not called: ")
        return replace(outcome, verdict="refused", request=None,
                       content=f"refused: {why}; it was not made")
    return answered(record, outcome, answer)


def _steps(record: PipelineRecord, agent: AgentEntity, step: int, outcome: Outcome,
           run: _Run) -> None:
    """One ``AGENT_STEP`` fact per model call of ``step`` (a candidate passed over is none),
    its id the attempt's number, so a run replayed after a crash repeats it."""
    for attempt in outcome.attempts:
        if attempt.status == "skipped":
            continue
        done = outcome.completion if attempt.status == "ok" else None
        run.facts.append(fact(AGENT_STEP, record.identity_id, {
            "agent_id": agent.id, "step": step, "attempt": attempt.number,
            "provider": attempt.provider, "model": attempt.model,
            "fallback_from": attempt.fallback_from, "status": attempt.status,
            "tokens_in": attempt.tokens_in, "tokens_out": attempt.tokens_out,
            "cached_tokens": attempt.cached_tokens, "cost_usd": attempt.cost_usd,
            "stop_reason": done.stop_reason if done else None,
            "tool_calls": len(done.tool_calls) if done else 0,
        }, request_id=record.request_id, actor=record.user_id,
            suffix=f"{step}/{attempt.number}"))


async def _written(service: Machinery, record: PipelineRecord, agent: AgentEntity, step: int,
                   index: int, outcome: ToolOutcome) -> ToolOutcome:
    assert outcome.write is not None
    kind, parent, text = outcome.write
    if service.writes is None:
        return replace(outcome, verdict="refused", write=None, content=(
            "refused: this worker has no way to write; it was not made"))
    write_id = agent_write_id(record.request_id, step, index)
    try:
        await service.writes.write(AgentWrite(
            write_id=write_id, request_id=record.request_id, identity_id=record.identity_id,
            agent_id=agent.id, kind=kind, parent_id=parent, text=text, ts=now_ms()))
    except Exception:  # Kafka refused or timed out: the model is told it was not made
        log.exception("agent write %s could not be written", write_id)
        return replace(outcome, content="the write could not be recorded, so it was not made",
                       failed=True, write=None)
    return replace(outcome, write_id=write_id)


def _paused(service: Machinery, record: PipelineRecord, agent: AgentEntity,
            run: _Run) -> AgentResult:
    """The run held at ``run.pause``'s call: the record waits at the call's checkpoint (lane F
    keeps it in the held table and sends it to ``pending``)."""
    pause = run.pause
    assert pause is not None
    call = pause.call
    cp = open_checkpoint(
        record.request_id, record.identity_id,
        f"agent {agent.name} asks to call {call.name}: {pause.decision.checkpoint_reason}",
        datetime.now(UTC), service.settings.checkpoint_ttl_s, submitter=record.user_id,
        approvals_required=pause.decision.approvals_required,
        part=tool_part(pause.step, pause.index))
    held = record.model_copy(update={"status": "held", "error": None,
                                     "checkpoint": checkpoint_record(cp),
                                     "agent_pause": pause.to_json()})
    so_far = Outcome(status="completed", attempts=tuple(run.attempts[run.emitted:]))
    events = (*service.events(record, so_far), *run.alerts)
    return AgentResult(held, events, called=bool(run.attempts), facts=tuple(run.facts),
                       paused=True)


def _record(record: PipelineRecord, agent: AgentEntity, step: int, index: int, call: ToolCall,
            outcome: ToolOutcome, run: _Run, suffix: str, *, held: bool = False,
            decided_by: str | None = None) -> ToolResult:
    """Record one call's outcome (and a crossing, a delivery); the result the model gets.
    ``held``: a call that waited at a checkpoint, which its facts name."""
    gov = outcome.decision
    detail: dict[str, object] = {
        "agent_id": agent.id,
        "step": step,
        "index": index,
        "tool": call.name,
        "action": TOOL_ACTIONS.get(call.name),
        "arguments": recorded_arguments(call.arguments),
        "verdict": outcome.verdict,
        "governance": gov.outcome if gov else None,
        "fired_rules": list(gov.fired_rule_ids) if gov else [],
        "reasons": list(gov.reasons) if gov else [outcome.content],
    }
    if outcome.verdict not in ("executed", "held"):  # why, as the model was told it
        detail["refusal"] = outcome.content
    if outcome.write_id is not None:  # on agent-writes; the gateway's applier writes it
        detail["write_id"] = outcome.write_id
    if outcome.answer is not None:  # what it came to, never what it said (analysts read this)
        answer = outcome.answer
        detail["http"] = {"url": answer.url, "status": answer.status,
                          "bytes": len(answer.body), "truncated": answer.truncated,
                          "error": answer.error, "withheld": outcome.failed
                          and answer.status is not None}
    if held:
        detail["checkpoint_id"] = checkpoint_id_for(record.request_id, tool_part(step, index))
        detail["decided_by"] = decided_by
    run.facts.append(fact(AGENT_TOOL_CALL, record.identity_id, detail,
                          request_id=record.request_id, actor=record.user_id, suffix=suffix))
    if outcome.sent is not None:
        to, text = outcome.sent
        # The audit chain is read by analysts (audit_events): it proves what was sent (its
        # digest and length), never says it. The text itself is the held call's, on pending.
        run.facts.append(fact(AGENT_MESSAGE_SENT, record.identity_id, {
            "agent_id": agent.id, "step": step, "to": to, "text_chars": len(text),
            "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "approved_by": decided_by}, request_id=record.request_id, actor=record.user_id,
            suffix=f"{step}/{index}"))
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
    return record.model_copy(update={"status": "failed", "error": error, "agent_pause": None,
                                     "execution": Execution(attempts=0)})
