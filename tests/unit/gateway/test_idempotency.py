"""Idempotent submission, the pure parts: keys, fingerprints, derived ids, the index."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from gateway.idempotency import (
    DAY_MS,
    IdempotencyIndex,
    IdempotencyKeyError,
    KnownKey,
    body_fingerprint,
    parse_key,
    request_id_for,
)
from nova.ids import uuid7_ms
from nova.records import Execution, PipelineRecord
from nova.settings import Settings
from schemas import load_schema_set

T0 = 1_750_000_000_000  # a UTC time, ms


class Clock:
    def __init__(self) -> None:
        self.now = T0 / 1000

    def __call__(self) -> float:
        return self.now


def index(clock: Clock, **kw: Any) -> IdempotencyIndex:
    settings = Settings(environment="test", idempotency_window_s=3600)
    return IdempotencyIndex(settings, load_schema_set(), clock=clock, **kw)


@pytest.mark.parametrize("raw", ["abc", '"abc"', "  abc  ", "8e03978e-40d5-43e8-bc93-6894a57f9324"])
def test_keys_bare_or_as_a_structured_field_string(raw: str) -> None:
    assert parse_key(raw) == raw.strip().strip('"')


@pytest.mark.parametrize("raw", ["", '""', "a b", "a\x00b", "é", "x" * 256, '"a"b"'])
def test_malformed_keys_are_refused(raw: str) -> None:
    with pytest.raises(IdempotencyKeyError):
        parse_key(raw)


def test_the_fingerprint_ignores_wait_ms_and_field_order() -> None:
    a = body_fingerprint({"prompt": "pay", "wait_ms": 0, "action": "PAYMENT"})
    assert a == body_fingerprint({"action": "PAYMENT", "prompt": "pay", "wait_ms": 5000})
    assert a != body_fingerprint({"action": "PAYMENT", "prompt": "pay 2", "wait_ms": 0})


def test_a_field_added_later_counts_only_when_set() -> None:
    """A retry of a body sent before ``priority`` (or ``meeting_id``) existed matches its first
    fingerprint."""
    before = body_fingerprint({"prompt": "pay", "model": None})
    assert before == body_fingerprint({"prompt": "pay", "model": None, "priority": None})
    assert before != body_fingerprint({"prompt": "pay", "model": None, "priority": "high"})
    assert before != body_fingerprint({"prompt": "pay"})  # an older field still counts
    assert before == body_fingerprint({"prompt": "pay", "model": None, "meeting_id": None})
    assert before != body_fingerprint({"prompt": "pay", "model": None, "meeting_id": "m1"})


def test_the_derived_id_is_the_same_all_day_and_a_uuid7_of_that_day() -> None:
    fp = body_fingerprint({"prompt": "x"})
    day = T0 - T0 % DAY_MS
    first = request_id_for("alice", "k1", fp, day + 5)
    assert first == request_id_for("alice", "k1", fp, day + DAY_MS - 1)
    assert uuid.UUID(first).version == 7
    assert uuid7_ms(first) == day  # ClickHouse partitions it by its day
    assert first != request_id_for("alice", "k1", fp, day + DAY_MS)  # a later day: a new one
    assert first != request_id_for("bob", "k1", fp, day)  # keys are per identity
    assert first != request_id_for("alice", "k2", fp, day)
    assert first != request_id_for("alice", "k1", body_fingerprint({"prompt": "y"}), day)


def keyed(request_id: str, key: str, fp: str, **extra: Any) -> dict[str, Any]:
    rec = PipelineRecord(request_id=request_id, identity_id="alice", user_id="u",
                         submitted_at=T0, prompt="p" * 1000, idempotency_key=key,
                         body_fingerprint=fp, **extra)
    return rec.to_avro()


def test_the_index_learns_keys_and_states_from_pending_and_completed() -> None:
    idx = index(Clock())
    idx.apply("pending", keyed("r1", "k", "fp", status="held"))
    assert idx.lookup("alice", "k") == KnownKey("r1", "fp", T0)
    view = idx.view("r1")
    assert view is not None
    assert view.held
    idx.apply("completed", keyed("r1", "k", "fp", status="completed",
                                 execution=Execution(text="done")))
    view = idx.view("r1")
    assert view is not None
    assert (view.status, view.result) == ("completed", "done")
    assert view.record is not None
    assert view.record.prompt == ""  # the index keeps no prompt
    idx.apply("pending", keyed("r1", "k", "fp", status="held"))  # a late copy of the hold
    assert idx.view("r1").status == "completed"  # type: ignore[union-attr]
    idx.apply("completed", PipelineRecord(request_id="r2", identity_id="alice", user_id="u",
                                          submitted_at=T0, prompt="unkeyed").to_avro())
    assert idx.view("r2") is None


def test_keys_are_forgotten_after_the_window_and_beyond_capacity() -> None:
    clock = Clock()
    idx = index(clock, capacity=3)
    idx.remember("alice", "old", KnownKey("r0", "fp", T0))
    clock.now += 3601
    assert idx.lookup("alice", "old") is None
    for i in range(5):
        idx.remember("alice", f"k{i}", KnownKey(f"r{i}", "fp", T0 + 3_601_000))
    remembered = [idx.lookup("alice", f"k{i}") is not None for i in range(5)]
    assert remembered == [False, False, True, True, True]
    assert idx.since_ms() == int(clock.now * 1000) - 3_600_000


def test_the_first_acceptance_names_the_request() -> None:
    idx = index(Clock())
    idx.remember("alice", "k", KnownKey("r1", "fp", T0))
    idx.remember("alice", "k", KnownKey("r2", "fp", T0 + 10))
    assert idx.lookup("alice", "k") == KnownKey("r1", "fp", T0)


async def test_submissions_of_one_key_are_serialised() -> None:
    idx = index(Clock())
    order: list[str] = []

    async def submit(name: str, hold_s: float) -> None:
        async with idx.claim("alice", "k"):
            order.append(f"{name} in")
            await asyncio.sleep(hold_s)
            order.append(f"{name} out")

    await asyncio.gather(submit("first", 0.05), submit("retry", 0))
    assert order == ["first in", "first out", "retry in", "retry out"]
    assert idx._locks == {}  # nothing left behind
    async with idx.claim("alice", "k"), idx.claim("alice", "other"):
        pass  # other keys do not wait
