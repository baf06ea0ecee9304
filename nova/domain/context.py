"""Lane B: a bounded snapshot of the identity's own context for one request.

The snapshot is what the model will see of the user's threads, dataspaces and meetings. It is
bounded by a token budget because context is the main driver of cost and latency (unbounded
consumption, OWASP LLM10), and it is recorded by source id so the audit trail can say exactly
which items a provider received.

Identity scoping is the caller's job: the store query that produced ``messages`` and ``items``
is filtered by the requesting identity, and governance re-checks ownership of every referenced
resource. This module stays pure so that the selection rule is easy to test and to replay.

Selection: thread messages, dataspace items and meeting entries (agenda items, notes,
decisions) are merged and taken newest first (ties broken
by source id so the result is deterministic) until the next item would exceed the budget. We
stop at the first item that does not fit rather than skipping it to look for smaller, older
ones: the model then sees an unbroken recent window instead of a recent item missing while an
older one is present, which would misrepresent the conversation.

Token estimate: ``ceil(chars / 4)``, the usual rule of thumb for English and French text with
BPE tokenizers. It is an estimate for budgeting, not a billing figure; providers report the
real count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, TypeAlias

from nova.errors import ConfigError, ProcessingError

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """Budgeting estimate of a text's token count: ``ceil(len(text) / 4)``."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ProcessingError(f"{what}.created_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One message of a conversation thread owned by the requesting identity."""

    thread_id: str
    message_id: str
    author: str
    text: str
    created_at: datetime

    def __post_init__(self) -> None:
        _require_aware(self.created_at, "ThreadMessage")


@dataclass(frozen=True, slots=True)
class DataspaceItem:
    """One document or note in a dataspace owned by the requesting identity."""

    dataspace_id: str
    item_id: str
    title: str
    text: str
    created_at: datetime

    def __post_init__(self) -> None:
        _require_aware(self.created_at, "DataspaceItem")


MeetingEntryKind: TypeAlias = Literal["agenda", "note", "decision"]

# How an entry is named in its context heading ("meeting 'Weekly' agenda item at ...").
ENTRY_HEADINGS: Final[dict[str, str]] = {
    "agenda": "agenda item", "note": "note", "decision": "decision"}


@dataclass(frozen=True, slots=True)
class MeetingEntry:
    """One agenda item, note or decision of a meeting owned by the requesting identity.

    Written by people in (or about) a meeting, never by Nova: context, not instructions, like
    a thread message."""

    meeting_id: str
    entry_id: str
    meeting_title: str
    kind: MeetingEntryKind
    text: str
    created_at: datetime

    def __post_init__(self) -> None:
        _require_aware(self.created_at, "MeetingEntry")


@dataclass(frozen=True, slots=True)
class ContextItem:
    """One selected piece of context, already in the shape the encoder renders.

    ``tokens`` is the estimate of ``heading + "\\n" + text``, which is what the encoder emits
    for the item (plus fixed framing it accounts for itself).
    """

    kind: Literal["message", "item", "meeting"]
    source_id: str
    heading: str
    text: str
    created_at: datetime
    tokens: int


@dataclass(frozen=True, slots=True)
class ContextSnapshot:
    """The bounded context of one request, newest first."""

    items: tuple[ContextItem, ...]
    total_tokens: int
    budget: int
    truncated: bool

    @property
    def item_count(self) -> int:
        return len(self.items)

    @property
    def sources(self) -> tuple[str, ...]:
        """Source ids in snapshot order: ``msg:<thread>/<message>``, ``ds:<space>/<item>`` or
        ``mtg:<meeting>/<entry>``."""
        return tuple(item.source_id for item in self.items)


EMPTY_SNAPSHOT = ContextSnapshot(items=(), total_tokens=0, budget=0, truncated=False)


def _from_message(m: ThreadMessage) -> ContextItem:
    heading = f"message from {m.author} at {m.created_at.isoformat()}"
    return ContextItem(
        kind="message",
        source_id=f"msg:{m.thread_id}/{m.message_id}",
        heading=heading,
        text=m.text,
        created_at=m.created_at,
        tokens=estimate_tokens(f"{heading}\n{m.text}"),
    )


def _from_item(d: DataspaceItem) -> ContextItem:
    heading = f"document {d.title!r} at {d.created_at.isoformat()}"
    return ContextItem(
        kind="item",
        source_id=f"ds:{d.dataspace_id}/{d.item_id}",
        heading=heading,
        text=d.text,
        created_at=d.created_at,
        tokens=estimate_tokens(f"{heading}\n{d.text}"),
    )


def _from_entry(e: MeetingEntry) -> ContextItem:
    heading = (f"meeting {e.meeting_title!r} {ENTRY_HEADINGS[e.kind]} at "
               f"{e.created_at.isoformat()}")
    return ContextItem(
        kind="meeting",
        source_id=f"mtg:{e.meeting_id}/{e.entry_id}",
        heading=heading,
        text=e.text,
        created_at=e.created_at,
        tokens=estimate_tokens(f"{heading}\n{e.text}"),
    )


def build_snapshot(
    messages: Iterable[ThreadMessage],
    items: Iterable[DataspaceItem],
    budget: int,
    entries: Iterable[MeetingEntry] = (),
) -> ContextSnapshot:
    """Select context newest first until the next item would exceed ``budget`` tokens."""
    if budget < 0:
        raise ConfigError(f"context token budget must be >= 0, got {budget}")
    candidates = ([_from_message(m) for m in messages] + [_from_item(d) for d in items]
                  + [_from_entry(e) for e in entries])
    # Newest first; among equal timestamps, source id ascending keeps replays identical.
    candidates.sort(key=lambda c: c.source_id)
    candidates.sort(key=lambda c: c.created_at, reverse=True)

    chosen: list[ContextItem] = []
    total = 0
    for candidate in candidates:
        if total + candidate.tokens > budget:
            break
        chosen.append(candidate)
        total += candidate.tokens
    return ContextSnapshot(
        items=tuple(chosen),
        total_tokens=total,
        budget=budget,
        truncated=len(chosen) < len(candidates),
    )
