"""Who receives which live event: subscriptions, the replay buffer, bounded queues.

:meth:`LiveHub.publish` is called by the feed for every message, synchronously: it numbers
the message, serialises it once, keeps it in the replay buffer and offers it to every
subscriber whose filter admits it. Offering never waits: each subscriber has a queue of at
most ``NOVA_LIVE_QUEUE_MAX`` frames, drained by its own connection. A subscriber whose queue is
full is *overflowed*: its backlog is dropped at once, it leaves the hub, and its connection is
told to close (4413). So a client that stops reading costs the gateway one bounded queue until
it is dropped, and slows neither the feed nor any other subscriber.

Who sees what (:class:`Filter`), the rule of every HTTP route applied to events: a subscriber
receives its own identity's events; an ``operator`` may ask for every identity's (``*``) or
named ones, since operators see every identity's figures, and events carry figures, never
content. Checkpoint events stay within their identity and follow ``GET
/api/v2/governance/checkpoints``: approvers and admins see every checkpoint of the identity,
anyone else only those of requests they submitted. Provider health belongs to no identity and
reaches everyone who subscribes to it.

Positions: each message gets ``<epoch>-<seq>``, the epoch drawn at random when the hub starts
and the sequence counting up. A client resuming with the position of the last event it handled
gets exactly what it missed, in order, if the position is this hub's and still in the buffer
(the last ``NOVA_LIVE_REPLAY_WINDOW_S``, at most ``NOVA_LIVE_REPLAY_MAX`` events); a position
of another gateway (or of this one before a restart) can only be matched by time: with
``since`` (the ``ts`` of that event) every buffered event from that time on is replayed, and
the client drops the ids it already has. Anything else is a ``gap``: the client reloads what it
shows over HTTP.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from gateway.live.messages import (
    CHECKPOINT_TOPICS,
    EVERY_IDENTITY,
    SYSTEM_IDENTITY,
    LiveMessage,
)

Resume = Literal["none", "exact", "approximate", "gap"]
CLOCK: Final = time.monotonic


@dataclass(frozen=True, slots=True)
class Filter:
    """What one subscription admits; built by the route from the token and the frame."""

    identity: str  # the token's
    sub: str  # the token's subject: a member sees its own requests' checkpoints
    approver: bool  # approvers and admins see every checkpoint of the identity
    topics: frozenset[str]
    identities: frozenset[str]  # whose events: {identity}, or others / {"*"} for operators

    def admits(self, message: LiveMessage) -> bool:
        if message.topic not in self.topics:
            return False
        if message.identity == SYSTEM_IDENTITY:
            return True
        if message.topic in CHECKPOINT_TOPICS:
            return message.identity == self.identity and (
                self.approver or (message.user_id is not None and message.user_id == self.sub)
            )
        return EVERY_IDENTITY in self.identities or message.identity in self.identities


class Subscriber:
    """One connection's outbox: frames in order, at most ``limit`` waiting."""

    def __init__(self, limit: int, on_overflow: Callable[[], None] = lambda: None) -> None:
        self.limit = limit
        self.on_overflow = on_overflow
        self.filter: Filter | None = None
        self.overflowed = False
        self._queue: deque[str] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queue)

    def offer(self, text: str) -> bool:
        """Queue ``text``; False (and the subscriber overflowed) when the queue is full."""
        if self.overflowed:
            return False
        if len(self._queue) >= self.limit:
            self.overflowed = True
            self._queue.clear()  # the backlog goes now, not when the connection is gone
            self._ready.set()  # a waiting :meth:`next` returns None: time to close
            self.on_overflow()
            return False
        self._queue.append(text)
        self._ready.set()
        return True

    async def next(self) -> str | None:
        """The next frame to send, or None once the subscriber has overflowed."""
        while not self._queue:
            if self.overflowed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return None if self.overflowed else self._queue.popleft()


@dataclass(frozen=True, slots=True)
class _Entry:
    seq: int
    at: float  # CLOCK() when published: what the window counts
    message: LiveMessage
    text: str


@dataclass(frozen=True, slots=True)
class Subscribed:
    resume: Resume
    replayed: int
    position: str  # the position of the newest event published before the subscription


class LiveHub:
    def __init__(self, *, window_s: float, buffer_max: int, clock: Callable[[], float] = CLOCK
                 ) -> None:
        self.window_s = window_s
        self.buffer_max = buffer_max
        self.clock = clock
        self.epoch = secrets.token_hex(4)
        self._seq = 0
        self._buffer: deque[_Entry] = deque()
        self._subscribers: set[Subscriber] = set()
        self.dropped_slow = 0  # subscribers overflowed since start

    @property
    def position(self) -> str:
        return f"{self.epoch}-{self._seq}"

    def stats(self) -> dict[str, int]:
        return {
            "subscribers": len(self._subscribers),
            "queued": sum(len(s) for s in self._subscribers),
            "buffered": len(self._buffer),
            "dropped_slow": self.dropped_slow,
        }

    # -- the feed's side -------------------------------------------------------------------
    def publish(self, message: LiveMessage) -> None:
        self._seq += 1
        entry = _Entry(self._seq, self.clock(), message, message.wire(f"{self.epoch}-{self._seq}"))
        self._buffer.append(entry)
        self._evict()
        for subscriber in list(self._subscribers):
            flt = subscriber.filter
            if flt is not None and flt.admits(message) and not subscriber.offer(entry.text):
                self._drop(subscriber)

    def _evict(self) -> None:
        oldest = self.clock() - self.window_s
        while self._buffer and (len(self._buffer) > self.buffer_max or self._buffer[0].at < oldest):
            self._buffer.popleft()

    def _drop(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.discard(subscriber)
            self.dropped_slow += 1

    # -- the connections' side -------------------------------------------------------------
    def subscribe(
        self,
        subscriber: Subscriber,
        flt: Filter,
        *,
        after: str | None = None,
        since: int | None = None,
        greeting: Callable[[Subscribed], str] | None = None,
    ) -> Subscribed:
        """(Re)register ``subscriber`` with ``flt``; queue ``greeting`` and then the replay.

        Runs without awaiting, so no event can slip between the replay and the live stream.
        """
        self._subscribers.discard(subscriber)
        self._evict()
        resume, replay = self._replay(flt, after, since)
        if len(replay) > subscriber.limit // 2:
            resume, replay = "gap", []  # more than the queue can take: reload over HTTP
        result = Subscribed(resume, len(replay), self.position)
        subscriber.filter = flt
        if greeting is not None:
            subscriber.offer(greeting(result))
        for entry in replay:
            subscriber.offer(entry.text)
        if not subscriber.overflowed:
            self._subscribers.add(subscriber)
        return result

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def _replay(self, flt: Filter, after: str | None, since: int | None
                ) -> tuple[Resume, list[_Entry]]:
        if after is None and since is None:
            return "none", []
        epoch, _, seq_text = (after or "").partition("-")
        if after is not None and epoch == self.epoch and seq_text.isdigit():
            seq = int(seq_text)
            first = self._buffer[0].seq if self._buffer else self._seq + 1
            if seq > self._seq:
                return "gap", []  # a position this hub never gave
            if seq + 1 < first:
                return "gap", []  # some of what was missed has left the buffer
            return "exact", [e for e in self._buffer if e.seq > seq and flt.admits(e.message)]
        if since is None:
            return "gap", []
        return "approximate", [e for e in self._buffer
                               if e.message.ts >= since and flt.admits(e.message)]
