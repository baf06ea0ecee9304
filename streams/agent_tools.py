"""An agent's tools on the worker: each call governed like a request, then run (or not).

Every tool call a model makes is judged by lane D's logic (``nova.domain.governance.decide``)
with the tool's action type (``nova.domain.agents.TOOL_ACTIONS``), the resource it names and
the identity's own rules, before anything is read or done:

- not among the agent's tools, or arguments that are not what the tool takes: refused, and
  the model is told why (so it can correct itself);
- a resource of another identity: denied (``IDENTITY_BOUNDARY``), answered as refused, and
  recorded like a crossing at the gateway (an alert event and a fact), naming nothing of it;
- deny (a rule, a credential in the arguments): answered as refused with the reasons;
- a tool that agent runs cannot make yet (WRITE tools, ``http_call``): refused, before any
  person is asked to approve it;
- require_approval (SEND, or a rule): *held*. The run pauses at a checkpoint of its own
  (``streams.agent_run``, ``nova.llm.agent_pause``) and the model is told nothing until a
  person decides. Approved, the call is judged again (a rule added meanwhile still denies) and
  made, once; rejected or expired, the model is told a person refused it (:func:`decided`);
- allow (or approved): ``send_message`` is delivered. Nova has no outbound channel yet, so its
  delivery record is an ``AGENT_MESSAGE_SENT`` fact in the audit chain: the recipient and the
  text's SHA-256 and length, never the text (analysts read the chain); the text, the prompt's
  placeholders restored as the answer's are, is the held call's on ``pending``; READ
  tools read the identity's thread, meeting or dataspace from the worker's entity
  view. What they read goes to a provider as lane B's context does, so it is held to the same
  rules: one holding a credential is withheld (refused, nothing of it sent), and identifiers
  (IBAN, card, e-mail, ...) are masked as lane C masks them, numbered after the prompt's
  placeholders so none is reused for another value (the answer shows these as placeholders:
  only the prompt's are restored). WRITE tools are refused for now: entity writes are signed
  by the gateway, whose key a worker never holds, so an agent's write needs a path through
  the gateway first; so is ``http_call``, until a worker has an HTTPS client of its own for
  allow-listed hosts.

Pure apart from the entity view handed in, so the verdicts are unit-tested without Kafka.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from nova.convert import domain_masks
from nova.domain.agents import TOOL_ACTIONS
from nova.domain.context import DataspaceItem, MeetingEntry, ThreadMessage
from nova.domain.governance import (
    GovernanceDecision,
    GovernanceFacts,
    Rule,
    credentials,
    decide,
)
from nova.domain.masking import mask_texts, unmask
from nova.entities.models import AgentEntity
from nova.llm.tools import ToolCall, ToolSpec
from nova.records import CheckpointState, PipelineRecord

MAX_RESULT_CHARS: Final = 8000  # what one tool result may put in the conversation

Verdict = Literal["executed", "refused", "denied", "held", "rejected", "expired"]

# What agent runs can make once allowed or approved (the rest are refused, never held).
RUNNABLE: Final = frozenset({"read_thread", "read_meeting", "read_dataspace", "send_message"})


class ToolView(Protocol):
    """What the tools read: the worker's entity view (``streams.entities.WorkerEntities``)."""

    def owner(self, kind: str, entity_id: str) -> str | None: ...

    def thread_messages(self, thread_id: str) -> Sequence[ThreadMessage]: ...

    def meeting_entries(self, meeting_id: str) -> Sequence[MeetingEntry]: ...

    def dataspace_items(self, dataspace_id: str) -> Sequence[DataspaceItem]: ...


def _id_schema(name: str, what: str) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "string", "description": what}},
            "required": [name], "additionalProperties": False}


SPECS: Final[Mapping[str, ToolSpec]] = {
    "read_thread": ToolSpec("read_thread", "Read the messages of one of the user's threads.",
                            _id_schema("thread_id", "the thread's id")),
    "read_meeting": ToolSpec("read_meeting", "Read the agenda items, notes and decisions of "
                             "one of the user's meetings.", _id_schema("meeting_id", "its id")),
    "read_dataspace": ToolSpec("read_dataspace", "Read the documents of one of the user's "
                               "dataspaces.", _id_schema("dataspace_id", "its id")),
    "append_thread": ToolSpec("append_thread", "Append a message to one of the user's threads.",
                              {"type": "object", "properties": {
                                  "thread_id": {"type": "string"}, "text": {"type": "string"}},
                               "required": ["thread_id", "text"]}),
    "append_meeting_note": ToolSpec("append_meeting_note", "Add a note to one of the user's "
                                    "meetings.", {"type": "object", "properties": {
                                        "meeting_id": {"type": "string"},
                                        "text": {"type": "string"}},
                                        "required": ["meeting_id", "text"]}),
    "send_message": ToolSpec("send_message", "Send a message to a recipient (needs the user's "
                             "approval).", {"type": "object", "properties": {
                                 "to": {"type": "string"}, "text": {"type": "string"}},
                                 "required": ["to", "text"]}),
    "http_call": ToolSpec("http_call", "Call an allow-listed HTTP endpoint (needs the user's "
                          "approval).", {"type": "object", "properties": {
                              "method": {"type": "string", "enum": ["GET", "POST"]},
                              "url": {"type": "string"}, "body": {"type": "string"}},
                              "required": ["method", "url"]}),
}

# The resource kind and argument each resource-naming tool reads.
_TARGETS: Final[Mapping[str, tuple[str, str]]] = {
    "read_thread": ("thread", "thread_id"),
    "append_thread": ("thread", "thread_id"),
    "read_meeting": ("meeting", "meeting_id"),
    "append_meeting_note": ("meeting", "meeting_id"),
    "read_dataspace": ("dataspace", "dataspace_id"),
}


