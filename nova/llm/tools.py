"""A provider-neutral tool-calling conversation, and its two wire forms.

An agent's run (``streams.agent_run``) is a conversation of turns: the user's task, the
model's answers (text and tool calls), the results Nova gives back. It is kept neutral so a
fallback from Anthropic to an OpenAI-compatible provider mid-run carries the same history;
each client converts it to its SDK's form just before the call:

- Anthropic Messages: tools as ``{name, description, input_schema}``; a call is a
  ``tool_use`` content block of the assistant turn, a result a ``tool_result`` block of the
  next user turn (``tool_use_id``, ``is_error``).
- OpenAI Chat Completions: tools as ``{"type": "function", "function": {name, description,
  parameters}}``; calls are the assistant message's ``tool_calls`` (arguments as JSON text),
  each result a ``tool`` message with its ``tool_call_id``.

Arguments a model sends that are not a JSON object are kept as ``{"_raw": text}``, so the
tool refuses them with a reason the model can read instead of the run failing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from anthropic.types import MessageParam, ToolParam
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

Message = Mapping[str, str]  # as nova.llm.clients.Message, which imports this module


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: Mapping[str, Any]  # a JSON schema of an object


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class Turn:
    """A user's text, a model's answer (text and calls), or Nova's results to those calls."""

    role: Literal["user", "assistant", "tool"]
    text: str = ""
    calls: tuple[ToolCall, ...] = ()
    results: tuple[ToolResult, ...] = ()


@dataclass(frozen=True)
class Conversation:
    system: str
    turns: tuple[Turn, ...]
    tools: tuple[ToolSpec, ...]

    def then(self, *turns: Turn) -> Conversation:
        return Conversation(self.system, (*self.turns, *turns), self.tools)

    def flat(self) -> tuple[Message, ...]:
        """The conversation as plain messages: what token estimates are made from."""
        out: list[Message] = [{"role": "system", "content": self.system}] if self.system else []
        for t in self.turns:
            parts = [t.text, *(f"{c.name} {json.dumps(dict(c.arguments))}" for c in t.calls),
                     *(r.content for r in t.results)]
            out.append({"role": "assistant" if t.role == "assistant" else "user",
                        "content": "\n".join(p for p in parts if p)})
        return tuple(out)


def parse_arguments(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"_raw": text or ""}
    return value if isinstance(value, dict) else {"_raw": text or ""}


# -- Anthropic ---------------------------------------------------------------------------
def anthropic_tools(tools: Sequence[ToolSpec]) -> list[ToolParam]:
    return [{"name": t.name, "description": t.description,
             "input_schema": dict(t.parameters)} for t in tools]


def anthropic_turns(turns: Sequence[Turn]) -> list[MessageParam]:
    out: list[MessageParam] = []
    for t in turns:
        if t.role == "user":
            out.append({"role": "user", "content": t.text})
        elif t.role == "assistant":
            blocks: list[Any] = [{"type": "text", "text": t.text}] if t.text else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name,
                        "input": dict(c.arguments)} for c in t.calls]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": r.call_id, "content": r.content,
                 "is_error": r.is_error} for r in t.results]})
    return out


def anthropic_calls(content: Sequence[Any]) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(b.id, b.name, b.input if isinstance(b.input, dict) else
                          {"_raw": str(b.input)})
                 for b in content if b.type == "tool_use")


# -- OpenAI ------------------------------------------------------------------------------
def openai_tools(tools: Sequence[ToolSpec]) -> list[ChatCompletionToolParam]:
    return [{"type": "function", "function": {
        "name": t.name, "description": t.description, "parameters": dict(t.parameters)}}
        for t in tools]


def openai_turns(system: str, turns: Sequence[Turn]) -> list[ChatCompletionMessageParam]:
    out: list[ChatCompletionMessageParam] = [{"role": "system", "content": system}] if system \
        else []
    for t in turns:
        if t.role == "user":
            out.append({"role": "user", "content": t.text})
        elif t.role == "assistant":
            message: dict[str, Any] = {"role": "assistant", "content": t.text or None}
            if t.calls:
                message["tool_calls"] = [
                    {"id": c.id, "type": "function",
                     "function": {"name": c.name, "arguments": json.dumps(dict(c.arguments))}}
                    for c in t.calls]
            out.append(message)  # type: ignore[arg-type]
        else:
            for r in t.results:
                content = f"error: {r.content}" if r.is_error else r.content
                out.append({"role": "tool", "tool_call_id": r.call_id, "content": content})
    return out


def openai_calls(tool_calls: Sequence[Any] | None) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(c.id, c.function.name, parse_arguments(c.function.arguments))
                 for c in tool_calls or () if getattr(c, "type", "function") == "function")
