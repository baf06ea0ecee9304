"""An agent run paused at a tool call's checkpoint, as the record carries it (``agent_pause``).

When a tool call needs a person's approval (``streams.agent_tools``: SEND, or a rule), the run
stops where it is and everything needed to go on is written into the pipeline record, which
waits in lane E's ``held`` table (a changelogged Faust table) and on the ``pending`` topic like
a held request: so a paused run survives any worker's death and is resumed by whichever worker
holds its partition when the decision comes. Kept: the conversation before the step, the
step's model answer (its text and all its tool calls), the results of the calls before the
held one, which call is held, every model attempt so far (numbered, so the llm events go on
where they stopped, and the run's totals stay whole), the cost spent, the last completion, the
tool call's governance decision, and the request's own checkpoint (restored when the run goes
on, so the finished record names the request's checkpoint, not the last tool call's).

JSON, not an Avro record: the conversation's shape follows ``nova.llm.tools``, and only lane F
reads it back; the gateway shows the held call from it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from nova.domain.agents import TOOL_ACTIONS
from nova.domain.masking import Mask, unmask
from nova.llm.clients import Completion
from nova.llm.executor import Attempt
from nova.llm.tools import ToolCall, ToolResult, Turn
from nova.records import CheckpointState


@dataclass(frozen=True)
class HeldDecision:
    """The governance decision on the held call (what the approver is shown)."""

    outcome: str
    fired_rules: tuple[str, ...]
    reasons: tuple[str, ...]
    checkpoint_reason: str
    approvals_required: int = 1


@dataclass(frozen=True)
class AgentPause:
    agent_id: str
    checkpoint_id: str
    step: int  # the model call whose answer asked for the held call (1-based)
    system: str
    turns: tuple[Turn, ...]  # the conversation before this step's answer
    text: str  # the model's text at this step
    calls: tuple[ToolCall, ...]  # every call of this step's answer
    results: tuple[ToolResult, ...]  # the results of calls[:index]
    index: int  # the held call
    attempts: tuple[Attempt, ...]  # every model attempt of the run so far
    cost_usd: float
    last: Completion | None
    decision: HeldDecision
    request_checkpoint: CheckpointState | None = None

    @property
    def call(self) -> ToolCall:
        return self.calls[self.index]

    def to_json(self) -> str:
        return json.dumps({
            "agent_id": self.agent_id, "checkpoint_id": self.checkpoint_id, "step": self.step,
            "system": self.system, "turns": [_turn(t) for t in self.turns], "text": self.text,
            "calls": [_call(c) for c in self.calls], "results": [asdict(r) for r in self.results],
            "index": self.index, "attempts": [asdict(a) for a in self.attempts],
            "cost_usd": self.cost_usd, "last": _completion(self.last),
            "decision": asdict(self.decision),
            "request_checkpoint": (self.request_checkpoint.model_dump(mode="json")
                                   if self.request_checkpoint else None),
        }, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> AgentPause:
        d = json.loads(text)
        last = d["last"]
        decision = d["decision"]
        return cls(
            agent_id=d["agent_id"], checkpoint_id=d["checkpoint_id"], step=int(d["step"]),
            system=d["system"], turns=tuple(_to_turn(t) for t in d["turns"]), text=d["text"],
            calls=tuple(_to_call(c) for c in d["calls"]),
            results=tuple(ToolResult(**r) for r in d["results"]), index=int(d["index"]),
            attempts=tuple(Attempt(**a) for a in d["attempts"]),
            cost_usd=float(d["cost_usd"]),
            last=None if last is None else Completion(**last),
            decision=HeldDecision(
                outcome=decision["outcome"], fired_rules=tuple(decision["fired_rules"]),
                reasons=tuple(decision["reasons"]),
                checkpoint_reason=decision["checkpoint_reason"],
                approvals_required=int(decision["approvals_required"])),
            request_checkpoint=(CheckpointState.model_validate(d["request_checkpoint"])
                                if d["request_checkpoint"] else None),
        )

    def describe(self, masks: Sequence[Mask] = ()) -> dict[str, Any]:
        """The held call as an approver reads it (the gateway's checkpoint view): the prompt's
        placeholders restored, as they are in what the call delivers."""
        args = {k: unmask(v, masks) if isinstance(v, str) else v
                for k, v in self.call.arguments.items()}
        return {"agent_id": self.agent_id, "step": self.step, "tool": self.call.name,
                "action": TOOL_ACTIONS.get(self.call.name), "arguments": args}


def _call(c: ToolCall) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "arguments": dict(c.arguments)}


def _to_call(d: dict[str, Any]) -> ToolCall:
    return ToolCall(d["id"], d["name"], d["arguments"])


def _turn(t: Turn) -> dict[str, Any]:
    return {"role": t.role, "text": t.text, "calls": [_call(c) for c in t.calls],
            "results": [asdict(r) for r in t.results]}


def _to_turn(d: dict[str, Any]) -> Turn:
    return Turn(d["role"], d["text"], tuple(_to_call(c) for c in d["calls"]),
                tuple(ToolResult(**r) for r in d["results"]))


def _completion(c: Completion | None) -> dict[str, Any] | None:
    if c is None:
        return None
    out = asdict(c)
    out.pop("tool_calls")  # the step's calls are kept once, in ``calls``
    return out
