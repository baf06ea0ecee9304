"""Agent runs on the real broker: lane F runs an agent's loop (model call, governed tool calls,
next call) against the fake provider's scripted tool calls, in both SDKs' formats.

One module stack (gateway, worker, sink); each test has its own identities and a script
matched by a tag in its agent's system prompt, so tests stay apart on the shared fake server.
One test reads a run back with ``nova replay --request``, as an operator does; the last runs
``nova demo``'s agent scenario on the same stack.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from analytics.client import ClickHouse
from analytics.replay import Trail, request_trail
from nova.cli.demo import AGENT_ANSWER, agent_scenario
from nova.llm.fake_server import FakeServerThread
from nova.records import AuditFact, CheckpointDecisionRecord
from tests.integration.conftest import Gateway, SessionBroker, WorkerProcess, eventually
from tests.integration.live_helpers import live_stack
from tests.integration.pipeline_checks import read_records
from tests.integration.test_identity_boundary import boundary_facts

pytestmark = pytest.mark.integration

REQUESTS = "/api/v2/nova/requests"
REPO = Path(__file__).resolve().parents[2]


class Endpoint(ThreadingHTTPServer):
    """An allow-listed endpoint on loopback for agents' ``http_call``: answers every GET 200
    with a small JSON body and counts the calls per path."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Counted)
        self.calls: Counter[str] = Counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Counted(BaseHTTPRequestHandler):
    server: Endpoint

    def do_GET(self) -> None:
        self.server.calls[self.path] += 1
        body = json.dumps({"build": "green", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
async def stack(broker: SessionBroker, clickhouse: ClickHouse, fake_llm: FakeServerThread,
                endpoint: Endpoint, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[tuple[Gateway, WorkerProcess]]:
    async with live_stack(broker, clickhouse, tmp_path_factory.mktemp("agents") / "data",
                          fake_llm, run_sink=True, sink_flush_interval_s=0.2,
                          default_wait_ms=60_000,
                          agent_http_allow=f"{endpoint.url}/api") as running:
        yield running


def identity() -> str:
    return f"ar-{uuid.uuid4().hex[:10]}"


def word() -> str:
    """A unique word of letters only: no masking (a phone number, say) can touch it."""
    return "".join(chr(97 + b % 26) for b in uuid.uuid4().bytes[:8])


def script(fake: FakeServerThread, match: str, *steps: dict[str, Any],
           repeat_last: bool = False) -> None:
    httpx.post(f"{fake.url}/_script", json={"match": match, "steps": list(steps),
                                            "repeat_last": repeat_last},
               timeout=10).raise_for_status()


def read(thread: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "read_thread", "arguments": {"thread_id": thread}}]}


async def thread_with(gw: Gateway, owner: str, text: str) -> str:
    r = await gw.http.post("/api/v2/threads", headers=gw.auth(owner), json={"title": "notes"})
    assert r.status_code == 201, r.text
    tid = str(r.json()["id"])
    r = await gw.http.post(f"/api/v2/threads/{tid}/messages", headers=gw.auth(owner),
                           json={"text": text})
    assert r.status_code == 201, r.text
    return tid


async def agent_of(gw: Gateway, owner: str, tag: str, **body: Any) -> str:
    r = await gw.http.post("/api/v2/agents", headers=gw.auth(owner), json={
        "name": "Reader", "role": "orchestrator", "tools": ["read_thread"],
        "system_prompt": f"You are agent {tag}.", **body})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def run(gw: Gateway, who: str, agent: str, prompt: str = "Summarise my notes thread"
              ) -> dict[str, Any]:
    r = await gw.http.post(REQUESTS, headers=gw.auth(who),
                           json={"prompt": prompt, "agent_id": agent, "wait_ms": 60_000})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def tool_facts(gw: Gateway, rid: str, count: int) -> list[dict[str, Any]]:
    async def found() -> list[dict[str, Any]] | None:
        facts = [json.loads(f.detail) for f in await read_records(gw.settings, "facts", AuditFact)
                 if f.kind == "AGENT_TOOL_CALL" and f.request_id == rid]
        return facts if len(facts) >= count else None

    got: list[dict[str, Any]] = await eventually(found, 60, message="the tool-call facts")
    return sorted(got, key=lambda f: f["step"])


async def llm_rows(gw: Gateway, rid: str, count: int) -> list[dict[str, Any]]:
    ch = gw.clickhouse

    async def rows() -> list[dict[str, Any]] | None:
        found = await ch.arows(
            f"SELECT attempt, provider, status FROM {ch.database}.llm_calls FINAL "  # noqa: S608
            "WHERE request_id = %(rid)s ORDER BY attempt", {"rid": rid})
        return found if len(found) >= count else None

    got: list[dict[str, Any]] = await eventually(rows, 60, message="the llm_calls rows")
    return got


async def approved_and_delivered_twice(gw: Gateway, cp: str, rid: str, boss: dict[str, str],
                                       body: dict[str, str]) -> None:
    """An approver approves checkpoint ``cp``; its decision then reaches lane E a second time."""
    r = await gw.http.post(f"/api/v2/governance/checkpoints/{cp}/approve", headers=boss,
                           json=body)
    assert (r.status_code, r.json()["status"]) == (200, "approved"), r.text
    decision = next(d for d in await read_records(gw.settings, "decisions",
                                                  CheckpointDecisionRecord)
                    if d.checkpoint_id == cp)
    await gw.services.producer.send("decisions", rid, decision)  # delivered twice


@pytest.mark.parametrize(("role", "provider", "path"), [
    ("orchestrator", "anthropic", "/messages"), ("analyst", "openai", "/chat/completions")])
async def test_an_agent_reads_its_identity_s_thread_and_answers(
    stack: tuple[Gateway, WorkerProcess], fake_llm: FakeServerThread, role: str, provider: str,
    path: str,
) -> None:
    gw, me, tag = stack[0], identity(), uuid.uuid4().hex
    secret_fact = f"the launch moved to Thursday {word()}"
    tid = await thread_with(gw, me, secret_fact)
    agent = await agent_of(gw, me, tag, role=role)
    script(fake_llm, tag, read(tid), {"text": f"Summary {tag[:6]}: the launch is on Thursday."})

    answer = await run(gw, me, agent)
    assert answer["status"] == "completed", answer
    assert answer["result"] == f"Summary {tag[:6]}: the launch is on Thursday."
    rid = answer["request_id"]
    bodies = fake_llm.state.bodies_for(rid)
    assert len(bodies) == 2
    assert all(path in b.path and b.provider == provider for b in bodies)
    assert all(b.body["tools"] for b in bodies)  # the agent's tools were offered each step
    assert not any(secret_fact in s for s in bodies[0].strings())
    assert any(secret_fact in s for s in bodies[1].strings())  # the tool's result, step 2
    assert any(f"You are agent {tag}." in s for s in bodies[0].strings())

    facts = await tool_facts(gw, rid, 1)
    assert [(f["tool"], f["verdict"], f["governance"], f["agent_id"]) for f in facts] == [
        ("read_thread", "executed", "allow", agent)]
    rows = await llm_rows(gw, rid, 2)
    assert [(r["attempt"], r["provider"], r["status"]) for r in rows] == [
        (1, provider, "ok"), (2, provider, "ok")]


async def test_a_tool_call_on_another_identity_s_thread_is_refused_and_audited(
    stack: tuple[Gateway, WorkerProcess], fake_llm: FakeServerThread,
) -> None:
    gw, me, other, tag = stack[0], identity(), identity(), uuid.uuid4().hex
    private = f"salary of the other identity {word()}"
    foreign = await thread_with(gw, other, private)
    agent = await agent_of(gw, me, tag)
    script(fake_llm, tag, read(foreign), {"text": "I could not read that thread."})

    answer = await run(gw, me, agent)
    assert (answer["status"], answer["result"]) == ("completed", "I could not read that thread.")
    rid = answer["request_id"]
    sent = [s for b in fake_llm.state.bodies_for(rid) for s in b.strings()]
    assert not any(private in s for s in sent)
    assert any("refused by governance" in s and "IDENTITY_BOUNDARY" in s for s in sent)
    facts = await tool_facts(gw, rid, 1)
    assert [(f["tool"], f["verdict"], f["governance"]) for f in facts] == [
        ("read_thread", "denied", "deny")]
    crossings = await eventually(lambda: _crossings(gw, me), 60, message="a boundary fact")
    assert [c.alert.subject for c in crossings if c.alert] == [f"thread:{foreign}"]
    assert crossings[0].request_id == rid


async def _crossings(gw: Gateway, who: str) -> list[Any] | None:
    found = await boundary_facts(gw, who)
    return found or None


async def test_the_step_and_cost_limits_stop_a_looping_agent(
    stack: tuple[Gateway, WorkerProcess], fake_llm: FakeServerThread,
) -> None:
    gw, me, tag = stack[0], identity(), uuid.uuid4().hex
    tid = await thread_with(gw, me, "nothing new")
    stepped = await agent_of(gw, me, f"{tag}-s", max_steps=3)
    costly = await agent_of(gw, me, f"{tag}-c", max_steps=50, max_cost_usd=0.000001)
    for suffix in ("s", "c"):
        script(fake_llm, f"{tag}-{suffix}", read(tid), repeat_last=True)

    answer = await run(gw, me, stepped)
    assert answer["status"] == "failed", answer
    assert "agent step limit: 3 model calls" in answer["error"]
    assert len(fake_llm.state.bodies_for(answer["request_id"])) == 3
    assert len(await tool_facts(gw, answer["request_id"], 3)) == 3

    answer = await run(gw, me, costly)
    assert answer["status"] == "failed", answer
    assert "agent cost limit" in answer["error"]
    assert len(fake_llm.state.bodies_for(answer["request_id"])) == 1


def sends(tag: str, to: str, text: str, answer: str) -> tuple[dict[str, Any], ...]:
    return ({"tool_calls": [{"name": "send_message", "arguments": {"to": to, "text": text}}]},
            {"text": answer})


async def held_run(gw: Gateway, who: str, agent: str) -> dict[str, Any]:
    """Submit a run whose SEND pauses it: 423, held at the call's checkpoint."""
    r = await gw.http.post(REQUESTS, headers=gw.auth(who), json={
        "prompt": "Prepare the weekly report summary", "agent_id": agent, "wait_ms": 60_000})
    assert r.status_code == 423, r.text
    body: dict[str, Any] = r.json()
    return body


async def finished(gw: Gateway, who: str, rid: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        r = await gw.http.get(f"{REQUESTS}/{rid}", headers=gw.auth(who))
        body: dict[str, Any] = r.json()
        return body if r.status_code == 200 and body["status"] not in ("held", "in_flight",
                                                                       "accepted") else None

    got: dict[str, Any] = await eventually(done, 90, message=f"{rid} to finish")
    return got


async def facts_of(gw: Gateway, rid: str, kind: str) -> list[dict[str, Any]]:
    return [json.loads(f.detail) for f in await read_records(gw.settings, "facts", AuditFact)
            if f.kind == kind and f.request_id == rid]


async def test_a_send_waits_at_a_checkpoint_survives_a_sigkill_and_is_made_once_approved(
    stack: tuple[Gateway, WorkerProcess], fake_llm: FakeServerThread,
) -> None:
    """The run pauses at the send's own checkpoint (the approver of the identity sees the call,
    another identity's gets 403); the worker is killed while it waits and restarted; approved
    (and the decision delivered twice), the message is sent once and the run answers."""
    (gw, worker), me, tag = stack, identity(), uuid.uuid4().hex
    agent = await agent_of(gw, me, tag, tools=["send_message"])
    text = f"The report is ready {word()}"
    script(fake_llm, tag, *sends(tag, "bob@example.com", text, f"Sent {tag[:6]}."))

    held = await held_run(gw, me, agent)
    rid, cp = held["request_id"], held["checkpoint_id"]
    boss = gw.auth(me, "approver", sub=f"boss-{me}")
    url = f"/api/v2/governance/checkpoints/{cp}"
    r = await gw.http.get(url, headers=boss)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert (seen["status"], seen["request_id"]) == ("pending", rid)
    assert seen["agent_tool_call"] == {"agent_id": agent, "step": 1, "tool": "send_message",
                                       "action": "SEND",
                                       "arguments": {"to": "bob@example.com", "text": text}}
    assert any("CHECKPOINT_ACTION" in g for g in seen["governance_reasons"])
    stranger = gw.auth(identity(), "approver", "admin")
    for attempt in (gw.http.get(url, headers=stranger),
                    gw.http.post(f"{url}/approve", headers=stranger)):
        refused = await attempt
        assert refused.status_code == 403, refused.text
        assert text not in refused.text
    assert len(fake_llm.state.bodies_for(rid)) == 1, "the model waits with the run"

    worker.kill(signal.SIGKILL)
    worker.start()
    await approved_and_delivered_twice(gw, cp, rid, boss, {"reason": "go"})

    answer = await finished(gw, me, rid)
    assert (answer["status"], answer["result"]) == ("completed", f"Sent {tag[:6]}."), answer
    bodies = fake_llm.state.bodies_for(rid)
    assert len(bodies) == 2
    assert any("sent to bob@example.com" in s for s in bodies[1].strings())
    verdicts = [(f["verdict"], f.get("checkpoint_id"), f.get("decided_by"))
                for f in sorted(await tool_facts(gw, rid, 2), key=lambda f: f["verdict"])]
    assert verdicts == [("executed", cp, f"boss-{me}"), ("held", cp, None)]
    delivered = await facts_of(gw, rid, "AGENT_MESSAGE_SENT")
    # what was sent is proven (digest, length), never said: analysts read the audit chain
    assert [(d["to"], d["text_sha256"], d["text_chars"], d["approved_by"]) for d in delivered] == [
        ("bob@example.com", hashlib.sha256(text.encode()).hexdigest(), len(text), f"boss-{me}")]
    assert all("text" not in d for d in delivered)
    rows = await llm_rows(gw, rid, 2)
    assert [r["attempt"] for r in rows] == [1, 2], "llm events numbered on across the pause"


async def test_a_rejected_send_is_never_made_and_the_model_is_told(
    stack: tuple[Gateway, WorkerProcess], fake_llm: FakeServerThread,
) -> None:
    gw, me, tag = stack[0], identity(), uuid.uuid4().hex
    agent = await agent_of(gw, me, tag, tools=["send_message"])
    script(fake_llm, tag, *sends(tag, "bob@example.com", "The report", "I did not send it."))

    held = await held_run(gw, me, agent)
    r = await gw.http.post(f"/api/v2/governance/checkpoints/{held['checkpoint_id']}/reject",
                           headers=gw.auth(me, "approver", sub=f"boss-{me}"),
                           json={"reason": "not yet"})
    assert (r.status_code, r.json()["status"]) == (200, "rejected"), r.text

    answer = await finished(gw, me, held["request_id"])
    assert (answer["status"], answer["result"]) == ("completed", "I did not send it."), answer
    told = [s for s in fake_llm.state.bodies_for(held["request_id"])[1].strings()
            if "refused by a person" in s]
    assert len(told) == 1
    assert "not yet" in told[0]
    facts = await tool_facts(gw, held["request_id"], 2)
    assert sorted(f["verdict"] for f in facts) == ["held", "rejected"]
    assert await facts_of(gw, held["request_id"], "AGENT_MESSAGE_SENT") == []


def calls_url(url: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "http_call", "arguments": {"method": "GET", "url": url}}]}


