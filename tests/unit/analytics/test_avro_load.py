"""The events records are framed for ClickHouse without being decoded: an Avro object
container of the records' own bytes, one block each, named by their writer schema."""

from __future__ import annotations

import io
import json

import fastavro
import pytest

from analytics.avro_load import Encoded, EncodedEvents, container, events_codec, undecodable
from nova.errors import SchemaError, UnknownSchemaError
from nova.records import Event, LaneEvent
from schemas import load_schema_set
from schemas.codec import SCHEMA_HEADER, VERSIONS_DIR, schema_fingerprint

CODEC = events_codec(load_schema_set())


def _events(n: int) -> list[Event]:
    return [Event(event_id=f"r{i}/lanes/2", kind="lanes", request_id=f"r{i}", identity_id="i",
                  ts=i, lanes=tuple(LaneEvent(lane=code, status="ok", started_at=i,
                                              duration_ms=0.5 * i, worker="w" * i)
                                    for code in "AB"))
            for i in range(n)]


def _encoded(value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> Encoded:
    return Encoded(value=value, headers=tuple([CODEC.header] if headers is None else headers))


def test_a_container_is_an_avro_file_of_the_records_bytes_one_block_each() -> None:
    events = _events(5)
    data = container(CODEC.current, [CODEC.encode(e.to_avro()) for e in events])
    blocks = list(fastavro.block_reader(io.BytesIO(data)))
    assert [b.num_records for b in blocks] == [1] * 5  # a bad record cannot shift the next
    assert [Event.from_avro(r) for b in blocks for r in b if isinstance(r, dict)] == events


def test_the_container_names_the_records_writer_schema_by_its_canonical_form() -> None:
    v1 = fastavro.parse_schema(json.loads((VERSIONS_DIR / "event.v1.avsc").read_text()))
    reader = fastavro.reader(io.BytesIO(container(v1, [])))
    named = fastavro.parse_schema(reader.writer_schema)
    assert schema_fingerprint(named) == schema_fingerprint(v1)
    assert list(reader) == []


@pytest.mark.parametrize(("record", "error"), [
    (_encoded(None), SchemaError),
    (_encoded(b"\x00", headers=[]), SchemaError),
    (_encoded(b"\x00", headers=[(SCHEMA_HEADER, b"not-a-schema-we-know")]), UnknownSchemaError),
], ids=["tombstone", "no schema header", "unknown writer"])
def test_a_record_no_container_can_carry_is_refused_at_once(record: Encoded,
                                                            error: type[Exception]) -> None:
    events = EncodedEvents()
    with pytest.raises(error):
        events.add(CODEC, record)
    assert len(events) == 0


def test_after_a_failed_insert_the_python_decoder_names_the_bad_records_only() -> None:
    good = [_encoded(CODEC.encode(e.to_avro())) for e in _events(3)]
    truncated = _encoded(good[1].value[:7])  # type: ignore[index]
    events = EncodedEvents()
    for record in (good[0], truncated, good[1], good[2]):
        events.add(CODEC, record)
    bad = undecodable(CODEC, events)
    assert [record for record, _ in bad] == [truncated]
    events.remove([truncated])
    assert len(events) == 3
    assert undecodable(CODEC, events) == []
    [data] = events.containers(CODEC)
    assert len(list(fastavro.reader(io.BytesIO(data)))) == 3
