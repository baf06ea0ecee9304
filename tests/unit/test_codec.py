"""The Avro codec: what a lane can trust about a record's bytes, without a broker.

Every consumer decodes with ``AvroCodec.decode``; a record it cannot trust must raise
``SchemaError`` (never return half a record), because that exception is what routes the bytes
to the dead-letter topic instead of into a lane.
"""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest
from fastavro.utils import generate_many

from nova.errors import SchemaError, UnknownSchemaError
from nova.records import (
    ContextSnapshot,
    EncodedPrompt,
    Event,
    GovernanceDecision,
    Intent,
    LaneEvent,
    LaneTiming,
    Message,
    PipelineRecord,
)
from schemas import SCHEMA_HEADER, TOPICS, load_schema_set
from schemas.codec import SCHEMA_DIR, AvroCodec, schema_fingerprint

SCHEMAS = load_schema_set()
FAMILIES = sorted(p.stem for p in SCHEMA_DIR.glob("*.avsc"))


def full_record() -> PipelineRecord:
    """A request with every section a lane fills, so nested records are exercised."""
    return PipelineRecord(
        request_id="0192d1c4-5a7e-7000-8000-000000000001",
        identity_id="identity-alice",
        user_id="user-alice",
        submitted_at=1_760_000_000_000,
        prompt="Summarise this thread ✓",
        declared_action="READ",
        dataspace_ids=("ds-1", "ds-2"),
        status="completed",
        intent=Intent(task_type="analysis", action="READ", confidence=0.9, reasons=("verb",)),
        context=ContextSnapshot(text="ctx", token_count=3, item_count=1, truncated=False,
                                sources=("thread:1",)),
        encoded=EncodedPrompt(messages=(Message(role="system", content="s"),
                                        Message(role="user", content="u")), token_estimate=7),
        governance=GovernanceDecision(outcome="allow", fired_rules=(), reasons=("ok",)),
        lanes=tuple(LaneTiming(lane=c, status="ok", started_at=1_760_000_000_000 + i,
                               duration_ms=0.5) for i, c in enumerate("ABCDEFG")),
    )


def test_pipeline_record_round_trips_through_bytes() -> None:
    codec = SCHEMAS["pipeline_record"]
    rec = full_record()
    payload = codec.encode(rec.to_avro())
    assert PipelineRecord.from_avro(codec.decode(payload, [codec.header])) == rec


def test_event_round_trips_with_mapping_headers() -> None:
    codec = SCHEMAS["event"]
    ev = Event(event_id="r/lane/A", kind="lane", request_id="r", identity_id="i", ts=1,
               lane=LaneEvent(lane="A", status="ok", started_at=1, duration_ms=0.25, worker="w"))
    decoded = codec.decode(codec.encode(ev.to_avro()), dict([codec.header]))
    assert Event.from_avro(decoded) == ev


@pytest.mark.parametrize("family", FAMILIES)
def test_every_schema_family_round_trips_generated_records(family: str) -> None:
    """Random records of every schema (new ones included) survive encode → decode unchanged."""
    codec = SCHEMAS[family]
    for record in generate_many(codec.current, 25):
        assert codec.decode(codec.encode(record), [codec.header]) == record


def test_every_topic_names_a_schema_that_exists() -> None:
    assert {spec.value_schema for spec in TOPICS.values()} <= set(FAMILIES)


def test_header_carries_the_current_schema_fingerprint() -> None:
    codec = SCHEMAS["pipeline_record"]
    name, value = codec.header
    assert name == SCHEMA_HEADER
    assert value.decode() == schema_fingerprint(codec.current)
    assert value.decode() in codec.writers


def test_missing_header_is_a_schema_error() -> None:
    codec = SCHEMAS["pipeline_record"]
    payload = codec.encode(full_record().to_avro())
    cases: tuple[Any, ...] = (None, [], [("other", b"x")], {})
    for headers in cases:
        with pytest.raises(SchemaError, match=SCHEMA_HEADER):
            codec.decode(payload, headers)


def test_unknown_writer_schema_is_a_schema_error() -> None:
    codec = SCHEMAS["pipeline_record"]
    payload = codec.encode(full_record().to_avro())
    with pytest.raises(UnknownSchemaError, match="unknown writer schema"):
        codec.decode(payload, [(SCHEMA_HEADER, b"12345")])
    assert issubclass(UnknownSchemaError, SchemaError)  # callers catch one type


def test_another_familys_fingerprint_is_unknown() -> None:
    """An event on a pipeline topic is not silently read as a pipeline record."""
    codec = SCHEMAS["pipeline_record"]
    with pytest.raises(UnknownSchemaError):
        codec.decode(b"\x00", [SCHEMAS["event"].header])


def test_trailing_garbage_is_a_schema_error() -> None:
    codec = SCHEMAS["pipeline_record"]
    payload = codec.encode(full_record().to_avro())
    with pytest.raises(SchemaError, match="trailing bytes"):
        codec.decode(payload + b"\x00garbage", [codec.header])


@pytest.mark.parametrize("payload", [b"", b"\x00garbage", b"\xff" * 16, b"\x02x"])
def test_garbage_with_a_valid_header_is_a_schema_error(payload: bytes) -> None:
    codec = SCHEMAS["pipeline_record"]
    with pytest.raises(SchemaError):
        codec.decode(payload, [codec.header])


def test_tombstone_is_a_schema_error() -> None:
    codec = SCHEMAS["pipeline_record"]
    with pytest.raises(SchemaError, match="tombstone"):
        codec.decode(None, [codec.header])


def test_encoding_a_record_that_does_not_fit_is_a_schema_error() -> None:
    codec = SCHEMAS["pipeline_record"]
    with pytest.raises(SchemaError, match="does not match"):
        codec.encode({"request_id": 42})


def test_an_older_writer_is_resolved_to_the_current_schema() -> None:
    """The mechanism ``schemas/versions/`` relies on: old bytes, old header, current reader."""
    current = fastavro.parse_schema({
        "type": "record", "name": "R", "namespace": "t", "fields": [
            {"name": "a", "type": "string"},
            {"name": "b", "type": ["null", "string"], "default": None},
        ]})
    old = fastavro.parse_schema({
        "type": "record", "name": "R", "namespace": "t",
        "fields": [{"name": "a", "type": "string"}]})
    old_id, current_id = schema_fingerprint(old), schema_fingerprint(current)
    assert old_id != current_id
    codec = AvroCodec(name="r", current=current, current_id=current_id,
                      writers={old_id: old, current_id: current})
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, old, {"a": "x"})
    assert codec.decode(buf.getvalue(), [(SCHEMA_HEADER, old_id.encode())]) == {"a": "x", "b": None}


def test_readme_documents_every_topic() -> None:
    readme = (SCHEMA_DIR.parent / "README.md").read_text()
    missing = [name for name in TOPICS if f"`{name}`" not in readme]
    assert missing == [], f"add to 'Topics and keying' in README.md: {missing}"
