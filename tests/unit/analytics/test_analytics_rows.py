"""Row mapping is pure: the same record always gives the same rows, shaped like COLUMNS."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import fastavro
import pytest

from analytics.rows import (
    COLUMNS,
    MAPPERS,
    NO_POSITION,
    Position,
    audit_rows,
    completed_rows,
    decision_rows,
    decode_message,
    event_rows,
    message_rows,
    pending_rows,
    sphere_of,
)
from nova.errors import SchemaError
from nova.ids import uuid7, uuid7_ms
from nova.records import (
    Alert,
    AuditRecord,
    CheckpointDecisionRecord,
    CheckpointState,
    Event,
    Execution,
    GovernanceDecision,
    Intent,
    LaneEvent,
    LaneTiming,
    LlmCall,
    PipelineRecord,
)
from schemas import TOPICS, load_schema_set
from schemas.codec import SCHEMA_HEADER, VERSIONS_DIR, schema_fingerprint

RID = uuid7(1_735_689_600_000)  # 2025-01-01T00:00:00Z


def _named(table: str, row: list[object]) -> dict[str, object]:
    assert len(row) == len(COLUMNS[table]), table
    return dict(zip(COLUMNS[table], row, strict=True))


def _record(**update: object) -> PipelineRecord:
    base = PipelineRecord(
        request_id=RID, identity_id="id-1", user_id="u-1", submitted_at=1_735_689_600_000,
        prompt="hello", status="completed",
        intent=Intent(task_type="analysis", action="READ", confidence=0.9),
        governance=GovernanceDecision(outcome="allow"),
        execution=Execution(provider="anthropic", model="m", cost_usd=0.01, tokens_in=3,
                            tokens_out=4, attempts=2),
        lanes=(LaneTiming(lane="A", status="ok", started_at=1_735_689_600_010, duration_ms=5.5),),
    )
    return base.model_copy(update=update)


def test_every_source_topic_has_a_mapper_and_every_table_columns() -> None:
    assert set(MAPPERS) == {"events", "completed", "pending", "decisions", "expiries", "audit"}
    for table in ("lane_events", "llm_calls", "requests", "checkpoints", "audit_events"):
        assert table in COLUMNS


def test_lane_event_row_keeps_identity_and_dates_by_request_id() -> None:
    ev = Event(event_id=f"{RID}/lane/B", kind="lane", request_id=RID, identity_id="id-1",
               ts=1_735_689_700_000, lane=LaneEvent(lane="B", status="ok",
                                                    started_at=1_735_689_650_000,
                                                    duration_ms=2.5, worker="w1"))
    [(table, row)] = event_rows(ev)
    r = _named(table, row)
    assert table == "lane_events"
    assert r["request_ts"] == datetime(2025, 1, 1, tzinfo=UTC)
    assert r["version"] == ev.ts
    assert r["sphere_id"] is None
    assert event_rows(ev) == event_rows(ev)  # pure: re-consumption yields the same row


def test_one_lanes_event_is_one_row_per_lane_equal_to_the_single_lane_events_of_before() -> None:
    lanes = tuple(LaneEvent(lane=code, status=status, started_at=1_735_689_650_000 + i,
                            duration_ms=1.0 + i, worker=f"w{i % 2}",
                            error="boom" if status == "error" else None)
                  for i, (code, status) in enumerate([("A", "ok"), ("B", "ok"), ("C", "error")]))
    batch = Event(event_id=f"{RID}/lanes/3", kind="lanes", request_id=RID, identity_id="id-1",
                  ts=1_735_689_700_000, lanes=lanes)
    singles = [Event(event_id=f"{RID}/lane/{ln.lane}", kind="lane", request_id=RID,
                     identity_id="id-1", ts=batch.ts, lane=ln) for ln in lanes]
    assert event_rows(batch) == [row for ev in singles for row in event_rows(ev)]
    assert [_named(t, r)["worker"] for t, r in event_rows(batch)] == ["w0", "w1", "w0"]
    assert [_named(t, r)["error"] for t, r in event_rows(batch)] == [None, None, "boom"]


def test_llm_event_maps_every_attempt_field() -> None:
    call = LlmCall(provider="openai", model="gpt", role="member", task_type="code", tokens_in=10,
                   tokens_out=20, cost_usd=0.002, latency_ms=123.0, attempt=2,
                   fallback_from="anthropic", status="ok")
    ev = Event(event_id=f"{RID}/llm/2", kind="llm", request_id=RID, identity_id="id-1",
               ts=1_735_689_700_000, llm=call)
    [(table, row)] = event_rows(ev)
    r = _named(table, row)
    assert table == "llm_calls"
    assert (r["provider"], r["attempt"], r["fallback_from"], r["cost_usd"]) == (
        "openai", 2, "anthropic", 0.002)


def test_alert_and_empty_events() -> None:
    alert = Event(event_id="e1", kind="alert", request_id=RID, identity_id="id-1", ts=1,
                  alert=Alert(alert_type="budget", subject="id-1", message="80%"))
    assert event_rows(alert)[0][0] == "alerts"
    empty = Event(event_id="e2", kind="lane", request_id=RID, identity_id="i", ts=1)
    assert event_rows(empty) == []


def test_completed_row_summarises_the_request() -> None:
    [(table, row)] = completed_rows(_record(
        status="denied",
        governance=GovernanceDecision(outcome="deny", fired_rules=("no-secrets", "pii")),
    ))
    r = _named(table, row)
    assert table == "requests"
    assert r["fired_rules"] == ["no-secrets", "pii"]
    assert r["governance"] == "deny"
    assert r["latency_ms"] == 15.0  # submitted +10 ms, lane A took 5.5 ms (truncated to 5)
    assert r["version"] == 1_735_689_600_015


def test_answer_and_error_text_go_to_the_private_table_only() -> None:
    """Analysts read ``requests``; the answer and error text are ``request_content``'s."""
    answered = _record(execution=Execution(provider="anthropic", model="m", cost_usd=0.01,
                                           tokens_in=3, tokens_out=4, attempts=1,
                                           text="the answer"))
    rows = dict(completed_rows(answered))
    assert set(rows) == {"requests", "request_content"}
    assert "result" not in COLUMNS["requests"]
    assert "error" not in COLUMNS["requests"]
    content = _named("request_content", rows["request_content"])
    assert (content["result"], content["error"], content["identity_id"]) == (
        "the answer", None, "id-1")
    assert content["version"] == _named("requests", rows["requests"])["version"]
    denied = dict(completed_rows(_record(status="denied", execution=None,
                                         error="SECRET_DETECTED: password")))
    assert _named("request_content", denied["request_content"])["error"] == (
        "SECRET_DETECTED: password")
    assert set(dict(completed_rows(_record())).keys()) == {"requests"}  # nothing to keep


