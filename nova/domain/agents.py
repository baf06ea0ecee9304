"""Agents: the tools an agent may be given, each with its action type, and how the registry
finds and ranks agents.

Tools are Nova's own capabilities, never arbitrary code: reading the identity's threads,
meetings and dataspace items (READ), appending to a thread or a meeting's notes (WRITE),
sending a message (SEND) and an HTTP call to an allow-listed endpoint (SEND). The action type
is what governance judges a tool call by (``nova.domain.governance``), exactly as it judges a
request's intent: a SEND is held for a human whatever the model says about it.

Pure and free of I/O, so the registry's search and the tool catalogue are unit-tested directly
and the gateway (which validates agents) and lane F (which runs them) agree on both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, get_args
from urllib.parse import urlsplit

from nova.domain.kinds import Action
from nova.domain.textnorm import fold

ToolName = Literal[
    "read_thread",
    "read_meeting",
    "read_dataspace",
    "append_thread",
    "append_meeting_note",
    "send_message",
    "http_call",
]
TOOL_NAMES: Final[frozenset[str]] = frozenset(get_args(ToolName))

# The action each tool is governed as.
TOOL_ACTIONS: Final[Mapping[str, Action]] = MappingProxyType({
    "read_thread": "READ",
    "read_meeting": "READ",
    "read_dataspace": "READ",
    "append_thread": "WRITE",
    "append_meeting_note": "WRITE",
    "send_message": "SEND",
    "http_call": "SEND",
})

# The WRITE tools and the child entity each writes (``nova.records.AgentWrite.kind``).
WRITE_KINDS: Final[Mapping[str, Literal["thread_message", "meeting_note"]]] = MappingProxyType({
    "append_thread": "thread_message",
    "append_meeting_note": "meeting_note",
})


def agent_write_id(request_id: str, step: int, index: int) -> str:
    """The id of the write a run's call ``index`` of ``step`` makes: the same for every replay
    of the run, so the gateway's applier writes its entity once (``gateway.agent_writes``)."""
    return hashlib.sha256(f"{request_id}\x00{step}\x00{index}".encode()).hexdigest()


# The arguments that carry what a call writes (a message's text, a request's body; ``_raw``:
# arguments that were not a JSON object, ``nova.llm.tools``), not what it names.
CONTENT_ARGUMENTS: Final[frozenset[str]] = frozenset({"text", "body", "_raw"})
RECORDED_ARGUMENT_CHARS: Final = 80


def recorded_arguments(arguments: Mapping[str, object]) -> dict[str, object]:
    """A tool call's arguments as its audit fact keeps them: what it names (an id, a
    recipient, a URL's host and path) cut to :data:`RECORDED_ARGUMENT_CHARS`, what it writes
    only as its length. The audit chain lands in ``audit_events``, which analysts read, and
    what an agent writes is content, as an answer is (analysts see metrics, never content);
    the call itself stays on the record paused at its checkpoint (a SEND always waits at
    one)."""
    kept: dict[str, object] = {}
    for name, value in arguments.items():
        if name in CONTENT_ARGUMENTS:
            kept[name] = f"<{len(value) if isinstance(value, str) else len(str(value))} chars>"
        elif name == "url" and isinstance(value, str):
            kept[name] = _named_url(value)
        elif isinstance(value, str) and len(value) > RECORDED_ARGUMENT_CHARS:
            kept[name] = value[:RECORDED_ARGUMENT_CHARS - 1] + "…"
        elif isinstance(value, str | int | float | bool) or value is None:
            kept[name] = value
        else:  # a nested value the tool will refuse anyway: its kind, not its content
            kept[name] = f"<{type(value).__name__}>"
    return kept


def _named_url(url: str) -> str:
    """What a URL names, its scheme, host, port and path, cut as other names are; not its
    query, its fragment nor a user or password before its host (those carry values, and a
    credential is refused there anyway)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return f"<{len(url)} chars>"
    if not (parts.scheme and host):
        return f"<{len(url)} chars>"
    shown = f"{parts.scheme}://{host}{parts.path}"
    if parts.query:
        shown += "?…"
    return shown if len(shown) <= RECORDED_ARGUMENT_CHARS else (
        shown[:RECORDED_ARGUMENT_CHARS - 1] + "…")


# The LLM roles an agent may run as (``nova.llm.routing`` routes each; ``nova`` stays on Claude).
AgentRole = Literal["nova", "orchestrator", "analyst", "researcher"]
AGENT_ROLES: Final[frozenset[str]] = frozenset(get_args(AgentRole))

Visibility = Literal["private", "public"]

MIN_STARS: Final = 1
MAX_STARS: Final = 5


@dataclass(frozen=True, slots=True)
class RatingSummary:
    """An agent's ratings as the registry lists them: how many, and their mean (None if none)."""

    count: int
    average: float | None


def summarize(stars: Iterable[int]) -> RatingSummary:
    values = list(stars)
    if not values:
        return RatingSummary(0, None)
    return RatingSummary(len(values), round(sum(values) / len(values), 2))


@dataclass(frozen=True, slots=True)
class AgentQuery:
    """A registry search: every condition set must hold (AND); unset matches anything.

    ``text`` matches the name or the description, case- and accent-insensitively, as a
    substring: the registry is small enough per deployment that ranking is by rating, not by
    relevance."""

    role: str | None = None
    tool: str | None = None
    text: str | None = None

    def matches(self, role: str, tools: Iterable[str], name: str, description: str) -> bool:
        if self.role is not None and role != self.role:
            return False
        if self.tool is not None and self.tool not in set(tools):
            return False
        if self.text:
            needle = fold(self.text)
            return needle in fold(name) or needle in fold(description)
        return True