async def test_an_http_call_is_held_approved_and_made_once_and_one_off_the_list_is_refused(
    stack: tuple[Gateway, WorkerProcess], fake_llm: FakeServerThread, endpoint: Endpoint,
) -> None:
    """The worker may call ``<endpoint>/api`` (NOVA_AGENT_HTTP_ALLOW). An agent's GET there
    waits at its checkpoint (nothing called yet), is approved (and the decision delivered
    twice), is made exactly once, and the model's next turn sees the status and the body; the
    audit keeps the status and length, never the body. A URL off the list is refused without
    a checkpoint, and the endpoint never hears of it."""
    gw, me, tag = stack[0], identity(), uuid.uuid4().hex
    agent = await agent_of(gw, me, tag, tools=["http_call"], allowed_hosts=["127.0.0.1"])
    path = f"/api/status/{tag}"
    script(fake_llm, tag, calls_url(f"{endpoint.url}{path}"), {"text": f"Green {tag[:6]}."})

    held = await held_run(gw, me, agent)
    rid, cp = held["request_id"], held["checkpoint_id"]
    assert endpoint.calls[path] == 0, "nothing is called before a person approves"
    url = f"/api/v2/governance/checkpoints/{cp}"
    boss = gw.auth(me, "approver", sub=f"boss-{me}")
    seen = (await gw.http.get(url, headers=boss)).json()
    assert seen["agent_tool_call"]["arguments"] == {"method": "GET",
                                                    "url": f"{endpoint.url}{path}"}
    await approved_and_delivered_twice(gw, cp, rid, boss, {})

    answer = await finished(gw, me, rid)
    assert (answer["status"], answer["result"]) == ("completed", f"Green {tag[:6]}."), answer
    assert endpoint.calls[path] == 1
    told = [s for s in fake_llm.state.bodies_for(rid)[1].strings() if "HTTP 200" in s]
    assert len(told) == 1
    assert '"build": "green"' in told[0]
    facts = sorted(await tool_facts(gw, rid, 2), key=lambda f: f["verdict"])
    assert [(f["verdict"], f.get("checkpoint_id")) for f in facts] == [
        ("executed", cp), ("held", cp)]
    made = facts[0]["http"]
    assert (made["url"], made["status"], made["error"]) == (f"{endpoint.url}{path}", 200, None)
    assert made["bytes"] > 0
    assert not any("green" in json.dumps(f) for f in facts), "no response content in the audit"

    other = uuid.uuid4().hex  # its own script: the fake server matches by a tag's substring
    prying = await agent_of(gw, me, other, tools=["http_call"], allowed_hosts=["127.0.0.1"])
    script(fake_llm, other, calls_url(f"{endpoint.url}/admin/{tag}"),
           {"text": f"Refused {tag[:6]}."})
    off = await run(gw, me, prying, "Check the admin page")
    assert (off["status"], off["result"]) == ("completed", f"Refused {tag[:6]}."), off
    assert off.get("checkpoint_id") is None
    refusal = [s for s in fake_llm.state.bodies_for(off["request_id"])[1].strings()
               if "refused" in s]
    assert any("not on this deployment's allow list" in s for s in refusal), refusal
    assert [f["verdict"] for f in await tool_facts(gw, off["request_id"], 1)] == ["refused"]
    assert endpoint.calls[f"/admin/{tag}"] == 0
    assert endpoint.calls[path] == 1, "still once"