def test_pending_row_brings_reason_and_clock_but_no_decision() -> None:
    cp = CheckpointState(checkpoint_id="cp-1", reason="high_cost", status="pending",
                         created_at=1_735_689_601_000, expires_at=1_735_776_001_000)
    [(table, row)] = pending_rows(_record(status="held", checkpoint=cp))
    r = _named(table, row)
    assert table == "checkpoints"
    assert r["reason"] == "high_cost"
    assert r["decided_status"] is None  # 'pending' is derived, so a late decision wins
    assert r["decided_by"] is None
    assert pending_rows(_record(status="held")) == []  # no checkpoint section, no row


def test_decision_row_leaves_pending_columns_null() -> None:
    dec = CheckpointDecisionRecord(checkpoint_id="cp-1", request_id=RID, identity_id="id-1",
                                   decision="reject", actor="bob", reason="too dear",
                                   decided_at=1_735_689_900_000)
    [(table, row)] = decision_rows(dec)
    r = _named(table, row)
    assert r["decided_status"] == "rejected"
    assert (r["reason"], r["created_at"], r["expires_at"]) == (None, None, None)
    assert r["decided_by"] == "bob"
    assert r["decision_reason"] == "too dear"


@pytest.mark.parametrize(("decision", "status"),
                         [("approve", None), ("reject", "rejected"), ("expire", "expired")])
def test_decision_vocabulary(decision: str, status: str | None) -> None:
    """An approval alone approves nothing (four eyes): lane E's final record says approved."""
    dec = CheckpointDecisionRecord(checkpoint_id="c", request_id=RID, identity_id="i",
                                   decision=decision, actor="a", decided_at=1)
    assert _named("checkpoints", decision_rows(dec)[0][1])["decided_status"] == status


def test_audit_row_keeps_kafka_position() -> None:
    rec = AuditRecord(audit_id="a1", kind="GOVERNANCE", request_id=RID, identity_id="id-1",
                      ts=1_735_689_600_000, detail="{}", prev_hash="0" * 64, hash="f" * 64)
    r = _named("audit_events", audit_rows(rec, Position(3, 42))[0][1])
    assert (r["partition"], r["offset"]) == (3, 42)
    assert _named("audit_events", audit_rows(rec, NO_POSITION)[0][1])["offset"] == 0


