"""Tool calling through the real SDKs against the fake server's scripts, in both formats.

The fake server answers a conversation containing a script's match text with the script's
reply for its step (the assistant turns it already holds); the clients turn Nova's neutral
conversation into Anthropic ``tool_use`` / OpenAI function calling and the replies back.
"""

import uuid

import httpx
import pytest

from nova.llm.clients import ClientPool
from nova.llm.fake_server import FakeServerThread
from nova.llm.tools import Conversation, ToolResult, ToolSpec, Turn

READ = ToolSpec("read_thread", "Read one of the user's threads",
                {"type": "object", "properties": {"thread_id": {"type": "string"}},
                 "required": ["thread_id"]})


@pytest.fixture(scope="module")
def fake():
    with FakeServerThread() as server:
        yield server


@pytest.fixture
async def pool(fake):
    async with ClientPool.fake(fake.url, timeout_s=5.0) as pool:
        yield pool


def script(fake, match, *steps, repeat_last=False):
    with httpx.Client(base_url=fake.url) as client:
        client.post("/_script", json={"match": match, "steps": list(steps),
                                      "repeat_last": repeat_last}).raise_for_status()


@pytest.mark.parametrize(("provider", "model", "path"), [
    ("anthropic", "claude-sonnet-4-6", "/messages"),
    ("openai", "gpt-5-mini", "/chat/completions"),
])
async def test_a_scripted_tool_call_round_trips_in_each_format(fake, pool, provider, model,
                                                               path):
    tag = uuid.uuid4().hex
    script(fake, tag, {"tool_calls": [{"name": "read_thread", "arguments": {"thread_id": "t1"}}]},
           {"text": "The thread says hello."})
    conv = Conversation(f"You are agent {tag}.", (Turn("user", "Summarise thread t1"),), (READ,))
    rid = f"r-{tag}"

    first = await pool.converse(provider, model, conv, 256, rid)
    assert [(c.name, dict(c.arguments)) for c in first.tool_calls] == [
        ("read_thread", {"thread_id": "t1"})]
    call = first.tool_calls[0]
    again = await pool.converse(provider, model, conv, 256, rid)
    assert again.tool_calls == first.tool_calls  # deterministic, ids included

    conv = conv.then(Turn("assistant", first.text, calls=first.tool_calls),
                     Turn("tool", results=(ToolResult(call.id, "hello from t1"),)))
    second = await pool.converse(provider, model, conv, 256, rid)
    assert (second.text, second.tool_calls) == ("The thread says hello.", ())
    assert (first.stop_reason, second.stop_reason) == (
        ("tool_use", "end_turn") if provider == "anthropic" else ("tool_calls", "stop"))

    sent = [b.body for b in fake.state.bodies_for(rid)]
    assert len(sent) == 3
    assert all(b["model"] == model for b in sent)
    assert all(b["tools"] for b in sent)
    last = sent[-1]["messages"]
    if provider == "anthropic":
        assert sent[0]["tools"][0]["input_schema"]["required"] == ["thread_id"]
        assert last[1]["content"][0] == {"type": "tool_use", "id": call.id,
                                         "name": "read_thread", "input": {"thread_id": "t1"}}
        assert last[2]["content"][0]["type"] == "tool_result"
        assert last[2]["content"][0]["tool_use_id"] == call.id
        assert sent[0]["system"] == f"You are agent {tag}."
    else:
        assert sent[0]["tools"][0]["function"]["name"] == "read_thread"
        assert last[0] == {"role": "system", "content": f"You are agent {tag}."}
        assert last[2]["tool_calls"][0]["function"]["arguments"] == '{"thread_id": "t1"}'
        assert last[3] == {"role": "tool", "tool_call_id": call.id, "content": "hello from t1"}
    assert all(path in b.path for b in fake.state.bodies_for(rid))


async def test_repeat_last_loops_and_an_unscripted_conversation_echoes(fake, pool):
    tag = uuid.uuid4().hex
    script(fake, tag, {"tool_calls": [{"name": "read_thread", "arguments": {"thread_id": "x"}}]},
           repeat_last=True)
    conv = Conversation(tag, (Turn("user", "go"),), (READ,))
    for _ in range(3):
        reply = await pool.converse("openai", "gpt-5-mini", conv, 256, f"r-{tag}")
        assert [c.name for c in reply.tool_calls] == ["read_thread"]
        conv = conv.then(Turn("assistant", calls=reply.tool_calls),
                         Turn("tool", results=(ToolResult(reply.tool_calls[0].id, "no"),)))
    plain = await pool.converse("openai", "gpt-5-mini",
                                Conversation("other", (Turn("user", "hi there"),), (READ,)),
                                256, f"r2-{tag}")
    assert plain.tool_calls == ()
    assert "hi there" in plain.text