async def chained(gw: Gateway, rid: str, calls: int, steps: int = 0) -> Trail | None:
    """The request's trail once lane G has appended its ``calls`` tool-call facts and its
    ``steps`` model-call facts to the audit chain and its outcome is on ``completed`` (what
    ``nova replay --request`` reads)."""
    trail = await request_trail(gw.settings.as_client("tools"), rid)
    facts = {a.audit_id for _, _, a in trail.audit if a.kind == "AGENT_TOOL_CALL"}
    made = {a.audit_id for _, _, a in trail.audit if a.kind == "AGENT_STEP"}
    return (trail if len(facts) >= calls and len(made) >= steps and trail.final is not None
            else None)


def nova(gw: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **gw.settings.to_env(), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "nova", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def test_nova_replay_shows_the_run_step_by_step_with_each_tool_call_s_outcome(
    stack: tuple[Gateway, WorkerProcess], fake_llm: FakeServerThread,
) -> None:
    """A run that reads a thread, asks to send a message (held at its checkpoint, approved,
    made) and answers: ``nova replay --request``, run as an operator runs it, prints after the
    trail each step's model call, each tool call with its arguments and governance outcome,
    and the answer, in that order; an unknown id is still its one line."""
    gw, me, tag = stack[0], identity(), uuid.uuid4().hex
    tid = await thread_with(gw, me, "the weekly report is due on Friday")
    agent = await agent_of(gw, me, tag, tools=["read_thread", "send_message"])
    script(fake_llm, tag, read(tid),
           *sends(tag, "bob@example.com", "The weekly report is ready", f"Sent {tag[:6]}."))

    held = await held_run(gw, me, agent)
    rid, cp = held["request_id"], held["checkpoint_id"]
    r = await gw.http.post(f"/api/v2/governance/checkpoints/{cp}/approve",
                           headers=gw.auth(me, "approver", sub=f"boss-{me}"), json={})
    assert (r.status_code, r.json()["status"]) == (200, "approved"), r.text
    answer = await finished(gw, me, rid)
    assert answer["status"] == "completed", answer
    trail_of = await eventually(lambda: chained(gw, rid, 3, steps=3), 60,
                                message="the run in the audit chain")

    replay = nova(gw, "replay", "--request", rid)
    assert replay.returncode == 0, replay.stderr
    out = replay.stdout
    steps = [
        f"Agent run: agent {agent}, 3 steps",
        "step 1  model anthropic/",
        f"tool read_thread (READ)  thread_id='{tid}'",
        "allowed",
        "step 2  model anthropic/",
        "tool send_message (SEND)  text='The weekly report is ready' to='bob@example.com'",
        f"held at checkpoint {cp}, then approved by boss-{me}: made",
        "step 3  model anthropic/",
        f"answer: 'Sent {tag[:6]}.'",
    ]
    assert out.index("Audit records") < out.index(steps[0]), "after the trail"
    at = [out.find(s, out.index(steps[0])) for s in steps]
    assert -1 not in at, (steps, out)
    assert at == sorted(at), out
    assert all(" in / " in line and "$" in line
               for line in out.splitlines() if "  model " in line), "tokens and cost"
    assert [line.rsplit("  stop ", 1)[-1] for line in out.splitlines()
            if "  model " in line] == ["tool_use", "tool_use", "end_turn"], out

    # each model call is a step of the audit chain: what it cost, never what it said
    model_calls = sorted(await facts_of(gw, rid, "AGENT_STEP"), key=lambda s: s["attempt"])
    assert [(s["step"], s["attempt"], s["provider"], s["status"], s["stop_reason"])
            for s in model_calls] == [(1, 1, "anthropic", "ok", "tool_use"),
                                (2, 2, "anthropic", "ok", "tool_use"),
                                (3, 3, "anthropic", "ok", "end_turn")]
    assert all(s["tokens_in"] > 0 and s["tokens_out"] > 0 and s["cost_usd"] >= 0
               and s["agent_id"] == agent for s in model_calls)
    assert "weekly report" not in json.dumps(model_calls), "no content in the chain"
    audit_steps = [a.audit_id for _, _, a in trail_of.audit if a.kind == "AGENT_STEP"]
    assert sorted(audit_steps) == [f"{rid}/AGENT_STEP/{n}/{n}" for n in (1, 2, 3)]

    unknown = nova(gw, "replay", "--request", f"no-such-{tag}")
    assert (unknown.returncode, unknown.stdout.strip()) == (
        1, f"no record of request no-such-{tag} on any topic")


async def test_the_demo_s_agent_scenario_runs_on_the_stack(
    stack: tuple[Gateway, WorkerProcess], fake_llm: FakeServerThread,
) -> None:
    """``nova demo``'s agent scenario as the demo runs it (its own agent, thread and script on
    this stack's gateway and fake server): held with a 423, seen by the approver, approved,
    answered, and printed step by step from Kafka."""
    gw, me = stack[0], identity()
    printed = io.StringIO()
    out = Console(file=printed, width=200, color_system=None)
    ids: list[str] = []
    ok = await agent_scenario(gw.http, gw.settings, gw.auth(me),
                              gw.auth(me, "approver", sub=f"boss-{me}"), out, ids, fake_llm.url)
    text = printed.getvalue()
    assert ok, text
    (rid,) = ids
    for said in ("423 Locked", "the approver sees step 2: send_message to bob@example.com",
                 f"approved → completed: {AGENT_ANSWER!r}",
                 f"`nova replay --request {rid}`", "tool read_thread (READ)",
                 "tool send_message (SEND)", f"answer: {AGENT_ANSWER!r}"):
        assert said in text, (said, text)
