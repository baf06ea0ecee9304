"""An agent run paused at a tool call's checkpoint, through lane F and lane E without Kafka:
held in the table under the call's own key, re-sent (never rerun) when its request comes
again, resumed once from the table's entry when decided, the approved call made once, a
rejected one told to the model; a worker dying during the resumed run never makes it twice.

The provider is a fake source (the model asks for ``send_message`` at its first step and
answers at its second); the lanes' tables are dicts; decisions are signed as the gateway signs
them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nova.domain.agents import agent_write_id
from nova.domain.governance import Rule, RuleMatch
from nova.domain.http_allow import parse_allow_list
from nova.entities.models import AgentEntity
from nova.llm.agent_pause import AgentPause
from nova.llm.clients import Completion
from nova.llm.tools import ToolCall
from nova.records import (
    AgentWrite,
    CheckpointDecisionRecord,
    EncodedPrompt,
    Intent,
    Message,
    PipelineRecord,
    Record,
    now_ms,
)
from nova.settings import load_settings
from nova.signing import Signer
from schemas import load_schema_set
from streams.agent_http import AgentHttp
from streams.context import LaneContext
from streams.execution import ExecutionService
from streams.held import held_key, parse_entry
from streams.lanes.lane_e_checkpoint import on_decision
from streams.lanes.lane_f_execution import ExecutionLane
from streams.runtime import LaneOutcome

GATEWAY = Signer(Ed25519PrivateKey.generate())
SEND = ToolCall("call-1", "send_message", {"to": "bob@example.com", "text": "ship it"})
AGENT = AgentEntity(id="ag-1", owner="alice", name="Sender", role="analyst", created_at=0,
                    tools=("send_message",))
HTTP = ToolCall("call-1", "http_call", {"method": "GET",
                                        "url": "https://api.example.com/v1/status"})
CALLER = AgentEntity(id="ag-2", owner="alice", name="Caller", role="analyst", created_at=0,
                     tools=("http_call",), allowed_hosts=("api.example.com",))


class Model:
    """The provider: a send_message call (or ``call``) at the first step, an answer after it."""

    def __init__(self, call: ToolCall = SEND) -> None:
        self.conversations: list[Any] = []
        self.call = call

    async def complete(self, provider: str, model: str, messages: Any, max_tokens: int,
                       request_id: str) -> Completion:
        return Completion("plain", 10, 5, 0, 1.0, provider, model)

    async def converse(self, provider: str, model: str, conversation: Any, max_tokens: int,
                       request_id: str) -> Completion:
        self.conversations.append(conversation)
        if not any(t.role == "assistant" for t in conversation.turns):
            return Completion("", 10, 5, 0, 1.0, provider, model, tool_calls=(self.call,),
                              stop_reason="tool_use")
        return Completion("All done.", 10, 5, 0, 1.0, provider, model, stop_reason="end_turn")


@dataclass
class Entities:
    """The worker's entity view: the agent, no rules, nothing to read."""

    def agent(self, agent_id: str) -> AgentEntity | None:
        return {a.id: a for a in (AGENT, CALLER)}.get(agent_id)

    def owner(self, kind: str, entity_id: str) -> str | None:
        return None

    def thread_messages(self, thread_id: str) -> list[Any]:
        return []

    def meeting_entries(self, meeting_id: str) -> list[Any]:
        return []

    def dataspace_items(self, dataspace_id: str) -> list[Any]:
        return []

    def budgets(self) -> list[Any]:
        return []

    def rules_for(self, identity_id: str) -> list[Any]:
        return []


