"""Backward compatibility: records written with any kept schema version decode with the current one.

Topics such as ``requests``, ``events`` and ``audit`` are kept forever and replayed, so every
version a producer ever wrote must stay readable. Before changing ``schemas/<name>.avsc``, copy
the old file to ``schemas/versions/<name>.vN.avsc``; this test then proves the change is safe in
two ways: a structural check following the Avro resolution rules (every field the reader adds
has a default, no type changes except the spec's promotions, no enum symbol dropped without a
default) and a data check (records generated from the old schema decode with the current one).
The checker is tested on known-bad pairs first, so an empty ``versions/`` directory cannot make
this file pass vacuously.
"""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import expand_schema
from fastavro.utils import generate_many

from schemas.codec import SCHEMA_DIR, SCHEMA_HEADER, VERSIONS_DIR, load_family, schema_fingerprint

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
# Avro spec, "Schema Resolution": writer type → reader types it may be read as.
PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}
VERSION_FILE = re.compile(r"^(?P<name>[a-z0-9_]+)\.v(?P<n>\d+)\.avsc$")


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _expanded(schema: Any) -> Any:
    """Named-type references replaced by their definitions, so the walk needs no symbol table."""
    return expand_schema(copy.deepcopy(schema))


def _kind(t: Any) -> str:
    if isinstance(t, list):
        return "union"
    if isinstance(t, dict):  # {"type": "long", "logicalType": ...} resolves as its base type
        return str(t["type"])
    return str(t)


def _name(t: Any) -> str | None:
    if isinstance(t, dict) and t.get("type") in ("record", "enum", "fixed"):
        return str(t["name"]).rsplit(".", 1)[-1]
    return None


def _matches(writer: Any, reader: Any) -> bool:
    """Whether a reader (non-union) branch is the one Avro would pick for this writer type."""
    wk, rk = _kind(writer), _kind(reader)
    if wk in ("record", "enum", "fixed"):
        return rk == wk and _name(writer) == _name(reader)
    return rk == wk or rk in PROMOTIONS.get(wk, set())


def incompatibilities(writer: Any, reader: Any, path: str = "$") -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader`` (empty: it can)."""
    if isinstance(writer, list):  # every branch the writer may have used must resolve
        return [p for i, branch in enumerate(writer)
                for p in incompatibilities(branch, reader, f"{path}|{i}")]
    if isinstance(reader, list):
        for branch in reader:
            if _matches(writer, branch):
                return incompatibilities(writer, branch, path)
        return [f"{path}: writer type {_kind(writer)} matches no branch of the reader union"]
    wk, rk = _kind(writer), _kind(reader)
    if not _matches(writer, reader):
        return [f"{path}: writer {_name(writer) or wk} cannot be read as {_name(reader) or rk}"]
    if wk == "record":
        return _record_problems(writer, reader, path)
    if wk == "enum":
        missing = set(writer["symbols"]) - set(reader["symbols"])
        if missing and "default" not in reader:
            return [f"{path}: enum symbols {sorted(missing)} removed without a default"]
    if wk == "fixed" and writer["size"] != reader["size"]:
        return [f"{path}: fixed size changed {writer['size']} → {reader['size']}"]
    if wk == "array":
        return incompatibilities(writer["items"], reader["items"], f"{path}[]")
    if wk == "map":
        return incompatibilities(writer["values"], reader["values"], f"{path}{{}}")
    return []


def _record_problems(writer: Any, reader: Any, path: str) -> list[str]:
    written = {f["name"]: f for f in writer["fields"]}
    problems: list[str] = []
    for field in reader["fields"]:
        names = [field["name"], *field.get("aliases", [])]
        source = next((written[n] for n in names if n in written), None)
        where = f"{path}.{field['name']}"
        if source is None:
            if "default" not in field:
                problems.append(f"{where}: field added without a default")
            continue
        problems.extend(incompatibilities(source["type"], field["type"], where))
    return problems


def data_problems(writer: Any, reader: Any, samples: int = 50) -> list[str]:
    """Records generated from ``writer`` must decode with ``reader`` (fastavro's resolution)."""
    parsed_w = fastavro.parse_schema(copy.deepcopy(writer))
    parsed_r = fastavro.parse_schema(copy.deepcopy(reader))
    for record in generate_many(parsed_w, samples):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed_w, record)
        buf.seek(0)
        try:
            fastavro.schemaless_reader(buf, parsed_w, parsed_r)
        except Exception as exc:  # noqa: BLE001 - any failure is the finding we report
            return [f"decoding a generated record failed: {type(exc).__name__}: {exc}"]
    return []


def check_backward(writer: Any, reader: Any) -> list[str]:
    w, r = _expanded(writer), _expanded(reader)
    return incompatibilities(w, r) + data_problems(writer, reader)


def kept_versions(directory: Path = VERSIONS_DIR) -> list[tuple[str, Path]]:
    return sorted(
        (m.group("name"), p) for p in directory.glob("*.avsc")
        if (m := VERSION_FILE.match(p.name))
    )


# -- the checker itself must reject incompatible changes --------------------------------------

BASE: dict[str, Any] = {
    "type": "record", "name": "R", "namespace": "t", "fields": [
        {"name": "id", "type": "string"},
        {"name": "n", "type": "int"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["a", "b"]}},
        {"name": "inner", "type": ["null", {"type": "record", "name": "Inner", "fields": [
            {"name": "x", "type": "string"}]}], "default": None},
    ]}


