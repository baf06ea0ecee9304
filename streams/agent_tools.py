"""An agent's tools on the worker: each call governed like a request, then run (or not).

Every tool call a model makes is judged by lane D's logic (``nova.domain.governance.decide``)
with the tool's action type (``nova.domain.agents.TOOL_ACTIONS``), the resource it names and
the identity's own rules, before anything is read or done:

- not among the agent's tools, or arguments that are not what the tool takes: refused, and
  the model is told why (so it can correct itself);
- a resource of another identity: denied (``IDENTITY_BOUNDARY``), answered as refused, and
  recorded like a crossing at the gateway (an alert event and a fact), naming nothing of it;
- deny (a rule, a credential in the arguments): answered as refused with the reasons;
- an ``http_call`` whose URL is not on the deployment's allow list
  (``NOVA_AGENT_HTTP_ALLOW``, :mod:`nova.domain.http_allow`; empty: ``http_call`` is off) and
  among the agent's ``allowed_hosts``, or is not a GET or a POST with a JSON object body;
- require_approval (SEND, or a rule): *held*. The run pauses at a checkpoint of its own
  (``streams.agent_run``, ``nova.llm.agent_pause``) and the model is told nothing until a
  person decides. Approved, the call is judged again (a rule added meanwhile still denies) and
  made, once; rejected or expired, the model is told a person refused it (:func:`decided`);
- allow (or approved): ``send_message`` is delivered. Nova has no message channel yet, so its
  delivery record is an ``AGENT_MESSAGE_SENT`` fact in the audit chain: the recipient and the
  text's SHA-256 and length, never the text (analysts read the chain); the text, the prompt's
  placeholders restored as the answer's are, is the held call's on ``pending``; READ
  tools read the identity's thread, meeting or dataspace from the worker's entity
  view. What they read goes to a provider as lane B's context does, so it is held to the same
  rules: one holding a credential is withheld (refused, nothing of it sent), and identifiers
  (IBAN, card, e-mail, ...) are masked as lane C masks them, numbered after the prompt's
  placeholders so none is reused for another value (the answer shows these as placeholders:
  only the prompt's are restored). ``http_call`` (a SEND, so always held first) is made
  only once approved, in the resumed run, so lane F's attempt marker for that run makes it
  once whatever is redelivered or restarted: this module hands back the request
  (:attr:`ToolOutcome.request`, the URL rebuilt from the parts that were checked, the prompt's
  placeholders restored as a send's are), lane F makes it with the worker's one client
  (:mod:`streams.agent_http`: a timeout, redirects checked hop by hop, at most 64 KiB read),
  and :func:`answered` tells the model its status and the start of its body, held to the
  rules of what a READ returns. The audit keeps the status and the length, never the body.
  WRITE tools (``append_thread``, ``append_meeting_note``; a rule-flagged one is held like a
  SEND): entity writes are signed by the gateway, whose key a worker never holds, so an
  allowed (or approved) write comes back ``executed`` with its :attr:`ToolOutcome.write` (the
  child's kind, its parent and the text, the prompt's placeholders restored as a send's are);
  lane F puts it on ``agent-writes`` durably and only then tells the model it was appended
  (``streams.agent_run``); the gateway's applier (``gateway.agent_writes``) checks it again
  on its own state, signs it and writes it.

Pure apart from the entity view handed in (the HTTP call itself is lane F's), so the verdicts
are unit-tested without Kafka or a network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, Protocol

from nova.convert import domain_masks
from nova.domain.agents import TOOL_ACTIONS, WRITE_KINDS
from nova.domain.context import DataspaceItem, MeetingEntry, ThreadMessage
from nova.domain.governance import (
    GovernanceDecision,
    GovernanceFacts,
    Rule,
    credentials,
    decide,
)
from nova.domain.http_allow import NOTHING, AllowList, UrlRefused, parse_url
from nova.domain.masking import Mask, mask_texts, unmask
from nova.entities.models import AgentEntity
from nova.llm.tools import ToolCall, ToolSpec
from nova.records import CheckpointState, PipelineRecord
from streams.agent_http import HttpAnswer, HttpRequest, off_list

MAX_RESULT_CHARS: Final = 8000  # what one tool result may put in the conversation

Verdict = Literal["executed", "refused", "denied", "held", "rejected", "expired"]

# What agent runs can make once allowed or approved (the rest are refused, never held).
RUNNABLE: Final = frozenset({"read_thread", "read_meeting", "read_dataspace", "send_message",
                            "http_call", "append_thread", "append_meeting_note"})
MAX_BODY_BYTES: Final = 64 * 1024  # what one http_call may send
# What one write may hold: the smaller of the routes' caps (a meeting note's; the gateway's
# applier checks each route's own again).
MAX_WRITE_CHARS: Final = 16_000


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
                          "approval); answers its status and the start of its body.", {
                              "type": "object", "properties": {
                                  "method": {"type": "string", "enum": ["GET", "POST"]},
                                  "url": {"type": "string", "description": "an https:// URL"},
                                  "body": {"type": "object",
                                           "description": "a POST's JSON body"}},
                              "required": ["method", "url"], "additionalProperties": False}),
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
    request: HttpRequest | None = None  # an approved http_call, for lane F to make
    answer: HttpAnswer | None = None  # what it came to (its status and length are recorded)
    failed: bool = False  # made, but nothing of an answer for the model (no response, ...)
    # an allowed WRITE, for lane F to put on agent-writes: (kind, parent id, text)
    write: tuple[Literal["thread_message", "meeting_note"], str, str] | None = None
    write_id: str | None = None  # the write lane F put on agent-writes (for the audit)

    @property
    def is_error(self) -> bool:
        return self.verdict != "executed" or self.failed


def specs_for(agent: AgentEntity) -> tuple[ToolSpec, ...]:
    return tuple(SPECS[t] for t in agent.tools)


def _refused(why: str) -> ToolOutcome:
    return ToolOutcome("refused", f"refused: {why}")


def judge_and_run(record: PipelineRecord, agent: AgentEntity, call: ToolCall,
                  view: ToolView, rules: Sequence[Rule], *, approved: bool = False,
                  endpoints: AllowList = NOTHING) -> ToolOutcome:
    """Govern ``call`` as ``record``'s identity and run it if allowed, or if it needs approval
    and a person ``approved`` it (module docstring). An ``http_call`` judged to be made comes
    back ``executed`` with its :attr:`ToolOutcome.request` (``endpoints``: the deployment's
    allow list), which lane F makes and :func:`answered` turns into the model's result."""
    if call.name not in agent.tools:
        return _refused(f"{call.name} is not among this agent's tools "
                        f"({', '.join(agent.tools) or 'none'})")
    args = dict(call.arguments)
    if call.name == "send_message" and not all(
            isinstance(args.get(k), str) and args[k] for k in ("to", "text")):
        return _refused("send_message takes to and text (strings)")
    if call.name in WRITE_KINDS:
        text_arg = args.get("text")
        if not isinstance(text_arg, str) or not text_arg.strip():
            return _refused(f"{call.name} takes text (a non-empty string)")
        if len(text_arg) > MAX_WRITE_CHARS:
            return _refused(f"{call.name} writes at most {MAX_WRITE_CHARS} characters")
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
    masks = domain_masks(record.encoded.masks) if record.encoded else ()
    request: HttpRequest | None = None
    if call.name == "http_call":  # off the lists: refused before any person is asked
        built = _http_request(args, masks)
        if isinstance(built, str):
            return _refused(built)
        why = off_list(built.target, endpoints, agent.allowed_hosts)
        if why is not None:
            return _refused(f"{why}; it was not made")
        request = built
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
    if request is not None:
        if not approved:  # made only in a resumed run, under its own marker (never retried)
            return ToolOutcome("held", "held: this call waits for a person's approval", decision)
        return ToolOutcome("executed", "", decision, request=request)
    if call.name == "send_message":
        to, body = unmask(str(args["to"]), masks), unmask(str(args["text"]), masks)
        return ToolOutcome("executed", f"sent to {args['to']}, with a person's approval"
                           if approved else f"sent to {args['to']}", decision, sent=(to, body))
    assert target is not None, "every runnable tool but send_message names a resource"
    if call.name in WRITE_KINDS:
        what = "thread" if call.name == "append_thread" else "meeting's notes"
        return ToolOutcome("executed", f"appended to the {what} {rid}"
                           + (", with a person's approval" if approved else ""), decision,
                           write=(WRITE_KINDS[call.name], rid,
                                  unmask(str(args["text"]), masks)))
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