@dataclass
class Ctx:
    """The parts of LaneContext lanes E and F use; one per worker process (``worker``)."""

    execution: ExecutionService
    held: dict[bytes, bytes] = field(default_factory=dict)
    llm_results: dict[bytes, bytes] = field(default_factory=dict)
    sent: list[tuple[str, Record]] = field(default_factory=list)
    facts: list[Any] = field(default_factory=list)
    settings: Any = field(default_factory=lambda: load_settings(environment="test"))
    schemas: Any = field(default_factory=load_schema_set)
    worker: str = "worker-test"

    def __post_init__(self) -> None:
        async def put(key: bytes, value: bytes | None) -> None:
            if value is None:
                self.llm_results.pop(key, None)
            else:
                self.llm_results[key] = value

        async def hold(key: bytes, value: bytes) -> None:
            self.held[key] = value

        self.state = SimpleNamespace(held=self.held, llm_results=self.llm_results,
                                     put_durably=put, hold_durably=hold)
        self.services = SimpleNamespace(execution=self.execution, verifier=GATEWAY.verifier)

    async def send(self, topic: str, key: str, record: Record) -> None:
        self.sent.append((topic, record))

    async def audit(self, fact: Any) -> None:
        self.facts.append(fact)

    async def emit(self, event: Any) -> None:
        pass

    async def dead_letter(self, message: Any, lane: str, exc: BaseException) -> None:
        raise AssertionError(f"dead-lettered: {exc}")

    @property
    def lane(self) -> LaneContext:
        return cast(LaneContext, self)

    def restarted(self) -> Ctx:
        """The next worker process after a crash: the same tables (their changelogs), a new
        execution service (nothing in flight, nothing remembered)."""
        return Ctx(service()[0], self.held, self.llm_results)


def service() -> tuple[ExecutionService, Model]:
    settings = load_settings(environment="test", llm_max_tokens=100)
    entities = Entities()
    svc = ExecutionService.build(settings.model_copy(update={"llm_fake_url": "http://127.0.0.1:9"}),
                                 budgets=entities, rules=entities, agents=entities)
    model = Model()
    svc.executor.source = model
    return svc, model


def request(agent: AgentEntity = AGENT) -> PipelineRecord:
    return PipelineRecord(
        request_id="r-1", identity_id="alice", user_id="u-alice", submitted_at=0,
        prompt="tell bob", agent_id=agent.id, status="in_flight",
        intent=Intent(task_type="general", action="SEND", confidence=1.0),
        encoded=EncodedPrompt(messages=(Message(role="user", content="tell bob"),),
                              token_estimate=2))


@dataclass
class Msg:
    value: bytes
    headers: list[tuple[str, bytes]]
    key: bytes
    topic: str = "nova.decisions"
    partition: int = 0
    offset: int = 0


def decision(ctx: Ctx, held: PipelineRecord, verb: str, reason: str | None = None) -> Msg:
    assert held.checkpoint is not None
    rec = GATEWAY.sign_decision(CheckpointDecisionRecord(
        checkpoint_id=held.checkpoint.checkpoint_id, request_id=held.request_id,
        identity_id=held.identity_id, decision=verb, actor="u-boss", reason=reason,
        decided_at=now_ms()))
    codec = ctx.schemas["decision"]
    return Msg(codec.encode(rec.to_avro()), [codec.header], key=held.request_id.encode())


def tool_facts(ctx: Ctx, kind: str = "AGENT_TOOL_CALL") -> list[dict[str, Any]]:
    return [json.loads(f.detail) for f in ctx.facts if f.kind == kind]


async def held_run(ctx: Ctx, agent: AgentEntity = AGENT) -> PipelineRecord:
    out = await ExecutionLane().process(request(agent), ctx.lane)
    assert (out.status, out.target) == ("held", "pending")
    return out.record


async def decided(ctx: Ctx, held: PipelineRecord, verb: str, reason: str | None = None
                  ) -> PipelineRecord:
    """Lane E applies the decision; the record it sends back to lane F."""
    before = len(ctx.sent)
    await on_decision(ctx.lane, decision(ctx, held, verb, reason))
    back = [r for t, r in ctx.sent[before:] if t == "executable"]
    assert len(back) == 1
    return cast(PipelineRecord, back[0])


