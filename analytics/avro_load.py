"""Records of the events topic handed to ClickHouse as they are on Kafka, for it to decode.

The events topic is most of what the sink reads (a request's lanes record and its LLM calls),
and decoding it in Python (fastavro, ~45 µs for a lanes record) and mapping the result to rows
cost three times what ClickHouse spends inserting those rows (``make bench``, issue 9). Its
records are schemaless Avro with the writer schema named in a header (``schemas.codec``), which
is one framing away from a file ClickHouse reads itself: an Avro object container, the writer
schema in its header, each record a block of its own. ClickHouse decodes the container into
the Null table ``events_in`` and the materialized views of migration 0009 map it to
``lane_events``, ``llm_calls`` and ``alerts``; the live sink and replay both load through here,
so they produce the same rows by construction.

One block per record, rather than one for all: a block carries its byte length, so a record
that is shorter or longer than it claims cannot shift the reading of the records after it. A
block that does not decode fails the whole insert; :func:`undecodable` then finds the culprits
with the Python decoder (only on that unhappy path), so the caller can dead-letter them and load
the rest. What ClickHouse does not check that fastavro does: bytes after a complete record
inside its block are ignored rather than refused (the worker is the topic's only writer).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fastavro.schema import to_parsing_canonical_form

from nova.errors import SchemaError, UnknownSchemaError
from schemas import TOPICS, SchemaSet
from schemas.codec import SCHEMA_HEADER, AvroCodec
from schemas.headers import RawHeaders, header

MAGIC = b"Obj\x01"
SYNC = b"nova-events-blk\x00"  # 16 bytes; any value will do, it only has to repeat
TABLE = "events_in"
# a writer schema older than a column (v1 has no ``lanes``) gives the column its default, and
# an absent section (a null union) the default of its Tuple: every element NULL (migration 0009)
SETTINGS = {"input_format_avro_allow_missing_fields": 1, "input_format_avro_null_as_default": 1}


def _long(n: int) -> bytes:
    """Avro's zig-zag varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _bytes(b: bytes) -> bytes:
    return _long(len(b)) + b


@cache
def _header(schema_json: str) -> bytes:
    meta = (_long(2) + _bytes(b"avro.schema") + _bytes(schema_json.encode())
            + _bytes(b"avro.codec") + _bytes(b"null") + _long(0))
    return MAGIC + meta + SYNC


def container(schema: Any, payloads: Iterable[bytes]) -> bytes:
    """An Avro object container of ``payloads`` (schemaless records written with ``schema``, a
    parsed fastavro schema), one block each. Its parsing canonical form is the schema the file
    names: what the fingerprint in the records' headers was computed from."""
    blocks = b"".join(b"\x02" + _long(len(p)) + p + SYNC for p in payloads)
    return _header(to_parsing_canonical_form(schema)) + blocks


@dataclass(frozen=True, slots=True)
class Encoded:
    """One record as it came off the topic: what a dead letter needs besides the bytes."""

    value: bytes | None
    topic: str = ""
    partition: int = -1
    offset: int = -1
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class EncodedEvents:
    """Events records grouped by writer schema, waiting to be loaded."""

    by_writer: dict[str, list[Encoded]] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(records) for records in self.by_writer.values())

    def add(self, codec: AvroCodec, record: Encoded) -> None:
        """Keep ``record`` for loading; SchemaError, at once, when no container can carry it
        (a tombstone, no schema header, a writer schema this build does not know)."""
        writer = writer_of(codec, record.value, record.headers)
        self.by_writer.setdefault(writer, []).append(record)

    def containers(self, codec: AvroCodec) -> list[bytes]:
        return [container(codec.writers[w], (r.value for r in records if r.value is not None))
                for w, records in self.by_writer.items() if records]

    def remove(self, gone: Sequence[Encoded]) -> None:
        ids = {id(r) for r in gone}
        for writer, records in self.by_writer.items():
            self.by_writer[writer] = [r for r in records if id(r) not in ids]


def writer_of(codec: AvroCodec, value: bytes | None, headers: RawHeaders) -> str:
    """The writer schema id a record's header names, if this build can read it."""
    if value is None:
        raise SchemaError(f"{codec.name}: empty record (tombstone) where a value was expected")
    writer = header(headers, SCHEMA_HEADER)
    if writer is None:
        raise SchemaError(f"{codec.name}: record has no {SCHEMA_HEADER} header")
    if writer not in codec.writers:
        raise UnknownSchemaError(f"{codec.name}: unknown writer schema {writer}")
    return writer


def undecodable(codec: AvroCodec, events: EncodedEvents) -> list[tuple[Encoded, SchemaError]]:
    """The records the Python decoder refuses, each with its reason: run once an insert failed,
    to tell a bad record (dead-letter it, load the rest) from a database that is away."""
    bad: list[tuple[Encoded, SchemaError]] = []
    for records in events.by_writer.values():
        for record in records:
            try:
                codec.decode(record.value, record.headers)
            except SchemaError as exc:
                bad.append((record, exc))
    return bad


def events_codec(schemas: SchemaSet) -> AvroCodec:
    return schemas[TOPICS["events"].value_schema]


def schema_fields(codec: AvroCodec) -> list[str]:
    """The current Event schema's top-level field names (events_in must have each)."""
    return [f["name"] for f in json.loads(to_parsing_canonical_form(codec.current))["fields"]]
