"""Time-ordered identifiers (UUIDv7, RFC 9562).

Request ids carry their creation time in the first 48 bits, so ClickHouse can partition every
row of a request by the request's own date (all rows of one request share a partition and
ReplacingMergeTree can deduplicate them) and ids sort by submission time.
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7(ms: int | None = None, *, rand: int | None = None) -> str:
    ts = (time.time_ns() // 1_000_000) if ms is None else ms
    if rand is None:
        rand = int.from_bytes(os.urandom(10), "big")
    value = (ts & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def uuid7_derived(ms: int, digest: bytes) -> str:
    """A UUIDv7 for time ``ms`` whose 74 other bits are taken from ``digest`` (at least 10
    bytes): the same inputs always name the same id. Idempotent submission uses it so that a
    retry at any gateway names the request its first attempt created (RFC 9562 allows any
    source for these bits; uniqueness is the digest's)."""
    if len(digest) < 10:
        raise ValueError("the digest needs at least 10 bytes")
    return uuid7(ms, rand=int.from_bytes(digest[:10], "big"))


def uuid7_ms(value: str) -> int | None:
    """Milliseconds since the epoch encoded in a UUIDv7, or None for any other id."""
    try:
        u = uuid.UUID(value)
    except ValueError:
        return None
    if u.version != 7:
        return None
    return u.int >> 80