async def test_a_held_call_pauses_the_run_in_the_held_table_and_a_copy_re_sends_the_hold() -> None:
    ctx = Ctx(service()[0])
    held = await held_run(ctx)
    assert held.status == "held"
    assert held.checkpoint is not None
    assert held.checkpoint.status == "pending"
    pause = AgentPause.from_json(held.agent_pause or "")
    assert (pause.step, pause.call) == (1, SEND)
    assert pause.checkpoint_id == held.checkpoint.checkpoint_id
    assert "Sender asks to call send_message" in held.checkpoint.reason
    state, stored = parse_entry(ctx.held[held_key("r-1", held.checkpoint.checkpoint_id)])
    assert (state, stored) == ("pending", held)
    assert held_key("r-1") not in ctx.held, "the request's own entry is not the call's"
    assert [(f["verdict"], f["checkpoint_id"]) for f in tool_facts(ctx)] == [
        ("held", held.checkpoint.checkpoint_id)]
    assert [f.kind for f in ctx.facts].count("CHECKPOINT") == 1

    for copy in (ctx, ctx.restarted()):  # a redelivery, in this process or the next one
        again = await ExecutionLane().process(request(), copy.lane)
        assert (again.status, again.target, again.record) == ("held", "pending", held)
    assert len(tool_facts(ctx)) == 1, "nothing ran again"


async def test_approval_resumes_the_run_once_and_makes_the_call_once() -> None:
    svc, model = service()
    ctx = Ctx(svc)
    held = await held_run(ctx)
    back = await decided(ctx, held, "approve")
    assert back.status == "in_flight", "the request goes on: it is not the request that waited"
    out, twin = await asyncio.gather(ExecutionLane().process(back, ctx.lane),
                                     ExecutionLane().process(back, ctx.lane))
    assert twin.record.status == "completed", "a copy at the same time waits for the run"
    assert (out.record.status, out.target) == ("completed", None)
    assert out.record.execution is not None
    assert out.record.execution.text == "All done."
    assert out.record.execution.attempts == 2, "the run's totals span the pause"
    assert (out.record.agent_pause, out.record.checkpoint) == (None, None)
    told = model.conversations[-1].turns[-1].results[0]
    assert (told.content, told.is_error) == ("sent to bob@example.com, with a person's approval",
                                             False)
    sent = tool_facts(ctx, "AGENT_MESSAGE_SENT")
    assert [(s["to"], s["text_sha256"], s["text_chars"], s["approved_by"]) for s in sent] == [
        ("bob@example.com", hashlib.sha256(b"ship it").hexdigest(), 7, "u-boss")]
    assert all("text" not in s for s in sent)  # the audit chain is analyst-readable

    # The decided record again, the request again, the decision again: replayed, never rerun.
    for record in (back, request()):
        replay = await ExecutionLane().process(record, ctx.lane)
        assert replay.record.status == "completed"
    await decided(ctx, held, "approve")
    assert [f["verdict"] for f in tool_facts(ctx)] == ["held", "executed"]
    assert len(tool_facts(ctx, "AGENT_MESSAGE_SENT")) == 1
    assert len(model.conversations) == 2


async def test_a_rejected_call_is_never_made_and_the_model_is_told() -> None:
    svc, model = service()
    ctx = Ctx(svc)
    held = await held_run(ctx)
    back = await decided(ctx, held, "reject", "not to bob")
    out = await ExecutionLane().process(back, ctx.lane)
    assert (out.record.status, out.record.error) == ("completed", None)
    told = model.conversations[-1].turns[-1].results[0]
    assert told.is_error
    assert told.content == ("refused by a person: send_message was rejected at its "
                            "checkpoint: not to bob; it was not made")
    assert [(f["verdict"], f["decided_by"]) for f in tool_facts(ctx)] == [
        ("held", None), ("rejected", "u-boss")]
    assert not tool_facts(ctx, "AGENT_MESSAGE_SENT")


async def test_a_worker_dying_during_the_resumed_run_never_makes_the_call_twice() -> None:
    ctx = Ctx(service()[0])
    held = await held_run(ctx)
    back = await decided(ctx, held, "approve")
    marked: list[bytes] = []

    async def die(key: bytes, value: bytes) -> None:  # the marker is on the broker, then SIGKILL
        ctx.llm_results[key] = value
        marked.append(value)
        raise SystemExit

    ctx.state.put_durably = die
    with pytest.raises(SystemExit):
        await ExecutionLane().process(back, ctx.lane)
    assert json.loads(marked[0])["run"].startswith("r-1@")
    for settings in ({}, {"llm_after_crash": "retry"}):  # a tool's effect never repeats
        after = ctx.restarted()
        after.settings = after.settings.model_copy(update=settings)
        out: LaneOutcome = await ExecutionLane().process(back, after.lane)
        assert out.record.status == "failed"
        assert (out.record.error or "").startswith("interrupted")
        assert not tool_facts(after)


