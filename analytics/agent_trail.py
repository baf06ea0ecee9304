"""An agent run in one request's trail, step by step: what ``nova replay --request`` prints
after the trail for a request that ran an agent.

Built from the records Kafka already holds for the request (:class:`analytics.replay.Trail`),
nothing else, so it shows what was recorded rather than what a worker believes it did:

- **model calls**: the ``llm`` events, one per attempt, numbered across the whole run (a
  resumed run numbers on). A step is one execution through the router: its attempts up to and
  including the first ``ok`` one, because an ``ok`` attempt always ends an execution and each
  step is one (a step whose attempts all failed ended the run). Each call's ``AGENT_STEP``
  fact in the audit chain adds the model's stop reason (``tool_use``, ``end_turn``, a token
  limit ...) to its line;
- **tool calls**: the ``AGENT_TOOL_CALL`` facts of the audit chain, each naming its step, its
  place in the step, the tool, its action type, its arguments and its governance outcome; a
  held call has two facts, ``held`` (with its checkpoint) and how it ended (``executed``,
  ``rejected``, ``expired``, or ``denied`` by a rule added meanwhile), with who decided (an
  ``http_call`` made, its status and the body's length: the fact keeps no more of it);
- **arguments**: the facts keep what a call names but only the length of what it writes
  (``nova.domain.agents.recorded_arguments``: the audit chain is analyst-readable, content is
  not). A call that waited at a checkpoint (every SEND) is on the record paused there
  (``agent_pause`` on ``pending``), as the model made it, and so is every call of the steps
  before it; those arguments are shown whole, shortened for the line;
- **decisions**: a rejection's reason, from the decisions topic;
- **the end**: the completed record: the answer, or the reason the run stopped (the step
  limit, the cost limit, a provider, a budget).

Facts written before they carried ``index``, ``action`` and ``arguments`` still show: the
place is read from the fact's id, the action from the tool catalogue.

Pure: :func:`agent_run` maps a trail to an :class:`AgentRun`, :func:`agent_lines` to text, so
both are unit-tested from records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nova.audit.facts import AGENT_STEP, AGENT_TOOL_CALL
from nova.domain.agents import TOOL_ACTIONS
from nova.llm.agent_pause import AgentPause
from nova.records import AuditRecord, CheckpointDecisionRecord, Event, LlmCall, PipelineRecord

ARGUMENT_CHARS = 40  # each argument's value on the step's line
ANSWER_CHARS = 200

_PLACE = re.compile(rf"/{AGENT_TOOL_CALL}/(\d+)/(\d+)(?:/|$)")
_KEPT_AS = re.compile(r"<(\d+ chars|\w+)>")  # nova.domain.agents.recorded_arguments


@dataclass(frozen=True)
class ToolStep:
    """One tool call and what governance made of it (``held``: the fact of its hold, ``end``:
    the fact of how it ended, or of the call itself when it never waited)."""

    step: int
    index: int
    tool: str
    action: str
    arguments: Mapping[str, Any] | None  # None: not recorded
    end: Mapping[str, Any] | None
    held: Mapping[str, Any] | None = None
    decision_reason: str | None = None

    @property
    def outcome(self) -> str:
        """allowed / refused with the reason / held at a checkpoint, then how it ended."""
        end = self.end or {}
        verdict = end.get("verdict")
        if self.held is None:
            if verdict == "executed":
                return "allowed"
            return _refusal(end)
        cp = self.held.get("checkpoint_id") or end.get("checkpoint_id")
        head = f"held at checkpoint {cp}"
        by = end.get("decided_by")
        who = f" by {by}" if by else ""
        if self.end is None:
            return f"{head}, waiting for a decision"
        if verdict == "executed":
            return f"{head}, then approved{who}: made{_answered(end)}"
        if verdict == "rejected":
            why = f" ({self.decision_reason})" if self.decision_reason else ""
            return f"{head}, then rejected{who}{why}: not made"
        if verdict == "expired":
            return f"{head}, then expired (nobody decided in time): not made"
        if verdict == "denied":
            return f"{head}, then approved{who}, but {_refusal(end)}"
        return f"{head}, then {_refusal(end)}"


@dataclass(frozen=True)
class AgentStep:
    number: int
    attempts: tuple[LlmCall, ...]
    tools: tuple[ToolStep, ...]


@dataclass(frozen=True)
class AgentRun:
    agent_id: str | None
    steps: tuple[AgentStep, ...]
    final: PipelineRecord | None
    waiting: str | None = None  # the checkpoint a run not finished waits at
    stops: Mapping[int, str] = field(default_factory=dict)  # attempt -> the model's stop reason

    @property
    def end(self) -> str:
        final = self.final
        if final is None:
            if self.waiting:
                return f"paused: waiting at checkpoint {self.waiting}"
            return "not finished (no completed record yet)"
        if final.status == "completed":
            text = (final.execution.text if final.execution else None) or ""
            return f"answer: {_cut(text, ANSWER_CHARS)!r}"
        error = final.error or "no reason recorded"
        if error.startswith(("agent step limit", "agent cost limit")):
            return f"stopped: {error}"
        return f"ended {final.status}: {error}"


def agent_run(submitted: PipelineRecord | None, llm_events: Sequence[Event],
              pending: Sequence[PipelineRecord], decisions: Sequence[CheckpointDecisionRecord],
              final: PipelineRecord | None,
              audit: Sequence[tuple[int, int, AuditRecord]]) -> AgentRun | None:
    """The run of a request's agent from its trail's records, or None when it ran no agent."""
    facts = _tool_facts(audit)
    agent_id = next((r.agent_id for r in (submitted, final, *pending)
                     if r is not None and r.agent_id), None)
    if agent_id is None and not facts:
        return None
    attempts = sorted({e.llm.attempt: e.llm for e in reversed(llm_events) if e.llm}.values(),
                      key=lambda c: c.attempt)
    groups: list[list[LlmCall]] = [[]]
    for call in attempts:
        groups[-1].append(call)
        if call.status == "ok":
            groups.append([])
    groups = [g for g in groups if g]
    made = _made_calls(pending)
    reasons = {d.checkpoint_id: d.reason for d in decisions if d.reason}
    places: dict[tuple[int, int], list[Mapping[str, Any]]] = {}
    for place, detail in facts:
        places.setdefault(place, []).append(detail)
    tools: dict[int, list[ToolStep]] = {}
    for (step, index), details in sorted(places.items()):
        held = next((d for d in details if d.get("verdict") == "held"), None)
        end = next((d for d in reversed(details) if d.get("verdict") != "held"), None)
        first = held or end or {}
        name = str(first.get("tool", "?"))
        args = made.get((step, index)) or first.get("arguments")
        cp = str((held or {}).get("checkpoint_id") or "")
        tools.setdefault(step, []).append(ToolStep(
            step, index, name, str(first.get("action") or TOOL_ACTIONS.get(name, "?")),
            args if isinstance(args, Mapping) else None, end, held, reasons.get(cp)))
    count = max([len(groups), *tools])
    steps = tuple(AgentStep(n, tuple(groups[n - 1]) if n <= len(groups) else (),
                            tuple(tools.get(n, ()))) for n in range(1, count + 1))
    waiting = next((t.held.get("checkpoint_id") for s in steps for t in s.tools
                    if t.held is not None and t.end is None), None)
    return AgentRun(agent_id, steps, final, str(waiting) if waiting else None,
                    _stop_reasons(audit))


def agent_lines(run: AgentRun) -> list[str]:
    """The run as the replay prints it: per step the model call(s), then each tool call with
    its governance outcome; last, the answer or why the run stopped."""
    lines = [f"Agent run: agent {run.agent_id or '?'}, {len(run.steps)} "
             f"step{'s' if len(run.steps) != 1 else ''}"]
    for step in run.steps:
        head = f"step {step.number}"
        if not step.attempts:
            lines.append(f"{head}  model call not recorded")
        for i, c in enumerate(step.attempts):
            stop = run.stops.get(c.attempt)
            lines.append(f"{head if i == 0 else ' ' * len(head)}  model {_attempt(c)}"
                         + (f"  stop {stop}" if stop else ""))
        for t in step.tools:
            lines.append(f"{' ' * len(head)}  tool {t.tool} ({t.action})  "
                         f"{_arguments(t.arguments)}")
            lines.append(f"{' ' * len(head)}    {t.outcome}")
    lines.append(run.end)
    return lines


def _attempt(c: LlmCall) -> str:
    text = (f"{c.provider}/{c.model}  tokens {c.tokens_in} in / {c.tokens_out} out  "
            f"${c.cost_usd:.6f}")
    if c.fallback_from:
        text += f"  (fallback from {c.fallback_from})"
    if c.status != "ok":
        text += f"  {c.status}" + (f": {_cut(c.error, 120)}" if c.error else "")
    return text


def _arguments(args: Mapping[str, Any] | None) -> str:
    if args is None:
        return "(arguments not recorded)"
    if not args:
        return "(no arguments)"
    return " ".join(f"{k}={_value(v)}" for k, v in sorted(args.items()))


def _value(v: Any) -> str:
    if not isinstance(v, str):
        return _cut(json.dumps(v, ensure_ascii=False), ARGUMENT_CHARS)
    if _KEPT_AS.fullmatch(v):  # what the fact keeps of a content argument: its length
        return v
    return repr(_cut(v, ARGUMENT_CHARS))


def _answered(detail: Mapping[str, Any]) -> str:
    """What an http_call made came to, as its fact keeps it: status and length, never the body."""
    http = detail.get("http")
    if not isinstance(http, Mapping):
        return ""
    status = http.get("status")
    said = f"HTTP {status}, {http.get('bytes', 0)} bytes" if status is not None else "no response"
    if http.get("truncated"):
        said += " (cut)"
    if http.get("withheld"):
        said += ", withheld (a credential)"
    if http.get("error"):
        said += f", {http['error']}"
    return f" ({said})"


def _refusal(detail: Mapping[str, Any]) -> str:
    why = detail.get("refusal")
    if not why:
        reasons = [str(r) for r in detail.get("reasons") or ()]
        why = "; ".join(reasons) or str(detail.get("verdict", "refused"))
    text = str(why)
    return text if text.startswith("refused") else f"refused: {text}"


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _details(audit: Sequence[tuple[int, int, AuditRecord]], kind: str
             ) -> Iterator[tuple[AuditRecord, Mapping[str, Any]]]:
    """The ``kind`` facts of the chain in order, each with its JSON detail (a fact whose
    detail is not a JSON object is passed over: replay shows what it can read)."""
    for _, _, rec in audit:
        if rec.kind != kind:
            continue
        try:
            detail = json.loads(rec.detail)
        except ValueError:
            continue
        if isinstance(detail, dict):
            yield rec, detail


def _tool_facts(audit: Sequence[tuple[int, int, AuditRecord]]
                ) -> list[tuple[tuple[int, int], Mapping[str, Any]]]:
    """The run's tool-call facts in chain order, each once (lane G may append one again after
    a crash, under the same id), with its place (step, index)."""
    seen: set[str] = set()
    out: list[tuple[tuple[int, int], Mapping[str, Any]]] = []
    for rec, detail in _details(audit, AGENT_TOOL_CALL):
        if rec.audit_id in seen:
            continue
        seen.add(rec.audit_id)
        place = _place(rec.audit_id, detail)
        if place is not None:
            out.append((place, detail))
    return out


def _stop_reasons(audit: Sequence[tuple[int, int, AuditRecord]]) -> dict[int, str]:
    """Each model call's stop reason by attempt number, from its ``AGENT_STEP`` fact."""
    out: dict[int, str] = {}
    for _, detail in _details(audit, AGENT_STEP):
        attempt, stop = detail.get("attempt"), detail.get("stop_reason")
        if isinstance(attempt, int) and isinstance(stop, str) and stop:
            out[attempt] = stop
    return out


def _place(audit_id: str, detail: Mapping[str, Any]) -> tuple[int, int] | None:
    step, index = detail.get("step"), detail.get("index")
    if isinstance(step, int) and isinstance(index, int):
        return step, index
    found = _PLACE.search(audit_id)  # facts written before they carried their index
    return (int(found[1]), int(found[2])) if found else None


def _made_calls(pending: Sequence[PipelineRecord]) -> dict[tuple[int, int], Mapping[str, Any]]:
    """The calls a paused run's record carries, as the model made them, by place: the held
    step's calls and those of every step before it (the conversation's assistant turns)."""
    out: dict[tuple[int, int], Mapping[str, Any]] = {}
    for record in pending:
        if not record.agent_pause:
            continue
        try:
            pause = AgentPause.from_json(record.agent_pause)
        except (ValueError, KeyError, TypeError):
            continue
        answers = [t for t in pause.turns if t.role == "assistant"]
        for n, turn in enumerate(answers, start=1):
            for j, call in enumerate(turn.calls):
                out[(n, j)] = call.arguments
        for j, call in enumerate(pause.calls):
            out[(pause.step, j)] = call.arguments
    return out
