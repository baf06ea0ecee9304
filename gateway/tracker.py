"""Where each request stands, as the gateway sees it: an in-memory read model.

Each gateway process tails the ``pending`` and ``completed`` topics from their end (no consumer
group: every replica sees every partition) and folds them into a bounded map of request views.
``wait`` lets ``POST …?wait_ms`` answer as soon as a request is held or done.

Cheap by design (issue 9): a record's request id and status are read from its headers
(``schemas.headers``); its value is decoded only when someone reads the view (the client
waiting on it, a GET), so a gateway does not pay for decoding the answers of requests other
gateways serve. A record without those headers (written before they existed) is decoded at
once. The lane timings come with the record itself (``PipelineRecord.lanes``).
A view missing from memory (an old request, a restarted gateway) is rebuilt from ClickHouse by
the caller; this module stays free of ClickHouse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nova.errors import SchemaError
from nova.kafka.tail import TopicTail
from nova.records import FINAL_STATUSES, PipelineRecord
from nova.settings import Settings
from schemas import TOPICS, SchemaSet
from schemas import headers as hdr

log = logging.getLogger(__name__)

LANE_ORDER = "ABCDEFG"
DECODED_KEPT = 512  # decoded views kept for reads that follow one another (RequestTracker.get)


@dataclass(frozen=True)
class LaneView:
    lane: str
    status: str
    duration_ms: float


@dataclass(frozen=True)
class RequestView:
    request_id: str
    identity_id: str
    status: str
    lanes: dict[str, LaneView] = field(default_factory=dict)
    result: str | None = None
    error: str | None = None
    checkpoint_id: str | None = None
    checkpoint_reason: str | None = None
    record: PipelineRecord | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def held(self) -> bool:
        return self.status == "held"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": self.request_id,
            "status": self.status,
            "lanes": [
                {"lane": v.lane, "status": v.status, "duration_ms": round(v.duration_ms, 3)}
                for v in sorted(self.lanes.values(), key=lambda v: LANE_ORDER.index(v.lane))
            ],
            "result": self.result,
        }
        if self.error:
            body["error"] = self.error
        if self.checkpoint_id:
            body["checkpoint_id"] = self.checkpoint_id
            body["checkpoint_reason"] = self.checkpoint_reason
        if self.record is not None:
            rec = self.record
            if rec.intent:
                body["intent"] = {
                    "task_type": rec.intent.task_type,
                    "action": rec.intent.action,
                    "confidence": rec.intent.confidence,
                }
            if rec.governance:
                body["governance"] = {
                    "outcome": rec.governance.outcome,
                    "fired_rules": list(rec.governance.fired_rules),
                    "reasons": list(rec.governance.reasons),
                }
            if rec.execution and rec.execution.provider:
                ex = rec.execution
                body["execution"] = {
                    "provider": ex.provider,
                    "model": ex.model,  # served: an alias asked for is its current model
                    "requested_model": rec.model_hint,
                    "priority": rec.priority or "normal",
                    "tokens_in": ex.tokens_in,
                    "tokens_out": ex.tokens_out,
                    "cost_usd": ex.cost_usd,
                    "attempts": ex.attempts,
                }
        return body


def view_from_record(rec: PipelineRecord, status: str | None = None) -> RequestView:
    lanes = {t.lane: LaneView(t.lane, t.status, t.duration_ms) for t in rec.lanes}
    cp = rec.checkpoint
    return RequestView(
        request_id=rec.request_id,
        identity_id=rec.identity_id,
        status=status or rec.status,
        lanes=lanes,
        result=rec.execution.text if rec.execution else None,
        error=rec.error,
        checkpoint_id=cp.checkpoint_id if cp else None,
        checkpoint_reason=cp.reason if cp else None,
        record=rec,
    )


class RequestTracker(TopicTail):
    """Bounded map request id → view, fed by Kafka from the moment the gateway starts.

    A finished request's view is kept for ``retain_s`` after its last change, long enough for
    its waiting client and the GETs that follow, and for the sink to have written it to
    ClickHouse, from which the caller rebuilds anything older. Without that bound the map
    held every answer of the last 200,000 requests: a gateway at a steady 9 req/s grew by
    about 40 KB per request, 14% of its RSS in five minutes (``bench/soak.py``). Requests still
    held or in flight are kept until they finish, up to ``capacity`` views in all.
    """

    TOPICS = ("pending", "completed")
    START = "end"

    def __init__(self, settings: Settings, schemas: SchemaSet, capacity: int = 200_000,
                 retain_s: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(settings, schemas)
        self.capacity = capacity
        self.retain_s = retain_s
        self._clock = clock
        self._views: OrderedDict[str, RequestView] = OrderedDict()
        self._put_at: dict[str, float] = {}
        # views known from headers only: the raw value to decode when the view is read
        self._undecoded: dict[str, tuple[str, bytes, Any]] = {}
        self._decoded: OrderedDict[str, RequestView] = OrderedDict()  # the last few reads
        self._changed: dict[str, asyncio.Event] = {}
        self._releasing = False  # the gateway is stopping: waits end now

    def fetch_max_wait_ms(self) -> int:
        return self.settings.kafka_fetch_max_wait_ms  # a waiting client's answer comes this way

    # -- read side ---------------------------------------------------------------------
    def get(self, request_id: str) -> RequestView | None:
        """The request's view, its record decoded now when only its headers were read.

        The map keeps the raw value, about a fifth of the decoded record's size, so a
        finished request costs the same few KB for its whole retention whether or not its
        client read the answer (``bench/soak.py`` measured the decoded records as the
        gateway's growth while the window filled). Only the last :data:`DECODED_KEPT` decoded
        views are kept, for the reads that follow one another (a waiting client's answer,
        then its GETs).
        """
        view = self._views.get(request_id)
        raw = self._undecoded.get(request_id)
        if view is None or raw is None:
            return view
        decoded = self._decoded.get(request_id)
        if decoded is not None:
            return decoded
        topic, value, headers = raw
        try:
            rec = self.decode_record(topic, value, headers)
        except (SchemaError, ValueError) as exc:  # keep the view its headers gave
            log.debug("request %s: record does not decode: %s", request_id, exc)
            return view
        decoded = view_from_record(rec, status="held" if topic == "pending" else None)
        self._decoded[request_id] = decoded
        while len(self._decoded) > DECODED_KEPT:
            self._decoded.popitem(last=False)
        return decoded

    def decode_record(self, topic: str, value: bytes, headers: Any) -> PipelineRecord:
        return PipelineRecord.from_avro(self.schemas[TOPICS[topic].value_schema].decode(
            value, headers))

    async def wait_until(
        self,
        request_id: str,
        done: Callable[[RequestView], bool],
        timeout_s: float,
    ) -> RequestView | None:
        """Wait until ``done(view)`` holds or the timeout passes (or the gateway stops); return
        the latest view."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            view = self._views.get(request_id)
            if view is not None and done(view):
                return self.get(request_id)
            remaining = deadline - loop.time()
            if remaining <= 0 or self._releasing:
                return self.get(request_id)
            changed = self._changed.setdefault(request_id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
            changed.clear()

    def release_waiters(self) -> None:
        """End every wait now, each answering with its request as it stands (202 in flight):
        the gateway is stopping, and a client's ``wait_ms`` must not hold up the shutdown. The
        request itself is on Kafka and goes on; the client follows it by id."""
        self._releasing = True
        for event in self._changed.values():
            event.set()

    # -- write side --------------------------------------------------------------------
    def accepted(self, rec: PipelineRecord) -> None:
        self._put(
            RequestView(request_id=rec.request_id, identity_id=rec.identity_id, status="accepted")
        )

    def forget(self, request_id: str) -> None:
        """Drop a view :meth:`accepted` put there for a request that was never written."""
        view = self._views.get(request_id)
        if view is not None and view.status == "accepted":
            self._drop(request_id)

    def __len__(self) -> int:
        return len(self._views)

    def _drop(self, request_id: str) -> None:
        self._views.pop(request_id, None)
        self._put_at.pop(request_id, None)
        self._changed.pop(request_id, None)
        self._undecoded.pop(request_id, None)
        self._decoded.pop(request_id, None)

    def _put(self, view: RequestView) -> None:
        now = self._clock()
        self._decoded.pop(view.request_id, None)  # the request moved on: decode its new record
        self._views[view.request_id] = view
        self._views.move_to_end(view.request_id)
        self._put_at[view.request_id] = now
        self._expire(now)
        event = self._changed.get(view.request_id)
        if event is not None:
            event.set()

    def _expire(self, now: float) -> None:
        """Drop the oldest views while over capacity, and finished ones past ``retain_s``.

        The map is in order of last change, so expired views are at its front. A view there
        that is not finished (held for days, say) is moved to the back rather than dropped, so
        it never shields the finished views behind it; each is moved at most once a pass.
        """
        for _ in range(len(self._views)):
            oldest = next(iter(self._views))
            if len(self._views) > self.capacity:
                self._drop(oldest)
                continue
            if now - self._put_at.get(oldest, now) < self.retain_s:
                return
            if self._views[oldest].finished:
                self._drop(oldest)
            else:
                self._views.move_to_end(oldest)
                self._put_at[oldest] = now

    def apply_pending(self, rec: PipelineRecord) -> None:
        view = self._views.get(rec.request_id)
        if view is not None and view.finished:
            return  # a late copy of the hold never reopens a finished request
        self._put(view_from_record(rec, status="held"))

    def apply_completed(self, rec: PipelineRecord) -> None:
        self._put(view_from_record(rec))

    def apply_message(self, topic: str, message: Any) -> None:
        headers = message.headers
        request_id = hdr.header(headers, hdr.REQUEST)
        status = hdr.header(headers, hdr.STATUS)
        identity = hdr.header(headers, hdr.IDENTITY)
        if request_id is None or status is None or identity is None:
            super().apply_message(topic, message)  # a record from before the headers
            return
        view = self._views.get(request_id)
        if topic == "pending":
            if view is not None and view.finished:
                return
            status = "held"
        self._undecoded.pop(request_id, None)
        self._put(RequestView(request_id=request_id, identity_id=identity, status=status))
        self._undecoded[request_id] = (topic, message.value, headers)

    def apply(self, topic: str, data: dict[str, Any]) -> None:
        rec = PipelineRecord.from_avro(data)
        if topic == "pending":
            self.apply_pending(rec)
        else:
            self.apply_completed(rec)
