"""Kafka records → live messages: the one module that knows how the topics lay out events.

The record layout of the pipeline topics is the speed work's to change (lane events may move
into headers or be batched, ``docs/live.md``); the wire schema of ``/api/v2/ws`` must not. So
the feed hands every record, as a :class:`Record` (its logical topic, decoded value, headers
and Kafka coordinates), to :class:`RecordAdapter`, and only this module turns them into
:class:`~gateway.live.messages.LiveMessage` values. A layout change is a change here.

Sources today:

==================  ===========================================================================
``requests``        ``pipeline.start``
``events``          ``lane.complete`` (a request's lane events, written in one ``lanes`` record
                    when it leaves the lanes; single ``lane`` records before event v2),
                    ``budget.warning`` / ``budget.exceeded``
                    (budget alerts), ``provider.health`` (probe announcements)
``pending``         ``checkpoint.created``
``decisions``       ``checkpoint.decided`` (approve, reject), only when the signature verifies:
                    a forged approval is never announced
``expiries``        ``checkpoint.decided`` (expire)
``completed``       ``pipeline.complete``
==================  ===========================================================================

**In order per request.** The records of one request are on one partition of each topic, but
on several topics, which a consumer reads side by side; and lane G forwards its record before
it writes the lane events, so the ``completed`` record is on Kafka before them. Lanes are
announced when the request leaves the lanes (held or completed), not as each runs: the
pipeline writes no record per lane any more (issue 9), and the lanes of a request take
milliseconds.
The adapter therefore keeps a small trail per request (bounded, oldest evicted) and makes the
order hold: a request's first message is always ``pipeline.start`` (written for it if the
``requests`` record comes later, or was before this gateway started); the held and completed
records carry every lane's timing, so lanes not announced yet are announced from them before
``checkpoint.created`` or ``pipeline.complete``; a lane event already announced that way, or
re-sent by a worker after a crash, is dropped. Each (lane, status) is announced once: lane E
speaks twice for a held request (``held``, then ``approved``, ``rejected`` or ``expired``).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.live.messages import SYSTEM_IDENTITY, LiveMessage, LiveTopic
from nova.errors import SignatureError
from nova.records import CheckpointDecisionRecord
from schemas.topics import LANE_NAMES

log = logging.getLogger(__name__)

SOURCE_TOPICS: Final = ("requests", "events", "pending", "decisions", "expiries", "completed")
BUDGET_ALERTS: Final[dict[str, LiveTopic]] = {
    "BUDGET_SOFT_LIMIT": "budget.warning",
    "BUDGET_EXCEEDED": "budget.exceeded",
}
HEALTH_ALERT: Final = "PROVIDER_HEALTH"
FINAL: Final = frozenset({"completed", "denied", "rejected", "expired", "failed",
                          "budget_exceeded"})

Verify = Callable[[CheckpointDecisionRecord], None]
Submitter = Callable[[str], str | None]  # checkpoint id → the user who submitted its request


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record as the adapter needs it; ``value`` is the decoded Avro dict."""

    topic: str  # logical: "events", not "nova.events"
    partition: int
    offset: int
    timestamp: int  # Kafka's, epoch ms
    value: Mapping[str, Any]
    headers: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def coordinates(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(slots=True)
class _Trail:
    identity: str
    user_id: str | None = None
    started: bool = False
    lanes: set[tuple[str, str]] = field(default_factory=set)
    created: set[str] = field(default_factory=set)  # checkpoint ids announced
    decided: set[tuple[str, str, str]] = field(default_factory=set)
    completed: bool = False
    touched: float = 0.0  # the clock's reading at the trail's last record


class RecordAdapter:
    """Stateful (the per-request trails) but free of I/O: unit-tested with plain dicts."""

    def __init__(
        self,
        verify: Verify,
        submitter: Submitter = lambda _checkpoint_id: None,
        *,
        capacity: int = 100_000,
        retain_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verify = verify
        self.submitter = submitter
        self.capacity = capacity
        # A completed request's trail only dedupes copies of its records, which come within
        # seconds: it goes ``retain_s`` after its last record, as the tracker's views do, so
        # the trails are not the last 100,000 requests' (``bench/soak.py``).
        self.retain_s = retain_s
        self.clock = clock
        self._trails: OrderedDict[str, _Trail] = OrderedDict()

    def adapt(self, record: Record) -> list[LiveMessage]:
        """The messages ``record`` stands for, in the order they must be delivered."""
        out = _Out(record)
        value = record.value
        if record.topic == "events":
            self._event(value, out)
        elif record.topic in ("requests", "pending", "completed"):
            self._pipeline(record.topic, value, out)
        elif record.topic in ("decisions", "expiries"):
            self._decision(record.topic, value, out)
        return out.messages

    # -- per source ------------------------------------------------------------------------
    def _pipeline(self, topic: str, value: Mapping[str, Any], out: _Out) -> None:
        rid, identity = str(value["request_id"]), str(value["identity_id"])
        trail = self._trail(rid, identity, value.get("user_id"))
        self._start(trail, rid, out, value.get("submitted_at"))
        if topic == "requests":
            return
        self._lanes_from(trail, rid, value.get("lanes") or (), out)
        if topic == "pending":
            cp = value.get("checkpoint")
            if cp is None or cp["checkpoint_id"] in trail.created:
                return
            trail.created.add(cp["checkpoint_id"])
            governance = value.get("governance") or {}
            intent = value.get("intent") or {}
            out.add("checkpoint.created", identity, rid, user_id=trail.user_id, data={
                "checkpoint_id": cp["checkpoint_id"],
                "user_id": trail.user_id,
                "reason": cp["reason"],
                "action": intent.get("action"),
                "fired_rules": list(governance.get("fired_rules") or ()),
                "approvals_required": cp.get("approvals_required", 1),
                "created_at": cp["created_at"],
                "expires_at": cp["expires_at"],
            })
            return
        if trail.completed or value.get("status") not in FINAL:
            return
        trail.completed = True
        ex = value.get("execution") or {}
        submitted = value.get("submitted_at")
        out.add("pipeline.complete", identity, rid, user_id=trail.user_id, data={
            "status": value["status"],
            "provider": ex.get("provider"),
            "model": ex.get("model"),
            "tokens_in": ex.get("tokens_in", 0),
            "tokens_out": ex.get("tokens_out", 0),
            "cost_usd": ex.get("cost_usd", 0.0),
            "attempts": ex.get("attempts", 0),
            "llm_latency_ms": ex.get("latency_ms", 0.0),
            "duration_ms": out.record.timestamp - submitted if submitted else None,
        })

    def _event(self, value: Mapping[str, Any], out: _Out) -> None:
        rid, identity = str(value["request_id"]), str(value["identity_id"])
        lane, alert = value.get("lane"), value.get("alert")
        lanes = (lane,) if value.get("kind") == "lane" and lane is not None else (
            tuple(value.get("lanes") or ()) if value.get("kind") == "lanes" else ())
        if lanes:  # one lane event (before event v2), or a request's lanes in one record
            trail = self._trail(rid, identity, None)
            self._start(trail, rid, out, None)
            self._lanes_from(trail, rid, lanes, out)
        elif value.get("kind") == "alert" and alert is not None:
            kind = alert["alert_type"]
            if kind in BUDGET_ALERTS:
                out.add(BUDGET_ALERTS[kind], identity, rid, data={
                    "budget": alert["subject"], "message": alert["message"],
                    "severity": alert["severity"]})
            elif kind == HEALTH_ALERT:
                out.add("provider.health", SYSTEM_IDENTITY, None, ts=int(value["ts"]), data={
                    "provider": alert["subject"], "status": alert["message"],
                    "severity": alert["severity"]})

    def _decision(self, topic: str, value: Mapping[str, Any], out: _Out) -> None:
        decision = str(value["decision"])
        if topic == "expiries" and decision != "expire":
            return  # the expiries topic carries nothing else (lane E audits a forgery)
        if topic == "decisions":
            if decision not in ("approve", "reject"):
                return
            try:
                self.verify(CheckpointDecisionRecord.from_avro(dict(value)))
            except (SignatureError, ValueError) as exc:
                log.warning("live: unverified decision on %s not announced: %s",
                            value.get("checkpoint_id"), exc)
                return
        rid, identity, cp_id = (str(value["request_id"]), str(value["identity_id"]),
                                str(value["checkpoint_id"]))
        trail = self._trail(rid, identity, None)
        key = (cp_id, decision, str(value["actor"]))
        if key in trail.decided:
            return
        trail.decided.add(key)
        if trail.user_id is None:
            trail.user_id = self.submitter(cp_id)
        out.add("checkpoint.decided", identity, rid, user_id=trail.user_id, data={
            "checkpoint_id": cp_id,
            "decision": decision,
            "actor": value["actor"] if decision != "expire" else None,
            "reason": value.get("reason"),
            "decided_at": value["decided_at"],
        })

    # -- ordering ----------------------------------------------------------------------------
    def _trail(self, rid: str, identity: str, user_id: Any) -> _Trail:
        now = self.clock()
        trail = self._trails.get(rid)
        if trail is None:
            trail = self._trails[rid] = _Trail(identity)
            self._expire(now)
        else:
            self._trails.move_to_end(rid)
        trail.touched = now
        if user_id is not None and trail.user_id is None:
            trail.user_id = str(user_id)
        return trail

    def _expire(self, now: float) -> None:
        """Drop the oldest trails while over capacity, and completed ones past ``retain_s``
        (the map is in order of last record); an old one still open (held for days) moves
        to the back instead, so it never shields the completed ones behind it."""
        trails = self._trails
        for _ in range(len(trails)):
            rid, oldest = next(iter(trails.items()))
            if len(trails) > self.capacity:
                trails.popitem(last=False)
            elif now - oldest.touched < self.retain_s:
                return
            elif oldest.completed:
                trails.popitem(last=False)
            else:
                trails.move_to_end(rid)
                oldest.touched = now

    @staticmethod
    def _start(trail: _Trail, rid: str, out: _Out, submitted_at: Any) -> None:
        if trail.started:
            return
        trail.started = True
        out.add("pipeline.start", trail.identity, rid, user_id=trail.user_id, data={
            "user_id": trail.user_id, "submitted_at": submitted_at})

    @staticmethod
    def _lanes_from(
        trail: _Trail, rid: str, lanes: Iterable[Mapping[str, Any]], out: _Out
    ) -> None:
        for lane in lanes:
            key = (str(lane["lane"]), str(lane["status"]))
            if key in trail.lanes:
                continue
            trail.lanes.add(key)
            out.add("lane.complete", trail.identity, rid, user_id=trail.user_id, data={
                "lane": key[0],
                "name": LANE_NAMES.get(key[0], key[0]),
                "status": key[1],
                "started_at": lane["started_at"],
                "duration_ms": round(float(lane["duration_ms"]), 3),
            })


class _Out:
    """The messages of one record, numbered within it for their stable ids."""

    def __init__(self, record: Record) -> None:
        self.record = record
        self.messages: list[LiveMessage] = []

    def add(self, topic: LiveTopic, identity: str, request_id: str | None, *,
            data: dict[str, Any], user_id: str | None = None, ts: int | None = None) -> None:
        self.messages.append(LiveMessage(
            topic=topic,
            id=f"{self.record.coordinates}/{len(self.messages)}",
            ts=self.record.timestamp if ts is None else ts,
            identity=identity,
            request_id=request_id,
            data=data,
            user_id=user_id,
        ))
