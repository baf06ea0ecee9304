"""Row mapping is pure: the same record always gives the same rows, shaped like COLUMNS."""

from __future__ import annotations

import pytest

from analytics.rows import (
    COLUMNS,
    LOADED_ENCODED,
    MAPPERS,
    NO_POSITION,
    SOURCE_TOPICS,
    completed_rows,
    decision_rows,
    decode_message,
    message_rows,
    sphere_of,
)
from nova.errors import SchemaError
from nova.ids import uuid7, uuid7_ms
from nova.records import (
    CheckpointDecisionRecord,
    CheckpointState,
    Execution,
    GovernanceDecision,
    Intent,
    LaneTiming,
    PipelineRecord,
)
from schemas import TOPICS, load_schema_set

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


def test_every_source_topic_is_mapped_here_but_events_which_clickhouse_maps() -> None:
    assert set(MAPPERS) == {"completed", "pending", "decisions", "expiries", "audit"}
    assert (LOADED_ENCODED, *MAPPERS) == SOURCE_TOPICS
    assert LOADED_ENCODED == "events"
    for table in ("lane_events", "llm_calls", "requests", "checkpoints", "audit_events"):
        assert table in COLUMNS


def test_sphere_is_read_when_a_record_carries_one() -> None:
    rec = _record(sphere_id="sphere-9")
    assert sphere_of(rec) == "sphere-9"
    assert _named("requests", dict(completed_rows(rec))["requests"])["sphere_id"] == "sphere-9"


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
