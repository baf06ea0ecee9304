"""Avro encoding with the writer schema named in a record header.

Records are written schemaless (no embedded schema, no registry round trip). The writer
schema's Rabin fingerprint (CRC-64-AVRO of its parsing canonical form, as the Avro spec's
single-object encoding uses) travels in the ``nova-schema`` header, so a consumer built
against a newer schema still decodes records written with any older version kept in
``schemas/versions/``: fastavro resolves writer → reader schema field by field.

Parsed schemas are cached once per process; encoding is a dict → bytes call to fastavro.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from nova.errors import SchemaError, UnknownSchemaError
from schemas.headers import header

SCHEMA_HEADER = "nova-schema"
SCHEMA_DIR = Path(__file__).resolve().parent
VERSIONS_DIR = SCHEMA_DIR / "versions"

Headers = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None


def schema_fingerprint(schema: Any) -> str:
    """CRC-64-AVRO fingerprint (hex) of a parsed schema's canonical form."""
    return str(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def _parse(path: Path) -> Any:
    # Keep fastavro's "already parsed" marker: without it every read and write re-parses the
    # schema (about 4x slower per record). The canonical form, hence the fingerprint, is the same.
    return fastavro.parse_schema(json.loads(path.read_text()))


@dataclass(frozen=True)
class AvroCodec:
    """Encode/decode one schema family (current version plus every kept older version)."""

    name: str
    current: Any
    current_id: str
    writers: Mapping[str, Any] = field(default_factory=dict)

    @property
    def header(self) -> tuple[str, bytes]:
        return (SCHEMA_HEADER, self.current_id.encode())

    def encode(self, record: Mapping[str, Any]) -> bytes:
        buf = io.BytesIO()
        try:
            fastavro.schemaless_writer(buf, self.current, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SchemaError(f"{self.name}: record does not match schema: {exc}") from exc
        return buf.getvalue()

    def decode(self, payload: bytes | None, headers: Headers) -> dict[str, Any]:
        if payload is None:
            raise SchemaError(f"{self.name}: empty record (tombstone) where a value was expected")
        writer_id = _header_value(headers)
        if writer_id is None:
            raise SchemaError(f"{self.name}: record has no {SCHEMA_HEADER} header")
        writer = self.writers.get(writer_id)
        if writer is None:
            raise UnknownSchemaError(f"{self.name}: unknown writer schema {writer_id}")
        buf = io.BytesIO(payload)
        try:
            # The current writer needs no resolution; fastavro's resolving reader is slower.
            reader = None if writer is self.current else self.current
            value = fastavro.schemaless_reader(buf, writer, reader)
        except Exception as exc:
            raise SchemaError(
                f"{self.name}: undecodable record: {type(exc).__name__}: {exc}"
            ) from exc
        if buf.tell() != len(payload):
            raise SchemaError(
                f"{self.name}: {len(payload) - buf.tell()} trailing bytes after record"
            )
        if not isinstance(value, dict):
            raise SchemaError(f"{self.name}: decoded value is not a record")
        return value


def _header_value(headers: Headers) -> str | None:
    return header(headers, SCHEMA_HEADER)


@dataclass(frozen=True)
class SchemaSet:
    """Every schema family by name ("pipeline_record", "event", ...)."""

    codecs: Mapping[str, AvroCodec]

    def __getitem__(self, name: str) -> AvroCodec:
        return self.codecs[name]


def load_family(name: str) -> AvroCodec:
    current = _parse(SCHEMA_DIR / f"{name}.avsc")
    current_id = schema_fingerprint(current)
    writers = {current_id: current}
    for old in sorted(VERSIONS_DIR.glob(f"{name}.v*.avsc")):
        parsed = _parse(old)
        writers[schema_fingerprint(parsed)] = parsed
    return AvroCodec(name=name, current=current, current_id=current_id, writers=writers)


@cache
def load_schema_set() -> SchemaSet:
    """Parse every ``schemas/*.avsc`` once per process."""
    names = sorted(p.stem for p in SCHEMA_DIR.glob("*.avsc"))
    return SchemaSet(codecs={n: load_family(n) for n in names})
