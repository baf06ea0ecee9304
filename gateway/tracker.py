"""Where each request stands, as the gateway sees it: an in-memory read model.

Each gateway process tails the ``events``, ``pending`` and ``completed`` topics from their end
(no consumer group: every replica sees every partition) and folds them into a bounded map of
request views. ``wait`` lets ``POST …?wait_ms`` answer as soon as a request is held or done.
A view missing from memory (an old request, a restarted gateway) is rebuilt from ClickHouse by
the caller; this module stays free of ClickHouse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from nova.kafka.tail import TopicTail
from nova.records import FINAL_STATUSES, Event, PipelineRecord
from nova.settings import Settings
from schemas import SchemaSet

log = logging.getLogger(__name__)

LANE_ORDER = "ABCDEFG"


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
                    "model": ex.model,
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
    """Bounded map request id → view, fed by Kafka from the moment the gateway starts."""

    TOPICS = ("events", "pending", "completed")
    START = "end"

    def __init__(self, settings: Settings, schemas: SchemaSet, capacity: int = 200_000) -> None:
        super().__init__(settings, schemas)
        self.capacity = capacity
        self._views: OrderedDict[str, RequestView] = OrderedDict()
        self._changed: dict[str, asyncio.Event] = {}
        self._releasing = False  # the gateway is stopping: waits end now

    # -- read side ---------------------------------------------------------------------
    def get(self, request_id: str) -> RequestView | None:
        return self._views.get(request_id)

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
                return view
            remaining = deadline - loop.time()
            if remaining <= 0 or self._releasing:
                return view
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
            del self._views[request_id]

    def _put(self, view: RequestView) -> None:
        self._views[view.request_id] = view
        self._views.move_to_end(view.request_id)
        while len(self._views) > self.capacity:
            old, _ = self._views.popitem(last=False)
            self._changed.pop(old, None)
        event = self._changed.get(view.request_id)
        if event is not None:
            event.set()

    def apply_event(self, ev: Event) -> None:
        if ev.lane is None:
            return
        view = self._views.get(ev.request_id) or RequestView(
            request_id=ev.request_id, identity_id=ev.identity_id, status="in_flight"
        )
        lanes = dict(view.lanes)
        lanes[ev.lane.lane] = LaneView(ev.lane.lane, ev.lane.status, ev.lane.duration_ms)
        if view.finished:
            status = view.status
        elif ev.lane.status == "held":
            status = "held"
        else:
            status = "in_flight"
        self._put(replace(view, lanes=lanes, status=status))

    def apply_pending(self, rec: PipelineRecord) -> None:
        view = self._views.get(rec.request_id)
        if view is not None and view.finished:
            return
        held = view_from_record(rec, status="held")
        if view is not None:
            held = replace(held, lanes={**view.lanes, **held.lanes})
        self._put(held)

    def apply_completed(self, rec: PipelineRecord) -> None:
        self._put(view_from_record(rec))

    def apply(self, topic: str, data: dict[str, Any]) -> None:
        if topic == "events":
            self.apply_event(Event.from_avro(data))
        elif topic == "pending":
            self.apply_pending(PipelineRecord.from_avro(data))
        else:
            self.apply_completed(PipelineRecord.from_avro(data))
