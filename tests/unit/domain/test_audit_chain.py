"""Audit chain specification: canonical bytes, link hashes, and breaks found where they are."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nova.audit.chain import GENESIS_HASH, ChainVerifier, canonical_bytes, link_hash
from nova.errors import ProcessingError

Row = tuple[int, int, dict[str, Any], str, str]


def build(partition: int, entries: list[dict[str, Any]], first_offset: int = 0) -> list[Row]:
    rows: list[Row] = []
    prev = GENESIS_HASH
    for i, entry in enumerate(entries):
        h = link_hash(prev, entry)
        rows.append((partition, first_offset + i * 2, entry, prev, h))  # offsets may have gaps
        prev = h
    return rows


def entries(n: int) -> list[dict[str, Any]]:
    return [{"request_id": f"r{i}", "outcome": "allow", "cost_micro_usd": i * 10} for i in range(n)]


def verify(rows: list[Row]) -> ChainVerifier:
    verifier = ChainVerifier()
    for row in rows:
        verifier.feed(*row)
    return verifier


def test_canonical_encoding_is_sorted_compact_utf8() -> None:
    assert canonical_bytes({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == (
        '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()
    )


def test_canonical_encoding_refuses_non_json_values() -> None:
    with pytest.raises(ProcessingError):
        canonical_bytes({"x": float("nan")})
    with pytest.raises(ProcessingError):
        canonical_bytes({"x": object()})


def test_link_hash_formula() -> None:
    entry = {"a": 1}
    expected = hashlib.sha256(b"\x00" + bytes(32) + b'{"a":1}').hexdigest()
    assert link_hash(GENESIS_HASH, entry) == expected
    with pytest.raises(ProcessingError):
        link_hash("not-hex", entry)


def test_intact_chain_verifies() -> None:
    report = verify(build(0, entries(5))).report()
    assert report.ok
    assert report.checked == 5
    assert report.first_break is None


def test_altered_entry_is_reported_at_its_own_offset() -> None:
    rows = build(0, entries(5))
    p, offset, entry, prev, h = rows[2]
    rows[2] = (p, offset, {**entry, "outcome": "deny"}, prev, h)
    report = verify(rows).report()
    assert report.first_break is not None
    assert (report.first_break.partition, report.first_break.offset) == (0, 4)
    assert "altered" in report.first_break.reason
    assert len(report.breaks) == 1  # later links still chain on the stored hash
    assert report.checked == 5


def test_altered_entry_with_recomputed_hash_breaks_the_next_link() -> None:
    rows = build(0, entries(5))
    p, offset, entry, prev, _ = rows[2]
    forged = {**entry, "outcome": "deny"}
    rows[2] = (p, offset, forged, prev, link_hash(prev, forged))
    first = verify(rows).report().first_break
    assert first is not None
    assert first.offset == rows[3][1]
    assert "removed or reordered" in first.reason


def test_removed_entry_is_reported_at_the_next_offset() -> None:
    rows = build(0, entries(5))
    del rows[1]
    first = verify(rows).report().first_break
    assert first is not None
    assert (first.partition, first.offset) == (0, 4)
    assert "removed" in first.reason


def test_reordered_offsets_are_reported() -> None:
    rows = build(0, entries(3))
    rows[1], rows[2] = rows[2], rows[1]
    first = verify(rows).report().first_break
    assert first is not None
    assert first.offset == rows[1][1]


def test_partitions_are_independent_and_may_interleave() -> None:
    a, b = build(0, entries(3)), build(1, entries(3))
    p, offset, entry, prev, h = b[1]
    b[1] = (p, offset, {**entry, "request_id": "evil"}, prev, h)
    interleaved = [row for pair in zip(a, b, strict=True) for row in pair]
    report = verify(interleaved).report()
    assert report.checked == 6
    assert [(x.partition, x.offset) for x in report.breaks] == [(1, 2)]


def test_verification_can_start_mid_log_from_an_anchor() -> None:
    rows = build(0, entries(6))
    tail = rows[3:]
    assert not verify(tail).report().ok  # without the anchor the first link looks broken
    anchored = ChainVerifier(anchors={0: rows[2][4]})
    for row in tail:
        anchored.feed(*row)
    assert anchored.report().ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_key_order_never_changes_the_hash(entry: dict[str, Any]) -> None:
    reversed_entry = dict(reversed(list(entry.items())))
    assert link_hash(GENESIS_HASH, entry) == link_hash(GENESIS_HASH, reversed_entry)
