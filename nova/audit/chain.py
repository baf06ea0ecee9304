"""Hash chain over the audit log, one chain per Kafka partition.

Each audit entry stores ``prev_hash`` (the previous entry's hash in the same partition, or
``GENESIS_HASH`` for the first) and ``hash = link_hash(prev_hash, entry)``. Editing an entry
changes its hash; removing or reordering one breaks the next entry's ``prev_hash``. One chain
per partition because Kafka orders records only within a partition, so that is the only order
a producer can commit to and a verifier can replay.

Canonical encoding (what is hashed, and what any other implementation must reproduce)::

    json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
               allow_nan=False).encode("utf-8")

keys sorted at every depth, no whitespace, UTF-8 (non-ASCII not escaped), NaN/Infinity
refused, only JSON-native values (str, int, float, bool, None, list, str-keyed dict). Floats
are Python's shortest round-trip repr; prefer integers (micro-USD, epoch milliseconds) for
values another language must re-hash. ``entry`` is the audit payload *without* its own
``prev_hash`` and ``hash`` fields.

Link hash::

    sha256(0x00 || bytes.fromhex(prev_hash) || canonical(entry)).hexdigest()

The 0x00 prefix separates entry hashes from any other hash Nova may build over these bytes
(RFC 6962 uses the same leaf/node separation); ``prev_hash`` enters as its 32 raw bytes, a
fixed length, so the boundary between it and the entry is unambiguous.

Limits: the chain shows alteration, removal and reordering *inside* what is verified. Dropping
the newest entries leaves a shorter valid chain; catching that needs the latest hash anchored
elsewhere (verify from an ``anchors`` map, or compare the last hash with a stored one).
Offsets may have gaps (compaction, transaction markers), so gaps are not breaks; the hashes
are what prove nothing is missing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from nova.errors import ProcessingError

GENESIS_HASH: Final = "0" * 64
_HEX64 = re.compile(r"[0-9a-f]{64}")


def canonical_bytes(entry: Mapping[str, Any]) -> bytes:
    """The canonical JSON encoding of an audit entry (see module docstring)."""
    try:
        text = json.dumps(
            entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ProcessingError(f"audit entry is not canonical JSON: {exc}") from exc
    return text.encode("utf-8")


def link_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """``sha256(0x00 || prev_hash raw bytes || canonical(entry))`` as lowercase hex."""
    if not _HEX64.fullmatch(prev_hash):
        raise ProcessingError("prev_hash must be 64 lowercase hex characters")
    digest = hashlib.sha256(b"\x00" + bytes.fromhex(prev_hash) + canonical_bytes(entry))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where verification first failed in a partition, and why."""

    partition: int
    offset: int
    reason: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """How many entries were checked and the breaks found, first one first."""

    checked: int
    breaks: tuple[ChainBreak, ...]

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> ChainBreak | None:
        return self.breaks[0] if self.breaks else None


class ChainVerifier:
    """Fed audit entries in offset order per partition; reports the first broken link.

    Each partition is checked independently, so entries of different partitions may be
    interleaved. After a break the chain continues from the *stored* hash, so one altered entry
    is reported once, at its own offset, rather than making every later link fail too.
    ``anchors`` gives the expected ``prev_hash`` of the first entry fed for a partition when
    verification starts mid-log (default: ``GENESIS_HASH``). Only the first break of each
    partition is kept: later ones in a partition already known to be broken add noise.
    """

    def __init__(self, anchors: Mapping[int, str] | None = None) -> None:
        self._anchors = dict(anchors or {})
        self._last_hash: dict[int, str] = {}
        self._last_offset: dict[int, int] = {}
        self._breaks: dict[int, ChainBreak] = {}
        self._order: list[int] = []
        self._checked = 0

    def feed(
        self, partition: int, offset: int, entry: Mapping[str, Any], prev_hash: str, hash: str
    ) -> ChainBreak | None:
        """Check one entry; returns the break it reveals, if any."""
        self._checked += 1
        reason = self._check(partition, offset, entry, prev_hash, hash)
        self._last_hash[partition] = hash
        self._last_offset[partition] = max(offset, self._last_offset.get(partition, offset))
        if reason is None:
            return None
        found = ChainBreak(partition, offset, reason)
        if partition not in self._breaks:
            self._breaks[partition] = found
            self._order.append(partition)
        return found

    def _check(
        self, partition: int, offset: int, entry: Mapping[str, Any], prev_hash: str, hash: str
    ) -> str | None:
        last_offset = self._last_offset.get(partition)
        if last_offset is not None and offset <= last_offset:
            return f"offset {offset} not after {last_offset} (reordered or duplicated)"
        expected_prev = self._last_hash.get(partition, self._anchors.get(partition, GENESIS_HASH))
        if prev_hash != expected_prev:
            return "prev_hash does not match the previous entry (entry removed or reordered)"
        try:
            recomputed = link_hash(prev_hash, entry)
        except ProcessingError as exc:
            return str(exc)
        if not _HEX64.fullmatch(hash) or recomputed != hash:
            return "hash does not match the entry (entry altered)"
        return None

    def report(self) -> ChainReport:
        """Entries checked so far and the first break of each broken partition."""
        return ChainReport(
            checked=self._checked, breaks=tuple(self._breaks[p] for p in self._order)
        )
