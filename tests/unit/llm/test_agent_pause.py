"""An agent run's pause survives the record's JSON unchanged (the resumed run is the run that
stopped), and shows its held call to an approver with the prompt's values restored."""

from __future__ import annotations

from dataclasses import replace

from nova.domain.masking import Mask
from nova.llm.agent_pause import AgentPause, HeldDecision
from nova.llm.clients import Completion
from nova.llm.executor import Attempt
from nova.llm.tools import ToolCall, ToolResult, Turn
from nova.records import CheckpointState

READ = ToolCall("c0", "read_thread", {"thread_id": "t1"})
SEND = ToolCall("c1", "send_message", {"to": "[EMAIL_1]", "text": "hi [EMAIL_1]", "n": 2})
PAUSE = AgentPause(
    agent_id="ag", checkpoint_id="cp_x", step=2, system="You are an agent.",
    turns=(Turn("user", "tell bob"), Turn("assistant", "", calls=(READ,)),
           Turn("tool", results=(ToolResult("c0", "notes", is_error=False),))),
    text="I will write.", calls=(READ, SEND), results=(ToolResult("c0", "refused", True),),
    index=1, attempts=(Attempt("r", 1, "anthropic", "m", None, "ok", tokens_in=3),
                       Attempt("r", 2, "openai", "g", "anthropic", "error", error="503")),
    cost_usd=0.25, last=Completion("I will write.", 10, 2, 0, 4.5, "anthropic", "m",
                                   tool_calls=(READ, SEND)),
    decision=HeldDecision("require_approval", ("CHECKPOINT_ACTION",), ("SEND",), "SEND", 2),
    request_checkpoint=CheckpointState(checkpoint_id="cp_r", reason="PAY", status="approved",
                                       created_at=1, expires_at=2, approvals=("u-b",)))


def test_a_pause_reads_back_as_it_was_written() -> None:
    back = AgentPause.from_json(PAUSE.to_json())
    # the last completion's calls are kept once, in ``calls``
    assert back == replace(PAUSE, last=Completion("I will write.", 10, 2, 0, 4.5, "anthropic",
                                                  "m"))
    assert back.call == SEND
    bare = replace(PAUSE, last=None, request_checkpoint=None)
    assert AgentPause.from_json(bare.to_json()) == bare


def test_an_approver_reads_the_held_call_with_the_prompt_s_values() -> None:
    masks = (Mask("[EMAIL_1]", "email", "bob@example.com", "bob@example.com"),)
    assert PAUSE.describe(masks) == {"agent_id": "ag", "step": 2, "tool": "send_message",
                                     "action": "SEND",
                                     "arguments": {"to": "bob@example.com",
                                                   "text": "hi bob@example.com", "n": 2}}
    assert PAUSE.describe()["arguments"]["to"] == "[EMAIL_1]"
