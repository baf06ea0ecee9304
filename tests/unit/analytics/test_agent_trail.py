"""``nova replay --request`` shows an agent run step by step, from the records alone: each
step's model call (provider, model, tokens, cost), each tool call with its action type, its
arguments shortened and its governance outcome (allowed, refused with the reason, held at its
checkpoint and then approved, rejected or expired), and last the answer or why the run
stopped. A request that ran no agent prints as before.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rich.console import Console

from analytics.agent_trail import agent_lines, agent_run
from analytics.replay import Trail, render_trail
from nova.audit.facts import fact
from nova.domain.agents import recorded_arguments
from nova.domain.checkpoints import checkpoint_id_for
from nova.llm.agent_pause import AgentPause, HeldDecision
from nova.llm.tools import ToolCall, Turn
from nova.records import (
    AuditRecord,
    CheckpointDecisionRecord,
    Event,
    Execution,
    LlmCall,
    PipelineRecord,
)
from streams.lanes.lane_f_execution import ExecutionLane
from tests.unit.streams.test_agent_pause_resume import Ctx, decided, held_run, request, service

RID = "r-7"
AGENT = "ag-7"
CP = checkpoint_id_for(RID, "tool/1/0")
SEND = ToolCall("c-1", "send_message", {"to": "bob@example.com",
                                        "text": "The weekly report is ready for you to read"})


def record(**changes: Any) -> PipelineRecord:
    base = PipelineRecord(request_id=RID, identity_id="alice", user_id="u-alice",
                          submitted_at=0, prompt="Send bob the report", agent_id=AGENT)
    return base.model_copy(update=changes)


def attempt(n: int, status: str = "ok", provider: str = "anthropic", **changes: Any) -> Event:
    call = LlmCall(provider=provider, model=f"{provider}-model", tokens_in=100 * n,
                   tokens_out=10 * n, cost_usd=0.001 * n, latency_ms=5.0, attempt=n,
                   status=status, **changes)
    return Event(event_id=f"{RID}/llm/{n}", kind="llm", request_id=RID, identity_id="alice",
                 ts=n, llm=call)


def tool_fact(step: int, index: int, tool: str, verdict: str, *, suffix: str | None = None,
              args: Mapping[str, Any] | None = None, **detail: Any) -> AuditRecord:
    body = {"agent_id": AGENT, "step": step, "index": index, "tool": tool,
            "arguments": recorded_arguments(args or {}), "verdict": verdict, **detail}
    f = fact("AGENT_TOOL_CALL", "alice", body, request_id=RID, actor="u-alice",
             suffix=suffix or f"{step}/{index}")
    return audit_of(f.fact_id, f.kind, f.detail)


def audit_of(audit_id: str, kind: str, detail: str) -> AuditRecord:
    return AuditRecord(audit_id=audit_id, kind=kind, request_id=RID, identity_id="alice",
                       ts=0, detail=detail, prev_hash="0" * 64, hash="1" * 64)


def answered(text: str, **changes: Any) -> PipelineRecord:
    return record(status="completed", execution=Execution(provider="anthropic",
                                                          model="anthropic-model", text=text),
                  **changes)


def paused_at_send(step: int = 1, before: tuple[Turn, ...] = ()) -> PipelineRecord:
    pause = AgentPause(agent_id=AGENT, checkpoint_id=CP, step=step, system="", turns=before,
                       text="", calls=(SEND,), results=(), index=0, attempts=(), cost_usd=0.0,
                       last=None, decision=HeldDecision("require_approval", (), ("SEND",),
                                                        "approval required"))
    return record(status="held", agent_pause=pause.to_json())


def lines(**parts: Any) -> list[str]:
    run = agent_run(parts.get("submitted", record()), parts.get("llm", ()),
                    parts.get("pending", ()), parts.get("decisions", ()), parts.get("final"),
                    [(0, i, a) for i, a in enumerate(parts.get("audit", ()))])
    assert run is not None
    return agent_lines(run)


def test_each_step_shows_its_model_call_then_its_tool_calls_then_the_answer() -> None:
    out = lines(llm=[attempt(1), attempt(2)],
                audit=[tool_fact(1, 0, "read_thread", "executed", governance="allow",
                                 action="READ", args={"thread_id": "th-42"})],
                final=answered("The launch moved to Thursday."))
    assert out == [
        f"Agent run: agent {AGENT}, 2 steps",
        "step 1  model anthropic/anthropic-model  tokens 100 in / 10 out  $0.001000",
        "        tool read_thread (READ)  thread_id='th-42'",
        "          allowed",
        "step 2  model anthropic/anthropic-model  tokens 200 in / 20 out  $0.002000",
        "answer: 'The launch moved to Thursday.'",
    ]


def test_a_held_send_shows_its_checkpoint_who_approved_it_and_its_arguments_shortened() -> None:
    out = lines(llm=[attempt(1), attempt(2)], pending=[paused_at_send()],
                audit=[tool_fact(1, 0, "send_message", "held", action="SEND", args=SEND.arguments,
                                 checkpoint_id=CP, decided_by=None),
                       tool_fact(1, 0, "send_message", "executed", action="SEND",
                                 args=SEND.arguments, suffix="1/0/approved", checkpoint_id=CP,
                                 decided_by="u-boss")],
                final=answered("Sent."))
    assert out[2:4] == [
        "        tool send_message (SEND)  text='The weekly report is ready for you to r…' "
        "to='bob@example.com'",
        f"          held at checkpoint {CP}, then approved by u-boss: made",
    ]
    assert out[-1] == "answer: 'Sent.'"


def test_the_audit_fact_keeps_what_a_call_names_and_only_the_length_of_what_it_writes() -> None:
    assert recorded_arguments(SEND.arguments) == {"to": "bob@example.com", "text": "<42 chars>"}
    out = lines(llm=[attempt(1)],  # no paused record to read the call from: the fact alone
                audit=[tool_fact(1, 0, "send_message", "held", action="SEND",
                                 args=SEND.arguments, checkpoint_id=CP)])
    assert out[2] == "        tool send_message (SEND)  text=<42 chars> to='bob@example.com'"
    assert out[3] == f"          held at checkpoint {CP}, waiting for a decision"
    assert out[-1] == f"paused: waiting at checkpoint {CP}"


def test_an_http_call_made_shows_its_status_and_length_and_its_url_without_the_query() -> None:
    call = {"method": "POST", "url": "https://user:pw@api.example.com/v1/hook?token=abc",
            "body": {"n": 1}}
    assert recorded_arguments(call) == {"method": "POST", "url": "https://api.example.com/v1/hook?…",
                                        "body": "<8 chars>"}
    http = {"url": "https://api.example.com/v1/hook", "status": 200, "bytes": 17,
            "truncated": False, "error": None, "withheld": False}
    out = lines(llm=[attempt(1), attempt(2)],
                audit=[tool_fact(1, 0, "http_call", "held", action="SEND", args=call,
                                 checkpoint_id=CP),
                       tool_fact(1, 0, "http_call", "executed", action="SEND", args=call,
                                 suffix="1/0/approved", checkpoint_id=CP, decided_by="u-boss",
                                 http=http)],
                final=answered("Done."))
    assert out[3] == (f"          held at checkpoint {CP}, then approved by u-boss: made "
                      "(HTTP 200, 17 bytes)")


def test_refusals_rejections_and_expiries_say_why() -> None:
    cp2 = checkpoint_id_for(RID, "tool/2/0")
    out = lines(
        llm=[attempt(1), attempt(2), attempt(3), attempt(4)],
        decisions=[CheckpointDecisionRecord(checkpoint_id=CP, request_id=RID,
                                            identity_id="alice", decision="reject",
                                            actor="u-boss", reason="not to bob", decided_at=1)],
        audit=[
            tool_fact(1, 0, "send_message", "held", checkpoint_id=CP),
            tool_fact(1, 1, "read_thread", "denied", governance="deny",
                      reasons=["IDENTITY_BOUNDARY: thread of another identity"],
                      refusal="refused by governance: IDENTITY_BOUNDARY: thread of another "
                              "identity", args={"thread_id": "th-9"}),
            tool_fact(1, 0, "send_message", "rejected", suffix="1/0/rejected", checkpoint_id=CP,
                      decided_by="u-boss"),
            tool_fact(2, 0, "send_message", "held", checkpoint_id=cp2),
            tool_fact(2, 0, "send_message", "expired", suffix="2/0/expired", checkpoint_id=cp2),
            tool_fact(3, 0, "http_call", "refused",
                      refusal="refused: the URL's host is not on this agent's allow list"),
        ],
        final=answered("I could not do it."))
    outcomes = [line.strip() for line in out if not line.lstrip().startswith(("step", "tool"))]
    assert outcomes[1:-1] == [
        f"held at checkpoint {CP}, then rejected by u-boss (not to bob): not made",
        "refused by governance: IDENTITY_BOUNDARY: thread of another identity",
        f"held at checkpoint {cp2}, then expired (nobody decided in time): not made",
        "refused: the URL's host is not on this agent's allow list",
    ]
    assert "        tool http_call (SEND)  (no arguments)" in out, "the action from the catalogue"


def test_the_step_limit_and_the_cost_limit_are_the_stop_reason() -> None:
    for error in ("agent step limit: 3 model calls without an answer (0.000300 USD spent)",
                  "agent cost limit: 0.000300 of 1e-06 USD spent after 1 model calls, without "
                  "an answer"):
        out = lines(llm=[attempt(1)], final=record(status="failed", error=error))
        assert out[-1] == f"stopped: {error}"
    out = lines(llm=[attempt(1, "error", error="503 overloaded")],
                final=record(status="failed", error="every candidate failed; last: 503"))
    assert out[-1] == "ended failed: every candidate failed; last: 503"


def test_a_step_is_its_attempts_up_to_the_first_that_answered() -> None:
    out = lines(llm=[attempt(1, "error", error="503 overloaded"),
                     attempt(2, provider="openai", fallback_from="anthropic"), attempt(3),
                     attempt(3)],  # an event written again after a crash: once
                final=answered("ok"))
    assert out == [
        f"Agent run: agent {AGENT}, 2 steps",
        "step 1  model anthropic/anthropic-model  tokens 100 in / 10 out  $0.001000  error: "
        "503 overloaded",
        "        model openai/openai-model  tokens 200 in / 20 out  $0.002000  (fallback from "
        "anthropic)",
        "step 2  model anthropic/anthropic-model  tokens 300 in / 30 out  $0.003000",
        "answer: 'ok'",
    ]


def test_each_model_call_shows_the_stop_reason_its_agent_step_fact_keeps() -> None:
    def step(n: int, attempt_n: int, stop: str | None) -> AuditRecord:
        f = fact("AGENT_STEP", "alice", {"agent_id": AGENT, "step": n, "attempt": attempt_n,
                                         "stop_reason": stop}, request_id=RID,
                 suffix=f"{n}/{attempt_n}")
        return audit_of(f.fact_id, f.kind, f.detail)

    out = lines(llm=[attempt(1, "error", error="503"), attempt(2), attempt(3)],
                audit=[step(1, 1, None), step(1, 2, "tool_use"), step(2, 3, "max_tokens")],
                final=answered("cut"))
    assert [line.rsplit("  ", 1)[-1] for line in out[1:4]] == [
        "error: 503", "stop tool_use", "stop max_tokens"]


def test_facts_written_before_they_carried_their_place_and_arguments_still_show() -> None:
    old = fact("AGENT_TOOL_CALL", "alice", {"agent_id": AGENT, "step": 1, "tool": "read_thread",
                                            "verdict": "executed", "governance": "allow"},
               request_id=RID, suffix="1/0")
    record_of = audit_of(old.fact_id, old.kind, old.detail)
    out = lines(llm=[attempt(1), attempt(2)], audit=[record_of, record_of],
                final=answered("done"))
    assert out[2:4] == ["        tool read_thread (READ)  (arguments not recorded)",
                        "          allowed"]
    assert len(out) == 6, "a fact appended again after a crash shows once"


def test_a_request_that_ran_no_agent_has_no_run_and_prints_as_before() -> None:
    plain = answered("hi", agent_id=None)
    assert agent_run(record(agent_id=None), [attempt(1)], (), (), plain, ()) is None
    trail = Trail(RID, submitted=record(agent_id=None), llm_events=[attempt(1)],
                  completed=[plain])
    assert "Agent run" not in printed(trail)


def printed(trail: Trail) -> str:
    console = Console(file=io.StringIO(), width=100, record=True)
    render_trail(trail, console)
    return console.export_text()


def test_the_trail_prints_the_run_last_and_reads_no_markup_in_what_the_model_wrote() -> None:
    send = ToolCall("c-2", "send_message", {"to": "[IBAN_1]", "text": "[bold]pay[/bold]"})
    pause = AgentPause.from_json(paused_at_send().agent_pause or "")
    paused = record(status="held", agent_pause=replace(pause, calls=(send,)).to_json())
    trail = Trail(RID, submitted=record(), llm_events=[attempt(1)], pending=[paused],
                  audit=[(0, 0, tool_fact(1, 0, "send_message", "held", checkpoint_id=CP))])
    text = printed(trail)
    assert text.index("Audit records") < text.index(f"Agent run: agent {AGENT}, 1 step")
    assert "text='[bold]pay[/bold]' to='[IBAN_1]'" in text


async def test_the_run_reads_back_from_the_records_lane_f_wrote() -> None:
    """A real run (lane F and lane E without Kafka): held at its send, approved, answered."""
    ctx = Ctx(service()[0])
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    ctx.emit = emit  # type: ignore[method-assign]
    held = await held_run(ctx)
    back = await decided(ctx, held, "approve")
    final = (await ExecutionLane().process(back, ctx.lane)).record
    audit = [(0, i, audit_of(f.fact_id, f.kind, f.detail)) for i, f in enumerate(ctx.facts)]
    run = agent_run(held, events, [held], (), final, audit)
    assert run is not None
    out = agent_lines(run)
    assert held.checkpoint is not None
    cp = held.checkpoint.checkpoint_id
    assert [line.strip().split("  ")[0] for line in out] == [
        "Agent run: agent ag-1, 2 steps", "step 1", "tool send_message (SEND)",
        f"held at checkpoint {cp}, then approved by u-boss: made", "step 2", "answer: 'All done.'"]
    assert "text='ship it' to='bob@example.com'" in out[2]
    assert out[1].endswith("  stop tool_use")
    assert out[4].endswith("  stop end_turn")

    steps = [json.loads(f.detail) for f in ctx.facts if f.kind == "AGENT_STEP"]
    assert [(s["step"], s["attempt"], s["status"], s["stop_reason"], s["tool_calls"])
            for s in steps] == [(1, 1, "ok", "tool_use", 1), (2, 2, "ok", "end_turn", 0)]
    assert all((s["tokens_in"], s["tokens_out"], s["agent_id"]) == (10, 5, "ag-1")
               and s["provider"] and s["model"] and s["cost_usd"] >= 0 for s in steps)
    said = json.dumps(steps)
    assert "All done" not in said, "no content in the chain"
    assert "ship it" not in said
    ids = {f.fact_id for f in ctx.facts if f.kind == "AGENT_STEP"}
    assert ids == {"r-1/AGENT_STEP/1/1", "r-1/AGENT_STEP/2/2"}
    for copy in (request(), back):  # delivered again: the same facts again, none added
        await ExecutionLane().process(copy, ctx.lane)
    assert {f.fact_id for f in ctx.facts if f.kind == "AGENT_STEP"} == ids
    assert json.loads(next(f.detail for f in ctx.facts if f.kind == "AGENT_TOOL_CALL"))[
        "arguments"] == {"to": "bob@example.com", "text": "<7 chars>"}