class Endpoint:
    """The allow-listed endpoint: counts the calls it receives (``die``: the worker is killed
    while the call is under way, after the endpoint got it)."""

    def __init__(self, die: bool = False) -> None:
        self.calls = 0
        self.die = die

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.die:
            raise SystemExit
        return httpx.Response(200, json={"state": "green"})


def calling(endpoint: Endpoint, address: str = "93.184.216.34"
            ) -> tuple[ExecutionService, Model]:
    """A worker whose agents may call https://api.example.com/v1 (here, ``endpoint``; the
    name resolves to ``address``)."""
    svc, _ = service()
    model = Model(HTTP)
    svc.executor.source = model

    async def resolver(host: str, port: int) -> list[str]:
        return [address]

    svc.http = AgentHttp(parse_allow_list("https://api.example.com/v1"),
                         transport=httpx.MockTransport(endpoint), resolver=resolver)
    return svc, model


async def test_an_approved_http_call_is_made_once_whatever_is_delivered_again() -> None:
    endpoint = Endpoint()
    svc, model = calling(endpoint)
    ctx = Ctx(svc)
    held = await held_run(ctx, CALLER)
    assert endpoint.calls == 0, "held: nothing is called before a person approves"
    again = await ExecutionLane().process(request(CALLER), ctx.lane)
    assert (again.status, endpoint.calls) == ("held", 0)

    back = await decided(ctx, held, "approve")
    out, twin = await asyncio.gather(ExecutionLane().process(back, ctx.lane),
                                     ExecutionLane().process(back, ctx.lane))
    assert (out.record.status, twin.record.status) == ("completed", "completed")
    assert endpoint.calls == 1
    told = model.conversations[-1].turns[-1].results[0]
    assert (told.content, told.is_error) == ('HTTP 200, application/json\n{"state":"green"}',
                                             False)
    made = tool_facts(ctx)[-1]
    assert (made["verdict"], made["http"]) == ("executed", {
        "url": "https://api.example.com/v1/status", "status": 200, "bytes": 17,
        "truncated": False, "error": None, "withheld": False})
    assert "green" not in json.dumps(tool_facts(ctx)), "the audit keeps no response content"

    restarted = Ctx(calling(endpoint)[0], ctx.held, ctx.llm_results)
    for copy in (ctx, restarted):  # the decided record, the request, the decision: again
        for record in (back, request(CALLER)):
            replay = await ExecutionLane().process(record, copy.lane)
            assert replay.record.status == "completed"
        await decided(copy, held, "approve")
    assert endpoint.calls == 1


async def test_a_worker_killed_while_the_call_is_under_way_never_makes_it_again() -> None:
    endpoint = Endpoint(die=True)
    ctx = Ctx(calling(endpoint)[0])
    held = await held_run(ctx, CALLER)
    back = await decided(ctx, held, "approve")
    with pytest.raises(SystemExit):
        await ExecutionLane().process(back, ctx.lane)
    assert endpoint.calls == 1
    endpoint.die = False
    for settings in ({}, {"llm_after_crash": "retry"}):
        after = Ctx(calling(endpoint)[0], ctx.held, ctx.llm_results)
        after.settings = after.settings.model_copy(update=settings)
        out = await ExecutionLane().process(back, after.lane)
        assert out.record.status == "failed"
        assert (out.record.error or "").startswith("interrupted")
    assert endpoint.calls == 1, "the endpoint may have acted: it is never called again"


async def test_an_http_call_off_the_allow_list_is_refused_without_a_checkpoint() -> None:
    endpoint = Endpoint()
    svc, model = calling(endpoint)
    model.call = ToolCall("call-1", "http_call", {"method": "GET",
                                                  "url": "https://api.example.com/admin"})
    ctx = Ctx(svc)
    out = await ExecutionLane().process(request(CALLER), ctx.lane)
    assert (out.record.status, out.target, out.record.checkpoint) == ("completed", None, None)
    assert not ctx.held
    told = model.conversations[-1].turns[-1].results[0]
    assert told.is_error
    assert "not on this deployment's allow list" in told.content
    assert [f["verdict"] for f in tool_facts(ctx)] == ["refused"]
    assert endpoint.calls == 0