def _changed(edit: Any) -> dict[str, Any]:
    schema = copy.deepcopy(BASE)
    edit(schema["fields"])
    return schema


def _inner_fields(fields: list[Any]) -> list[Any]:
    return fields[3]["type"][1]["fields"]  # type: ignore[no-any-return]


INCOMPATIBLE = {
    "field added without default": lambda f: f.append({"name": "new", "type": "string"}),
    "nested field added without default": lambda f: _inner_fields(f).append(
        {"name": "y", "type": "long"}),
    "type changed": lambda f: f[1].update(type="string"),
    "type narrowed": lambda f: f.__setitem__(1, {"name": "n", "type": "boolean"}),
    "enum symbol removed": lambda f: f[2]["type"].update(symbols=["a"]),
    "optional became required": lambda f: f.__setitem__(
        3, {"name": "inner", "type": {"type": "record", "name": "Inner",
                                      "fields": [{"name": "x", "type": "string"}]}}),
}

COMPATIBLE = {
    "unchanged": lambda f: None,
    "field added with default": lambda f: f.append(
        {"name": "new", "type": ["null", "string"], "default": None}),
    "nested field added with default": lambda f: _inner_fields(f).append(
        {"name": "y", "type": "long", "default": 0}),
    "field removed": lambda f: f.pop(1),
    "int promoted to long": lambda f: f[1].update(type="long"),
    "enum symbol added": lambda f: f[2]["type"].update(symbols=["a", "b", "c"]),
    "field renamed with alias": lambda f: f[1].update(name="count", aliases=["n"]),
}


@pytest.mark.parametrize("change", sorted(INCOMPATIBLE))
def test_checker_rejects_incompatible_change(change: str) -> None:
    problems = check_backward(BASE, _changed(INCOMPATIBLE[change]))
    assert problems, f"the checker accepted an incompatible change: {change}"


@pytest.mark.parametrize("change", sorted(COMPATIBLE))
def test_checker_accepts_compatible_change(change: str) -> None:
    assert check_backward(BASE, _changed(COMPATIBLE[change])) == []


def test_checker_rejects_a_real_schema_gaining_a_required_field() -> None:
    """The self-check on a real contract: the current pipeline record plus a required field."""
    current = _load(SCHEMA_DIR / "pipeline_record.avsc")
    broken = copy.deepcopy(current)
    broken["fields"].append({"name": "tenant", "type": "string"})
    problems = check_backward(current, broken)
    assert any("tenant" in p and "without a default" in p for p in problems), problems


def test_a_kept_version_is_discovered_checked_and_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop below on a versions/ directory we control: one good and one bad old version."""
    current = _load(SCHEMA_DIR / "event.avsc")
    older = copy.deepcopy(current)
    older["fields"] = [f for f in older["fields"] if "default" not in f]  # before optional fields
    wrong = copy.deepcopy(current)
    wrong["fields"][0] = {**wrong["fields"][0], "type": "long"}  # event_id was a long once
    (tmp_path / "event.v1.avsc").write_text(json.dumps(older))
    (tmp_path / "event.v2.avsc").write_text(json.dumps(wrong))

    found = kept_versions(tmp_path)
    assert [p.name for _, p in found] == ["event.v1.avsc", "event.v2.avsc"]
    assert check_backward(_load(found[0][1]), current) == []
    assert check_backward(_load(found[1][1]), current)

    monkeypatch.setattr("schemas.codec.VERSIONS_DIR", tmp_path)
    codec = load_family("event")
    assert len(codec.writers) == 3  # current plus both kept files, each under its fingerprint
    parsed_old = fastavro.parse_schema(older)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed_old, next(iter(generate_many(parsed_old, 1))))
    old_id = schema_fingerprint(parsed_old)
    assert old_id in codec.writers
    decoded = codec.decode(buf.getvalue(), [(SCHEMA_HEADER, old_id.encode())])
    assert decoded["lane"] is None  # filled from the reader's default


# -- the real contracts ----------------------------------------------------------------------


def test_every_kept_version_names_a_current_schema() -> None:
    """A stray or misnamed file in versions/ would be silently skipped by the codec."""
    current = {p.stem for p in SCHEMA_DIR.glob("*.avsc")}
    for path in VERSIONS_DIR.glob("*.avsc"):
        m = VERSION_FILE.match(path.name)
        assert m is not None, f"{path.name}: expected <name>.v<N>.avsc"
        assert m.group("name") in current, f"{path.name}: no schemas/{m.group('name')}.avsc"


@pytest.mark.parametrize("name", sorted(p.stem for p in SCHEMA_DIR.glob("*.avsc")))
def test_current_schema_is_compatible_with_itself(name: str) -> None:
    """Runs for every schema even while versions/ is empty: the checker copes with real shapes."""
    schema = _load(SCHEMA_DIR / f"{name}.avsc")
    assert check_backward(schema, schema) == []


@pytest.mark.parametrize(
    ("name", "path"), kept_versions(), ids=[p.name for _, p in kept_versions()] or None
)
def test_kept_version_decodes_with_current_schema(name: str, path: Path) -> None:
    problems = check_backward(_load(path), _load(SCHEMA_DIR / f"{name}.avsc"))
    assert problems == [], f"{path.name} → {name}.avsc is not backward compatible:\n" + "\n".join(
        problems)
    assert len(load_family(name).writers) >= 2  # and the codec accepts its header