def answered(record: PipelineRecord, outcome: ToolOutcome, answer: HttpAnswer) -> ToolOutcome:
    """What the model is told of an ``http_call`` made: its status and the start of its body,
    held to the rules of what a READ returns (a credential withholds the body; identifiers are
    masked after the prompt's placeholders, as lane C masks them)."""
    made = replace(outcome, answer=answer)
    if answer.status is None:
        return replace(made, content=f"http_call made, no response: {answer.error}", failed=True)
    head = f"HTTP {answer.status}"
    if answer.error is not None:
        return replace(made, content=f"{head}: {answer.error}")
    text = answer.body.decode("utf-8", errors="replace")
    if credentials(text):
        return replace(made, content=f"{head}: the response holds a credential, so nothing of "
                       "it is sent", failed=True)
    sent = "\n".join(m.content for m in record.encoded.messages) if record.encoded else ""
    masked = mask_texts([sent, text]).texts[1] if text else "(empty body)"
    more = " (the start of a longer body)" if answer.truncated else ""
    kind = f", {answer.content_type}" if answer.content_type else ""
    content = f"{head}{kind}{more}\n{masked}"
    return replace(made, content=content[:MAX_RESULT_CHARS])


def _http_request(args: Mapping[str, object], masks: Sequence[Mask]) -> HttpRequest | str:
    """The call ``args`` describe, the prompt's placeholders restored (as a send's are), or
    why they are not one."""
    if set(args) - {"method", "url", "body"}:
        return "http_call takes method, url and (a POST) body only"
    method = args.get("method")
    if method not in ("GET", "POST"):
        return "http_call takes method GET or POST"
    url = args.get("url")
    if not isinstance(url, str) or not url:
        return "http_call takes url (a string)"
    body: bytes | None = None
    if "body" in args:
        if method == "GET":
            return "a GET takes no body"
        value = args["body"]
        if isinstance(value, str):  # a model that wrote its JSON as a string
            try:
                value = json.loads(value)
            except ValueError:
                return "http_call's body is a JSON object"
        if not isinstance(value, dict | list):
            return "http_call's body is a JSON object"
        body = json.dumps(_restored(value, masks), ensure_ascii=False).encode()
        if len(body) > MAX_BODY_BYTES:
            return f"http_call's body is larger than {MAX_BODY_BYTES // 1024} KiB"
    try:
        target = parse_url(unmask(url, masks))
    except UrlRefused as exc:
        return f"{exc}; it was not made"
    return HttpRequest("GET" if method == "GET" else "POST", target, body)


def _restored(value: object, masks: Sequence[Mask]) -> object:
    if isinstance(value, str):
        return unmask(value, masks)
    if isinstance(value, dict):
        return {k: _restored(v, masks) for k, v in value.items()}
    if isinstance(value, list):
        return [_restored(v, masks) for v in value]
    return value


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
