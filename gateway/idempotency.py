"""Idempotent submission: a retried ``POST /api/v2/nova/requests`` names the first request.

A client that sends ``Idempotency-Key: <key>`` (IETF httpapi idempotency draft; Stripe's
header) and retries after a timeout, a 5xx or a broken connection gets the request its first
attempt created (same id, same outcome) instead of a second request: a payment is held once,
approved once, paid once. No database is added; three things make it hold across gateways:

- **The request id is derived, not drawn**: ``uuid7_derived(start of the UTC day, SHA-256(
  identity, key, body fingerprint))``. A retry of the same body with the same key computes the
  same id at any gateway, even one that has never heard of the first attempt, so the worst a
  race can do (two gateways accepting the same retry within the same instant) is put the same
  record on the topic twice, which every lane already absorbs (delivery is at least once and
  everything downstream is idempotent by request id: lane F calls a provider once per id).
  The id keeps the UUIDv7 shape ClickHouse partitions by (its time is the day's start).
- **The body is fingerprinted**: SHA-256 of the canonical JSON of the body, less ``wait_ms``
  (how long to wait for the answer is not part of the request). The record carries the key
  and the fingerprint (``pipeline_record`` v5), so a gateway that learns of the request from
  Kafka knows the body it came with. The same key with another body is refused with 422
  problem+json (slug ``idempotency-key-reused``), as the draft says.
- **Every gateway knows the keys of the window** (:class:`IdempotencyIndex`): the keys it
  accepted itself, at once, and every keyed request any gateway accepted that was held or
  finished, read from the ``pending`` and ``completed`` topics from ``NOVA_IDEMPOTENCY_WINDOW_S``
  ago (default 24 h) on start-up, then as they come. When the key, the derived id or the
  request's lane events (the tracker) are known, the gateway answers with the request's state
  and produces nothing: a known request is never produced twice.

**What a retry answers**: the request as it stands. Finished: 200 with its view (status,
result, lanes). Held at a checkpoint: 423 with the checkpoint. Still in flight: 202, or, with
``wait_ms``, the same wait as a first submission. Replayed answers carry ``Idempotent-Replayed:
true``. Concurrent retries of one key at one gateway are serialised: the second waits for the
first to be written (or to fail) before answering.

**The window**: a key is remembered for ``NOVA_IDEMPOTENCY_WINDOW_S`` after its request was
accepted (and at most ``capacity`` keys, the oldest forgotten first). Within the same UTC day a
retry of the same body names the same id even when the key is forgotten, so it still cannot
run twice (lane F keeps one result per id); what is lost after the window is only the 422 for a
reused key with another body, and a key reused on a later day names a new request.

**After a broker outage**: a POST whose write was still pending when the broker went away
either fails (503 problem+json, ``Retry-After``: nothing was written) or completes once the
broker is back, after its client may have given up. Either way, a retry with the same key
answers the truth: the derived id is the same, so the retry finds the request if it was
written (the gateway that accepted it knows the key from the moment its write was
acknowledged; the others once the request is held, finished, or they see its lane events),
and writes it if it was not. A client whose POST timed out therefore learns, by retrying, that
its request was accepted and what became of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any, Final

from gateway.tracker import RequestView, view_from_record
from nova.errors import NovaError
from nova.ids import uuid7_derived
from nova.kafka.tail import BATCHED_FETCH_BYTES, LAGGING_FETCH_WAIT_MS, TopicTail
from nova.records import PipelineRecord, now_ms
from nova.settings import Settings
from schemas import SchemaSet
from schemas import headers as hdr

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
MAX_KEY_LENGTH: Final = 255
DAY_MS: Final = 86_400_000
# Printable ASCII without spaces or quotes; the draft's sf-string form ("...") is unquoted first.
_KEY: Final = re.compile(r"[!#-~]{1,255}")
# The header as the contract documents it: the key bare or as a Structured Field string.
IDEMPOTENCY_KEY_PATTERN: Final = r'^([!#-~]{1,255}|"[!#-~]{1,255}")$'


class IdempotencyKeyError(NovaError, ValueError):
    """The ``Idempotency-Key`` header is malformed, or was used with another body (422)."""


class BrokerUnavailableError(NovaError):
    """The request could not be written to Kafka: nothing was accepted; retry (503)."""

    retriable = True


def parse_key(raw: str) -> str:
    """The key of an ``Idempotency-Key`` header (a Structured Field string, or bare)."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not _KEY.fullmatch(value):
        raise IdempotencyKeyError(
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
            "without spaces or quotes (a UUID is a good choice)"
        )
    return value


# Fields the body gained after fingerprints were first taken: left out while unset, so a retry
# of a body sent before a gateway knew them still matches its first attempt's fingerprint.
LATER_FIELDS: Final = frozenset({"priority", "meeting_id", "agent_id"})


