"""The live adapter: records as the topics carry them → the documented messages, in order.

Records are built with the project's own record classes and ``to_avro`` (the dicts the feed
decodes), so a change of the record layout shows up here.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.live.adapter import Record, RecordAdapter
from gateway.live.messages import LiveMessage
from nova.records import (
    Alert,
    CheckpointDecisionRecord,
    CheckpointState,
    Event,
    Execution,
    GovernanceDecision,
    LaneEvent,
    LaneTiming,
    PipelineRecord,
)
from nova.signing import Signer

RID = "req-1"
IDENT = "identity-alice"


@pytest.fixture
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def adapter(signer: Signer) -> RecordAdapter:
    return RecordAdapter(signer.verifier.verify_decision)


class Feed:
    """Offsets per topic, as Kafka would give them."""

    def __init__(self, adapter: RecordAdapter) -> None:
        self.adapter = adapter
        self.offsets: dict[str, int] = {}
        self.ts = 1_000

    def __call__(self, topic: str, value: dict[str, Any]) -> list[LiveMessage]:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        self.ts += 1
        return self.adapter.adapt(Record(topic, 0, offset, self.ts, value))


def timing(lane: str, status: str = "ok") -> LaneTiming:
    return LaneTiming(lane=lane, status=status, started_at=1, duration_ms=0.5)


def pipeline(status: str = "accepted", lanes: str = "", **extra: Any) -> dict[str, Any]:
    return PipelineRecord(
        request_id=RID, identity_id=IDENT, user_id="user-alice", submitted_at=900,
        prompt="Pay 500 EUR to <b>Bob</b>", status=status,
        lanes=tuple(timing(lane) for lane in lanes), **extra,
    ).to_avro()


def lane_event(lane: str, status: str = "ok") -> dict[str, Any]:
    return Event(event_id=f"{RID}/lane/{lane}", kind="lane", request_id=RID, identity_id=IDENT,
                 ts=5, lane=LaneEvent(lane=lane, status=status, started_at=1, duration_ms=0.25,
                                      worker="w", error="secret error text")).to_avro()


def held(lanes: str = "ABCDE") -> dict[str, Any]:
    cp = CheckpointState(checkpoint_id="cp-1", reason="PAYMENT requires approval",
                         status="pending", created_at=1000, expires_at=2000)
    rec = pipeline("held", lanes[:-1], checkpoint=cp,
                   governance=GovernanceDecision(outcome="require_approval",
                                                 fired_rules=("builtin:payment",)))
    return {**rec, "lanes": [*rec["lanes"], timing(lanes[-1], "held").to_avro()]}


def names(messages: list[LiveMessage]) -> list[str]:
    out = []
    for m in messages:
        lane = m.data.get("lane")
        out.append(f"{m.topic}:{lane}:{m.data['status']}" if lane else m.topic)
    return out


def test_a_request_reads_start_lanes_complete_in_order(adapter: RecordAdapter) -> None:
    feed = Feed(adapter)
    got = feed("requests", pipeline())
    for lane in "ABCDEFG":
        got += feed("events", lane_event(lane))
    got += feed("completed", pipeline("completed", "ABCDEFG", execution=Execution(
        provider="anthropic", model="claude", text="the answer", cost_usd=0.01)))
    assert names(got) == ["pipeline.start", *(f"lane.complete:{x}:ok" for x in "ABCDEFG"),
                          "pipeline.complete"]
    assert got[0].data == {"user_id": "user-alice", "submitted_at": 900}
    assert got[-1].data["status"] == "completed"
    assert got[-1].data["provider"] == "anthropic"
    assert len({m.id for m in got}) == len(got)


def lanes_event(lanes: str) -> dict[str, Any]:
    return Event(event_id=f"{RID}/lanes/{len(lanes)}", kind="lanes", request_id=RID,
                 identity_id=IDENT, ts=5, lanes=tuple(
                     LaneEvent(lane=lane, status="ok", started_at=1, duration_ms=0.25, worker="w")
                     for lane in lanes)).to_avro()


@pytest.mark.parametrize("events_first", [True, False], ids=["events-first", "completed-first"])
def test_a_requests_lanes_in_one_record_read_like_single_lane_events(
    adapter: RecordAdapter, events_first: bool,
) -> None:
    """Lane G writes the lane events of a request in one ``lanes`` record after ``completed``;
    read side by side, either may come first."""
    feed = Feed(adapter)
    got = feed("requests", pipeline())
    done = ("completed", pipeline("completed", "ABCDEFG"))
    lanes = ("events", lanes_event("ABCDEFG"))
    for topic, value in (lanes, done) if events_first else (done, lanes):
        got += feed(topic, value)
    assert names(got) == ["pipeline.start", *(f"lane.complete:{x}:ok" for x in "ABCDEFG"),
                          "pipeline.complete"]


def test_content_never_leaves_in_a_message(adapter: RecordAdapter) -> None:
    feed = Feed(adapter)
    got = feed("requests", pipeline()) + feed("events", lane_event("A", "error"))
    got += feed("completed", pipeline("failed", "A", execution=Execution(text="the answer"),
                                      error="provider said: secret"))
    text = "".join(m.wire("x-1") for m in got)
    for private in ("Pay 500", "the answer", "secret"):
        assert private not in text


def test_completed_before_lane_g_event_still_reads_in_lane_order(adapter: RecordAdapter) -> None:
    """Lane G forwards its record before it writes its lane event."""
    feed = Feed(adapter)
    got = feed("requests", pipeline())
    for lane in "ABCDEF":
        got += feed("events", lane_event(lane))
    got += feed("completed", pipeline("completed", "ABCDEFG"))
    got += feed("events", lane_event("G"))  # late: announced already
    assert names(got)[-2:] == ["lane.complete:G:ok", "pipeline.complete"]
    assert len(got) == 9


def test_lane_events_before_the_request_record_still_start_with_pipeline_start(
    adapter: RecordAdapter,
) -> None:
    feed = Feed(adapter)
    got = feed("events", lane_event("A")) + feed("requests", pipeline())
    assert names(got) == ["pipeline.start", "lane.complete:A:ok"]


def test_a_held_request_announces_lane_e_then_its_checkpoint_then_the_decision(
    adapter: RecordAdapter, signer: Signer,
) -> None:
    feed = Feed(adapter)
    got = feed("requests", pipeline())
    for lane in "ABCD":
        got += feed("events", lane_event(lane))
    got += feed("pending", held())
    got += feed("events", lane_event("E", "held"))  # after the pending record: a duplicate
    decision = signer.sign_decision(CheckpointDecisionRecord(
        checkpoint_id="cp-1", request_id=RID, identity_id=IDENT, decision="approve",
        actor="user-bob", reason="<script>ok</script>", decided_at=1500))
    got += feed("decisions", decision.to_avro())
    got += feed("events", lane_event("E", "approved"))
    assert names(got)[5:] == ["lane.complete:E:held", "checkpoint.created",
                              "checkpoint.decided", "lane.complete:E:approved"]
    created, decided = got[6], got[7]
    assert created.data["fired_rules"] == ["builtin:payment"]
    assert created.data["reason"] == "PAYMENT requires approval"
    assert created.user_id == decided.user_id == "user-alice"
    assert decided.data["decision"] == "approve"
    assert decided.data["actor"] == "user-bob"


def test_an_unsigned_or_forged_decision_is_never_announced(adapter: RecordAdapter) -> None:
    feed = Feed(adapter)
    feed("pending", held())
    forged = CheckpointDecisionRecord(
        checkpoint_id="cp-1", request_id=RID, identity_id=IDENT, decision="approve",
        actor="mallory", decided_at=1500)
    assert feed("decisions", forged.to_avro()) == []
    other = Signer(Ed25519PrivateKey.generate()).sign_decision(forged)
    assert feed("decisions", other.to_avro()) == []
    # and the expiries topic carries expiries only
    assert feed("expiries", forged.to_avro()) == []


def test_an_expiry_is_a_decision_without_an_actor(adapter: RecordAdapter) -> None:
    feed = Feed(adapter)
    feed("pending", held())
    expiry = CheckpointDecisionRecord(checkpoint_id="cp-1", request_id=RID, identity_id=IDENT,
                                      decision="expire", actor="lane-e", decided_at=2001)
    [msg] = feed("expiries", expiry.to_avro())
    assert msg.topic == "checkpoint.decided"
    assert msg.data["decision"] == "expire"
    assert msg.data["actor"] is None
    assert feed("expiries", expiry.to_avro()) == []  # re-sent by a sweep: once


def test_a_worker_resending_records_changes_nothing(adapter: RecordAdapter) -> None:
    feed = Feed(adapter)
    first = feed("requests", pipeline()) + feed("events", lane_event("A"))
    again = feed("requests", pipeline()) + feed("events", lane_event("A"))
    done = feed("completed", pipeline("completed", "A"))
    assert len(first) == 2
    assert again == []
    assert names(done) == ["pipeline.complete"]
    assert feed("completed", pipeline("completed", "A")) == []


def test_budget_and_health_alerts(adapter: RecordAdapter) -> None:
    feed = Feed(adapter)
    soft = Event(event_id=f"{RID}/alert/0", kind="alert", request_id=RID, identity_id=IDENT,
                 ts=7, alert=Alert(alert_type="BUDGET_SOFT_LIMIT", subject="daily",
                                   message="spent 4 of 5"))
    hard = soft.model_copy(update={"alert": Alert(alert_type="BUDGET_EXCEEDED", subject="daily",
                                                  message="blocked", severity="high")})
    health = Event(event_id="provider-health/openai/down/1", kind="alert",
                   request_id="provider-health/openai", identity_id="system", ts=42,
                   alert=Alert(alert_type="PROVIDER_HEALTH", subject="openai", message="down",
                               severity="high"))
    boundary = soft.model_copy(update={"alert": Alert(alert_type="IDENTITY_BOUNDARY",
                                                      subject="x", message="y")})
    [w] = feed("events", soft.to_avro())
    [x] = feed("events", hard.to_avro())
    [h] = feed("events", health.to_avro())
    assert feed("events", boundary.to_avro()) == []
    assert (w.topic, w.identity, w.data["budget"]) == ("budget.warning", IDENT, "daily")
    assert x.topic == "budget.exceeded"
    assert (h.topic, h.identity, h.request_id, h.ts) == ("provider.health", "system", None, 42)
    assert h.data == {"provider": "openai", "status": "down", "severity": "high"}


def test_a_completed_requests_trail_goes_after_the_retention_an_open_one_stays(
    signer: Signer,
) -> None:
    now = [0.0]
    adapter = RecordAdapter(signer.verifier.verify_decision, retain_s=120, clock=lambda: now[0])
    feed = Feed(adapter)
    feed("requests", {**pipeline(), "request_id": "open"})
    feed("completed", {**pipeline(), "request_id": "done", "status": "completed"})
    now[0] = 121.0
    feed("requests", {**pipeline(), "request_id": "new"})
    assert set(adapter._trails) == {"open", "new"}
    assert [m.topic for m in feed("completed", {**pipeline(), "request_id": "open",
                                                "status": "completed"})
            ].count("pipeline.complete") == 1


def test_trails_are_bounded(signer: Signer) -> None:
    adapter = RecordAdapter(signer.verifier.verify_decision, capacity=3)
    feed = Feed(adapter)
    for i in range(10):
        feed("requests", {**pipeline(), "request_id": f"r{i}"})
    assert len(adapter._trails) == 3
