"""Agents' WRITE tools on the real broker: lane F puts an allowed write on ``agent-writes``,
the gateway's applier checks it on its own state, signs it and writes it (once), or refuses
and audits it; a write across the identity boundary never gets past governance.

Scripted like ``test_agent_runs`` (the fake provider's ``/_script``, matched by a tag in each
agent's system prompt). Forged writes are produced straight to ``agent-writes`` with the
worker's Kafka credentials, as a compromised worker could.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from analytics.client import ClickHouse
from nova.domain.agents import agent_write_id
from nova.kafka.producer import RecordProducer
from nova.llm.fake_server import FakeServerThread
from nova.records import AgentWrite, AuditFact, now_ms
from tests.integration.conftest import Gateway, SessionBroker, WorkerProcess, eventually
from tests.integration.live_helpers import live_stack
from tests.integration.pipeline_checks import read_records
from tests.integration.test_agent_runs import (
    agent_of,
    identity,
    run,
    script,
    thread_with,
    tool_facts,
    word,
)

pytestmark = pytest.mark.integration

TOOLS = ["read_thread", "append_thread"]


@pytest.fixture(scope="module")
async def stack(broker: SessionBroker, clickhouse: ClickHouse, fake_llm: FakeServerThread,
                tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[tuple[Gateway, WorkerProcess]]:
    async with live_stack(broker, clickhouse, tmp_path_factory.mktemp("writes") / "data",
                          fake_llm, default_wait_ms=60_000) as running:
        yield running


@pytest.fixture
async def as_worker(stack: tuple[Gateway, WorkerProcess]) -> AsyncIterator[RecordProducer]:
    """A producer logged in as the worker (who may write ``agent-writes``, never ``entities``)."""
    producer = RecordProducer(stack[0].settings.as_client("worker"))
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def append(thread: str, text: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "append_thread",
                            "arguments": {"thread_id": thread, "text": text}}]}


async def messages(gw: Gateway, owner: str, thread: str) -> list[dict[str, Any]]:
    r = await gw.http.get(f"/api/v2/threads/{thread}", headers=gw.auth(owner))
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["messages"]
    return found


async def messages_until(gw: Gateway, owner: str, thread: str, count: int
                         ) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        found = await messages(gw, owner, thread)
        return found if len(found) >= count else None

    got: list[dict[str, Any]] = await eventually(enough, 60, message=f"{count} messages")
    return got


async def refusals(gw: Gateway, write_id: str) -> list[dict[str, Any]]:
    async def found() -> list[dict[str, Any]] | None:
        facts = [json.loads(f.detail) for f in await read_records(gw.settings, "facts", AuditFact)
                 if f.kind == "AGENT_WRITE_REFUSED"]
        mine = [f for f in facts if f["write_id"] == write_id]
        return mine or None

    got: list[dict[str, Any]] = await eventually(found, 60, message="the refusal fact")
    return got


def forged(write_id: str, **fields: Any) -> AgentWrite:
    return AgentWrite.model_validate({"write_id": write_id, "request_id": f"forged-{write_id}",
                                      "kind": "thread_message", "ts": now_ms(), **fields})


async def test_an_agent_appends_to_its_identity_s_thread_and_a_redelivery_is_applied_once(
    stack: tuple[Gateway, WorkerProcess], fake_llm: FakeServerThread,
    as_worker: RecordProducer,
) -> None:
    gw, me, tag = stack[0], identity(), uuid.uuid4().hex
    tid = await thread_with(gw, me, "the first message")
    agent = await agent_of(gw, me, tag, tools=TOOLS)
    note = f"agent note {word()}"
    script(fake_llm, tag, append(tid, note), {"text": f"Done {tag[:6]}."})

    answer = await run(gw, me, agent, prompt="Add a note to my thread")
    assert (answer["status"], answer["result"]) == ("completed", f"Done {tag[:6]}."), answer
    rid = answer["request_id"]
    bodies = fake_llm.state.bodies_for(rid)
    assert any(f"appended to the thread {tid}" in s for s in bodies[1].strings())
    facts = await tool_facts(gw, rid, 1)
    assert [(f["tool"], f["verdict"], f["governance"]) for f in facts] == [
        ("append_thread", "executed", "allow")]
    assert facts[0]["write_id"] == agent_write_id(rid, 1, 0)
    assert note not in json.dumps(facts)  # the audit holds the text's length only

    got = await messages_until(gw, me, tid, 2)
    assert [(m["author"], m["text"]) for m in got] == [
        ("user", "the first message"), (f"agent:{agent}", note)]

    # The same write again (a replayed run, a redelivery), then a second one behind it on the
    # same key: once the second is applied, the first copy was handled, and wrote nothing.
    (written,) = [w for w in await read_records(gw.settings, "agent-writes", AgentWrite)
                  if w.request_id == rid]
    await as_worker.send("agent-writes", rid, written)
    later = written.model_copy(update={"write_id": agent_write_id(rid, 9, 0), "text": "later",
                                       "ts": written.ts + 1})  # listed after it
    await as_worker.send("agent-writes", rid, later)
    got = await messages_until(gw, me, tid, 3)
    assert [m["text"] for m in got] == ["the first message", note, "later"]


async def test_a_forged_write_for_another_identity_s_thread_is_refused_and_audited(
    stack: tuple[Gateway, WorkerProcess], as_worker: RecordProducer,
) -> None:
    gw, me, other, tag = stack[0], identity(), identity(), uuid.uuid4().hex
    theirs = await thread_with(gw, other, "their message")
    agent = await agent_of(gw, me, tag, tools=TOOLS)
    crossing = forged(uuid.uuid4().hex, identity_id=me, agent_id=agent, parent_id=theirs,
                      text="planted")
    posing = forged(uuid.uuid4().hex, identity_id=other, agent_id=agent, parent_id=theirs,
                    text="planted")  # claims to act for the owner, with an agent not theirs
    await as_worker.send("agent-writes", crossing.request_id, crossing)
    await as_worker.send("agent-writes", posing.request_id, posing)

    (refused,) = await refusals(gw, crossing.write_id)
    assert (refused["reason"], refused["parent_id"], refused["agent_id"]) == (
        "no such thread of this identity", theirs, agent)
    assert "planted" not in json.dumps(refused)
    (refused,) = await refusals(gw, posing.write_id)
    assert refused["reason"] == "the agent is not available to this identity"
    assert [m["text"] for m in await messages(gw, other, theirs)] == ["their message"]


async def test_an_agent_s_write_on_another_identity_s_thread_is_denied_by_governance(
    stack: tuple[Gateway, WorkerProcess], fake_llm: FakeServerThread,
) -> None:
    gw, me, other, tag = stack[0], identity(), identity(), uuid.uuid4().hex
    theirs = await thread_with(gw, other, "their message")
    agent = await agent_of(gw, me, tag, tools=TOOLS)
    script(fake_llm, tag, append(theirs, "planted"), {"text": "I could not write there."})

    answer = await run(gw, me, agent, prompt="Add a note to that thread")
    assert (answer["status"], answer["result"]) == ("completed", "I could not write there.")
    rid = answer["request_id"]
    sent = [s for b in fake_llm.state.bodies_for(rid) for s in b.strings()]
    assert any("refused by governance" in s and "IDENTITY_BOUNDARY" in s for s in sent)
    facts = await tool_facts(gw, rid, 1)
    assert [(f["tool"], f["verdict"], f["governance"]) for f in facts] == [
        ("append_thread", "denied", "deny")]
    assert "write_id" not in facts[0]
    assert not [w for w in await read_records(gw.settings, "agent-writes", AgentWrite)
                if w.request_id == rid]
    assert [m["text"] for m in await messages(gw, other, theirs)] == ["their message"]