def body_fingerprint(body: dict[str, Any]) -> str:
    """SHA-256 of the body's canonical JSON, less ``wait_ms`` (not part of the request) and
    the :data:`LATER_FIELDS` it leaves unset."""
    fields = {k: v for k, v in body.items()
              if k != "wait_ms" and not (k in LATER_FIELDS and v is None)}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def request_id_for(identity: str, key: str, fingerprint: str, at_ms: int) -> str:
    """The id a keyed submission names: the same at every gateway for one UTC day."""
    digest = hashlib.sha256("\0".join(("nova-idempotency", identity, key, fingerprint))
                            .encode()).digest()
    return uuid7_derived(at_ms - at_ms % DAY_MS, digest)


@dataclass(frozen=True, slots=True)
class KnownKey:
    request_id: str
    fingerprint: str
    accepted_at: int  # epoch ms


def _slim(view: RequestView) -> RequestView:
    """A view without what a replayed answer never shows (the prompt may be 100,000 chars)."""
    if view.record is None:
        return view
    return replace(view, record=view.record.model_copy(
        update={"prompt": "", "context": None, "encoded": None}))


class IdempotencyIndex(TopicTail):
    """Keys of the window → the request each names, and the state of those requests."""

    TOPICS = ("pending", "completed")
    START = "beginning"

    def fetch_max_wait_ms(self) -> int:
        # A key is claimed in this process before its request is written, and a retry's id is
        # the key's (``_state`` finds it written), so the index may learn a key late:
        # batched fetches, not one per finished request.
        return LAGGING_FETCH_WAIT_MS

    def fetch_min_bytes(self) -> int:
        return BATCHED_FETCH_BYTES

    def __init__(
        self,
        settings: Settings,
        schemas: SchemaSet,
        *,
        capacity: int = 1_000_000,
        clock: Any = time.time,
    ) -> None:
        super().__init__(settings, schemas)
        self.window_ms = int(settings.idempotency_window_s * 1000)
        self.capacity = capacity
        self.clock = clock
        self._keys: OrderedDict[tuple[str, str], KnownKey] = OrderedDict()
        self._views: dict[str, RequestView] = {}
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    def since_ms(self) -> int:
        return int(self.clock() * 1000) - self.window_ms

    # -- read side ---------------------------------------------------------------------
    def lookup(self, identity: str, key: str) -> KnownKey | None:
        """The request ``key`` names for ``identity``, while the window remembers it."""
        known = self._keys.get((identity, key))
        if known is None:
            return None
        if known.accepted_at < int(self.clock() * 1000) - self.window_ms:
            self._forget((identity, key))
            return None
        return known

    def view(self, request_id: str) -> RequestView | None:
        """The latest held or final state of a keyed request, from Kafka."""
        return self._views.get(request_id)

    @contextlib.asynccontextmanager
    async def claim(self, identity: str, key: str) -> AsyncIterator[None]:
        """Serialise submissions of one key at this gateway (a retry racing its original)."""
        slot = (identity, key)
        lock, users = self._locks.get(slot, (asyncio.Lock(), 0))
        self._locks[slot] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[slot]
            if users == 1:
                del self._locks[slot]
            else:
                self._locks[slot] = (lock, users - 1)

    # -- write side --------------------------------------------------------------------
    def remember(self, identity: str, key: str, known: KnownKey) -> None:
        slot = (identity, key)
        current = self._keys.get(slot)
        if current is not None and current.accepted_at <= known.accepted_at:
            return  # the first acceptance names the request
        self._keys[slot] = known
        self._keys.move_to_end(slot)
        while len(self._keys) > self.capacity:
            self._forget(next(iter(self._keys)))

    def _forget(self, slot: tuple[str, str]) -> None:
        known = self._keys.pop(slot, None)
        if known is not None:
            self._views.pop(known.request_id, None)

    def apply_message(self, topic: str, message: Any) -> None:
        if hdr.header(message.headers, hdr.REQUEST) is not None and (
            hdr.header(message.headers, hdr.KEYED) is None
        ):
            return  # a request without a key, said by its headers: nothing to decode
        super().apply_message(topic, message)

    def apply(self, topic: str, data: dict[str, Any]) -> None:
        rec = PipelineRecord.from_avro(data)
        if rec.idempotency_key is None or rec.body_fingerprint is None:
            return
        self.remember(rec.identity_id, rec.idempotency_key,
                      KnownKey(rec.request_id, rec.body_fingerprint, rec.submitted_at))
        current = self._views.get(rec.request_id)
        if topic == "pending":
            if current is not None and current.finished:
                return  # a late copy of the hold never reopens a finished request
            self._views[rec.request_id] = _slim(view_from_record(rec, status="held"))
        else:
            self._views[rec.request_id] = _slim(view_from_record(rec))


def record_key(record: PipelineRecord) -> KnownKey:
    """What the index remembers of a request this gateway has just written."""
    assert record.body_fingerprint is not None
    return KnownKey(record.request_id, record.body_fingerprint, now_ms())