@dataclass(frozen=True)
class ToolOutcome:
    """What happened to one call: the verdict, what the model is told, and for the audit the
    governance decision, the foreign resource a denied call named (kind, id, owner) and the
    message a ``send_message`` delivered (recipient, text)."""

    verdict: Verdict
    content: str
    decision: GovernanceDecision | None = None
    crossing: tuple[str, str, str] | None = None
    sent: tuple[str, str] | None = None

    @property
    def is_error(self) -> bool:
        return self.verdict != "executed"


def specs_for(agent: AgentEntity) -> tuple[ToolSpec, ...]:
    return tuple(SPECS[t] for t in agent.tools)


def _refused(why: str) -> ToolOutcome:
    return ToolOutcome("refused", f"refused: {why}")


def judge_and_run(record: PipelineRecord, agent: AgentEntity, call: ToolCall,
                  view: ToolView, rules: Sequence[Rule], *, approved: bool = False
                  ) -> ToolOutcome:
    """Govern ``call`` as ``record``'s identity and run it if allowed, or if it needs approval
    and a person ``approved`` it (module docstring)."""
    if call.name not in agent.tools:
        return _refused(f"{call.name} is not among this agent's tools "
                        f"({', '.join(agent.tools) or 'none'})")
    args = dict(call.arguments)
    if call.name == "send_message" and not all(
            isinstance(args.get(k), str) and args[k] for k in ("to", "text")):
        return _refused("send_message takes to and text (strings)")
    target = _TARGETS.get(call.name)
    owners: dict[str, str] = {}
    rid = ""
    if target is not None:
        kind, arg = target
        value = args.get(arg)
        if not isinstance(value, str) or not value:
            return _refused(f"{call.name} takes {arg} (a string)")
        rid = value
        owner = view.owner(kind, rid)
        if owner is None:
            return _refused(f"no {kind} {rid}")
        owners[f"{kind}:{rid}"] = owner
    if call.name == "http_call":
        host = _host(args.get("url"))
        if host is None or host not in agent.allowed_hosts:
            return _refused("the URL's host is not on this agent's allow list")
    assert record.intent is not None, "lane A always sets the intent"
    facts = GovernanceFacts(
        identity_id=record.identity_id,
        sphere_id=record.sphere_id,
        action=TOOL_ACTIONS[call.name],
        task_type=record.intent.task_type,
        roles=frozenset(record.roles),
        provider=None,
        cost_estimate_usd=0.0,
        prompt=json.dumps(args, sort_keys=True, ensure_ascii=False),
        resource_owners=owners,
    )
    decision = decide(facts, rules)
    if decision.outcome == "deny":
        foreign = next(((k.split(":", 1)[0], k.split(":", 1)[1], o) for k, o in owners.items()
                        if o != record.identity_id), None)
        return ToolOutcome("denied", "refused by governance: " + "; ".join(decision.reasons),
                           decision, foreign)
    if call.name not in RUNNABLE:
        return ToolOutcome("refused", f"refused: {call.name} is not available to agent runs "
                           "yet; it was not made", decision)
    if decision.outcome == "require_approval" and not approved:
        return ToolOutcome("held", "held: this call waits for a person's approval ("
                           f"{decision.checkpoint_reason})", decision)
    if call.name == "send_message":
        masks = domain_masks(record.encoded.masks) if record.encoded else ()
        to, body = unmask(str(args["to"]), masks), unmask(str(args["text"]), masks)
        return ToolOutcome("executed", f"sent to {args['to']}, with a person's approval"
                           if approved else f"sent to {args['to']}", decision, sent=(to, body))
    assert target is not None, "every runnable tool but send_message reads a resource"
    text = _read(call.name, rid, view)
    if credentials(text):
        return ToolOutcome("refused", f"refused: the {target[0]} holds a credential, so nothing "
                           "of it is sent", decision)
    sent = "\n".join(m.content for m in record.encoded.messages) if record.encoded else ""
    masked = mask_texts([sent, text]).texts[1]  # the prompt's placeholders stay taken
    return ToolOutcome("executed", masked[:MAX_RESULT_CHARS], decision)


def decided(call: ToolCall, checkpoint: CheckpointState) -> ToolOutcome:
    """What the model is told of a held call a person rejected, or nobody approved in time."""
    if checkpoint.status == "rejected":
        why = f": {checkpoint.decision_reason}" if checkpoint.decision_reason else ""
        return ToolOutcome("rejected", f"refused by a person: {call.name} was rejected at its "
                           f"checkpoint{why}; it was not made")
    return ToolOutcome("expired", f"refused: nobody approved {call.name} before its checkpoint "
                       "expired; it was not made")


def _host(url: object) -> str | None:
    if not isinstance(url, str) or not url.startswith("https://"):
        return None
    return url[len("https://"):].split("/", 1)[0].split(":", 1)[0].lower() or None


def _read(tool: str, rid: str, view: ToolView) -> str:
    if tool == "read_thread":
        lines = [f"[message from {m.author} at {m.created_at.isoformat()}] {m.text}"
                 for m in view.thread_messages(rid)]
    elif tool == "read_meeting":
        lines = [f"[meeting {e.meeting_title!r} {e.kind} at {e.created_at.isoformat()}] {e.text}"
                 for e in view.meeting_entries(rid)]
    else:
        lines = [f"[document {i.title!r} at {i.created_at.isoformat()}] {i.text}"
                 for i in view.dataspace_items(rid)]
    return "\n".join(lines) or "(empty)"