async def test_an_approved_http_call_to_a_name_resolving_inside_is_refused_and_audited() -> None:
    endpoint = Endpoint()
    svc, model = calling(endpoint, address="169.254.169.254")
    ctx = Ctx(svc)
    back = await decided(ctx, await held_run(ctx, CALLER), "approve")
    out = await ExecutionLane().process(back, ctx.lane)
    assert out.record.status == "completed", "the model is told and goes on"
    assert endpoint.calls == 0
    told = model.conversations[-1].turns[-1].results[0]
    assert told.is_error
    assert told.content.startswith("refused: api.example.com resolves to "
                                   "169.254.169.254, which is never called")
    held, made = tool_facts(ctx)
    assert (held["verdict"], made["verdict"]) == ("held", "refused")
    assert made["refusal"] == told.content
    assert "http" not in made, "nothing was sent, so nothing came back"


WRITE = ToolCall("call-1", "append_thread", {"thread_id": "t-1", "text": "minutes"})
WRITER = AgentEntity(id="ag-1", owner="alice", name="Writer", role="analyst", created_at=0,
                     tools=("append_thread",))


@dataclass
class HeldWrites(Entities):
    """Alice owns thread t-1, and her rule holds every WRITE for approval."""

    def agent(self, agent_id: str) -> AgentEntity | None:
        return WRITER

    def owner(self, kind: str, entity_id: str) -> str | None:
        return "alice" if (kind, entity_id) == ("thread", "t-1") else None

    def rules_for(self, identity_id: str) -> list[Any]:
        return [Rule(rule_id="ask-writes", identity_id="alice", sphere_id=None,
                     effect="require_approval", priority=1,
                     match=RuleMatch(actions=frozenset({"WRITE"})))]


@dataclass
class Writes:
    """``agent-writes``: what lane F put there."""

    written: list[AgentWrite] = field(default_factory=list)

    async def write(self, write: AgentWrite) -> None:
        self.written.append(write)


def writing_service() -> tuple[ExecutionService, Model, Writes]:
    settings = load_settings(environment="test", llm_max_tokens=100)
    entities = HeldWrites()
    svc = ExecutionService.build(settings.model_copy(update={"llm_fake_url": "http://127.0.0.1:9"}),
                                 budgets=entities, rules=entities, agents=entities)
    model = Model(WRITE)
    svc.executor.source = model
    svc.writes = writes = Writes()
    return svc, model, writes


async def test_a_rule_held_write_is_put_on_agent_writes_once_when_approved() -> None:
    svc, model, writes = writing_service()
    ctx = Ctx(svc)
    held = await held_run(ctx, WRITER)
    assert writes.written == [], "nothing is written while it waits"
    back = await decided(ctx, held, "approve")
    out = await ExecutionLane().process(back, ctx.lane)
    assert out.record.status == "completed"
    assert [(w.write_id, w.kind, w.parent_id, w.text, w.identity_id, w.agent_id)
            for w in writes.written] == [
        (agent_write_id("r-1", 1, 0), "thread_message", "t-1", "minutes", "alice", "ag-1")]
    told = model.conversations[-1].turns[-1].results[0]
    assert (told.content, told.is_error) == (
        "appended to the thread t-1, with a person's approval", False)
    assert [(f["verdict"], f.get("write_id")) for f in tool_facts(ctx)] == [
        ("held", None), ("executed", agent_write_id("r-1", 1, 0))]
    for record in (back, request(WRITER)):  # replayed, never rerun
        assert (await ExecutionLane().process(record, ctx.lane)).record.status == "completed"
    assert len(writes.written) == 1


async def test_a_worker_without_a_way_to_the_gateway_refuses_writes() -> None:
    svc, model, _ = writing_service()
    svc.writes = None
    ctx = Ctx(svc)
    back = await decided(ctx, await held_run(ctx, WRITER), "approve")
    out = await ExecutionLane().process(back, ctx.lane)
    assert out.record.status == "completed"
    told = model.conversations[-1].turns[-1].results[0]
    assert told.is_error
    assert "no way to write" in told.content