def test_sphere_is_read_when_a_record_carries_one() -> None:
    class WithSphere(Event):
        sphere_id: str | None = None

    ev = WithSphere(event_id="e", kind="lane", request_id=RID, identity_id="i", ts=1,
                    sphere_id="sphere-9",
                    lane=LaneEvent(lane="A", status="ok", started_at=1, duration_ms=1, worker="w"))
    assert sphere_of(ev) == "sphere-9"
    assert _named("lane_events", event_rows(ev)[0][1])["sphere_id"] == "sphere-9"


def test_decode_then_map_is_the_shared_path() -> None:
    schemas = load_schema_set()
    codec = schemas[TOPICS["decisions"].value_schema]
    dec = CheckpointDecisionRecord(checkpoint_id="c", request_id=RID, identity_id="i",
                                   decision="approve", actor="a", decided_at=5)
    value = codec.encode(dec.to_avro())
    assert decode_message(schemas, "decisions", value, [codec.header]) == dec
    assert message_rows(schemas, "decisions", value, [codec.header], NO_POSITION) == \
        decision_rows(dec)
    with pytest.raises(SchemaError):
        decode_message(schemas, "decisions", b"\x00garbage", [codec.header])


def test_request_ts_comes_from_the_uuid7() -> None:
    assert uuid7_ms(RID) == 1_735_689_600_000


def test_the_completed_record_states_the_checkpoint_as_lane_e_decided_it() -> None:
    cp = CheckpointState(checkpoint_id="c", reason="PAYMENT", status="approved",
                         created_at=1_735_689_600_000, expires_at=1_735_776_000_000,
                         decided_by="carol", decided_at=1_735_689_700_000,
                         approvals_required=2, approvals=("bob", "carol"))
    rec = PipelineRecord(request_id=RID, identity_id="i", user_id="alice", submitted_at=1,
                         prompt="pay", status="completed", checkpoint=cp)
    rows = dict(completed_rows(rec))
    r = _named("checkpoints", rows["checkpoints"])
    assert (r["decided_status"], r["decided_by"]) == ("approved", "carol")
    assert r["reason"] is None, "the pending row's columns are left alone"
    assert "checkpoints" not in dict(completed_rows(rec.model_copy(update={"checkpoint": None})))


def _every_kind_of_event() -> list[Event]:
    lane = LaneEvent(lane="B", status="error", started_at=1_735_689_650_000, duration_ms=2.5,
                     worker="w1", error="boom")
    call = LlmCall(provider="openai", model="gpt", tokens_in=1, tokens_out=2, cost_usd=0.5,
                   latency_ms=3.0, attempt=1, status="ok")
    return [
        Event(event_id="e1", kind="lane", request_id=RID, identity_id="i", ts=1, lane=lane),
        Event(event_id="e2", kind="lanes", request_id=RID, identity_id="i", ts=2,
              lanes=(lane, lane.model_copy(update={"lane": "C", "error": None}))),
        Event(event_id="e3", kind="llm", request_id=RID, identity_id="i", ts=3, llm=call),
        Event(event_id="e4", kind="alert", request_id=RID, identity_id="i", ts=4,
              alert=Alert(alert_type="budget", subject="i", message="80%")),
    ]


@pytest.mark.parametrize("event", _every_kind_of_event(), ids=lambda e: e.kind)
def test_the_sink_maps_a_decoded_event_like_the_record_it_was_written_from(event: Event) -> None:
    codec = load_schema_set()[TOPICS["events"].value_schema]
    fast = message_rows(load_schema_set(), "events", codec.encode(event.to_avro()),
                        [codec.header], Position(0, 1))
    assert fast == event_rows(event)
    assert fast  # every kind maps to at least one row


def test_a_lane_event_written_with_the_first_event_schema_still_lands() -> None:
    v1 = fastavro.parse_schema(json.loads((VERSIONS_DIR / "event.v1.avsc").read_text()))
    old = _every_kind_of_event()[0]
    data = old.to_avro()
    del data["lanes"]
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v1, data)
    rows = message_rows(load_schema_set(), "events", buf.getvalue(),
                        [(SCHEMA_HEADER, schema_fingerprint(v1).encode())], NO_POSITION)
    assert rows == event_rows(old)
