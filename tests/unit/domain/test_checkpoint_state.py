"""Lane E specification: checkpoint decisions are idempotent, never contradictory, never late."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from nova.domain.checkpoints import (
    Checkpoint,
    SelfDecisionError,
    Verb,
    apply_decision,
    checkpoint_id_for,
    expire,
    is_submitter,
    may_decide,
    open_checkpoint,
    parse_verb,
    transition,
)
from nova.errors import ConflictError, ProcessingError

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
TTL = 3600


@pytest.fixture
def pending() -> Checkpoint:
    return open_checkpoint("req-42", "id_alice", "CHECKPOINT_ACTION: PAYMENT", T0, TTL)


def test_id_is_derived_from_request_id() -> None:
    expected = "cp_" + hashlib.sha256(b"req-42").hexdigest()[:24]
    assert checkpoint_id_for("req-42") == expected
    assert checkpoint_id_for("req-42") != checkpoint_id_for("req-43")


def test_a_part_of_a_request_has_its_own_id_never_the_request_s() -> None:
    """An agent's tool call held in a request's run: its own checkpoint, stable on replay."""
    parts = {checkpoint_id_for("req-42", f"tool/{s}/{i}") for s in (1, 2) for i in (0, 1)}
    assert len(parts) == 4
    assert checkpoint_id_for("req-42") not in parts
    assert checkpoint_id_for("req-42", "tool/1/0") == "cp_" + hashlib.sha256(
        b"req-42/tool/1/0").hexdigest()[:24]
    held = open_checkpoint("req-42", "id_alice", "SEND", T0, TTL, part="tool/1/0")
    assert held.checkpoint_id == checkpoint_id_for("req-42", "tool/1/0")
    assert held.request_id == "req-42"


def test_replayed_open_recreates_the_same_checkpoint(pending: Checkpoint) -> None:
    again = open_checkpoint("req-42", "id_alice", "CHECKPOINT_ACTION: PAYMENT", T0, TTL)
    assert again == pending
    assert pending.status == "pending"
    assert pending.expires_at == T0 + timedelta(seconds=TTL)


@pytest.mark.parametrize(("decision", "status"), [("approve", "approved"), ("reject", "rejected")])
def test_first_decision_changes_the_checkpoint(
    pending: Checkpoint, decision: str, status: str
) -> None:
    now = T0 + timedelta(minutes=5)
    cp, changed = apply_decision(pending, decision, "alice", now, "looks right")  # type: ignore[arg-type]
    assert changed
    assert (cp.status, cp.decided_by, cp.decided_at, cp.decision_reason) == (
        status,
        "alice",
        now,
        "looks right",
    )


def test_double_approve_is_a_harmless_no_op(pending: Checkpoint) -> None:
    first, _ = apply_decision(pending, "approve", "alice", T0 + timedelta(minutes=1))
    second, changed = apply_decision(first, "approve", "alice-retry", T0 + timedelta(minutes=2))
    assert not changed
    assert second == first  # the first decider and time are kept


def test_repeat_after_expiry_time_is_still_a_no_op(pending: Checkpoint) -> None:
    first, _ = apply_decision(pending, "reject", "alice", T0 + timedelta(minutes=1))
    again, changed = apply_decision(first, "reject", "alice", T0 + timedelta(days=3))
    assert (again, changed) == (first, False)


@pytest.mark.parametrize(("first", "second"), [("approve", "reject"), ("reject", "approve")])
def test_opposite_decision_conflicts(pending: Checkpoint, first: str, second: str) -> None:
    decided, _ = apply_decision(pending, first, "alice", T0 + timedelta(minutes=1))  # type: ignore[arg-type]
    with pytest.raises(ConflictError):
        apply_decision(decided, second, "alice", T0 + timedelta(minutes=2))  # type: ignore[arg-type]


def test_decision_at_or_after_expiry_conflicts(pending: Checkpoint) -> None:
    with pytest.raises(ConflictError, match="expired"):
        apply_decision(pending, "approve", "alice", pending.expires_at)


def test_expire_marks_a_pending_checkpoint_once(pending: Checkpoint) -> None:
    early, changed = expire(pending, pending.expires_at - timedelta(seconds=1))
    assert (early, changed) == (pending, False)
    expired, changed = expire(pending, pending.expires_at)
    assert changed
    assert expired.status == "expired"
    assert expire(expired, pending.expires_at + timedelta(hours=1)) == (expired, False)
    with pytest.raises(ConflictError):
        apply_decision(expired, "approve", "alice", T0)


def test_expire_leaves_decided_checkpoints_alone(pending: Checkpoint) -> None:
    approved, _ = apply_decision(pending, "approve", "alice", T0)
    assert expire(approved, T0 + timedelta(days=2)) == (approved, False)


@pytest.mark.parametrize(
    ("identity", "roles", "allowed"),
    [
        ("id_alice", {"approver"}, True),
        ("id_alice", {"admin"}, True),
        ("id_alice", {"member"}, False),
        ("id_bob", {"approver", "admin"}, False),  # never across identities
        ("id_alice", {"operator"}, False),  # platform-wide, but not a decider
        ("id_bob", {"operator", "approver"}, False),
    ],
)
def test_who_may_decide(pending: Checkpoint, identity: str, roles: set[str], allowed: bool) -> None:
    assert may_decide(pending, identity, frozenset(roles)) is allowed


def test_naive_times_and_unknown_decisions_are_refused(pending: Checkpoint) -> None:
    with pytest.raises(ProcessingError):
        apply_decision(pending, "approve", "alice", datetime(2025, 3, 1))  # noqa: DTZ001
    with pytest.raises(ProcessingError):
        apply_decision(pending, "maybe", "alice", T0)  # type: ignore[arg-type]
    with pytest.raises(ProcessingError):
        apply_decision(pending, "approve", "", T0)


# -- four eyes ---------------------------------------------------------------------------------


def four_eyes(required: int = 2) -> Checkpoint:
    return open_checkpoint("req-42", "id_alice", "RULE r: two approvers", T0, TTL,
                           submitter="u-alice", approvals_required=required)


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_the_submitter_never_decides_whatever_the_state(decision: str) -> None:
    cp = four_eyes(1)
    with pytest.raises(SelfDecisionError):
        apply_decision(cp, decision, "u-alice", T0)  # type: ignore[arg-type]
    approved, _ = apply_decision(cp, "approve", "u-bob", T0)
    with pytest.raises(SelfDecisionError):  # not even the harmless repeat
        apply_decision(approved, "approve", "u-alice", T0)
    assert is_submitter(cp, "u-alice")
    assert not is_submitter(cp, "u-bob")


def test_two_distinct_approvers_are_needed_and_a_repeat_counts_once() -> None:
    cp = four_eyes()
    first, changed = apply_decision(cp, "approve", "u-bob", T0 + timedelta(minutes=1), "ok")
    assert changed
    assert (first.status, first.approvals, first.approvals_missing) == ("pending", ("u-bob",), 1)
    assert first.decided_by is None
    again, changed = apply_decision(first, "approve", "u-bob", T0 + timedelta(minutes=2))
    assert (again, changed) == (first, False)
    done, changed = apply_decision(first, "approve", "u-carol", T0 + timedelta(minutes=3), "ok2")
    assert changed
    assert (done.status, done.approvals, done.decided_by, done.decision_reason) == (
        "approved", ("u-bob", "u-carol"), "u-carol", "ok2")
    assert done.approvals_missing == 0
    assert apply_decision(done, "approve", "u-dave", T0 + timedelta(minutes=4)) == (done, False)


def test_one_rejection_after_a_first_approval_rejects() -> None:
    first, _ = apply_decision(four_eyes(), "approve", "u-bob", T0)
    rejected, changed = apply_decision(first, "reject", "u-carol", T0, "no")
    assert changed
    assert rejected.status == "rejected"
    with pytest.raises(ConflictError):
        apply_decision(rejected, "approve", "u-dave", T0)


def test_a_half_approved_checkpoint_still_expires() -> None:
    first, _ = apply_decision(four_eyes(), "approve", "u-bob", T0)
    expired, changed = expire(first, first.expires_at)
    assert changed
    assert expired.status == "expired"
    with pytest.raises(ConflictError):
        apply_decision(first, "approve", "u-carol", first.expires_at)


@pytest.mark.parametrize("required", [0, 6])
def test_approvals_required_is_bounded(required: int) -> None:
    with pytest.raises(ProcessingError):
        four_eyes(required)


# -- the one transition: every state against every decision -----------------------------------

IN_TIME = T0 + timedelta(minutes=5)
LATE = T0 + timedelta(seconds=TTL + 60)  # after expires_at


def in_state(status: str) -> Checkpoint:
    """A checkpoint of ``four_eyes(1)`` in ``status`` (decided in time by u-bob)."""
    cp = four_eyes(1)
    if status == "half-approved":
        cp = apply_decision(four_eyes(2), "approve", "u-bob", IN_TIME).checkpoint
    elif status == "expired":
        cp = expire(cp, cp.expires_at).checkpoint
    elif status != "pending":
        cp = apply_decision(cp, "approve" if status == "approved" else "reject", "u-bob",
                            IN_TIME).checkpoint
    return cp


# state, verb, actor, decided at, applied at -> status after, changed, conflict (a word of it)
TABLE = [
    ("pending", "approve", "u-carol", IN_TIME, LATE, "approved", True, None),
    ("pending", "reject", "u-carol", IN_TIME, IN_TIME, "rejected", True, None),
    ("pending", "approve", "u-carol", LATE, LATE, "expired", True, "expired"),  # late
    ("pending", "reject", "u-carol", LATE, LATE, "expired", True, "expired"),
    ("pending", "expire", "system", LATE, LATE, "expired", True, None),
    ("pending", "expire", "system", LATE, IN_TIME, "pending", False, "not overdue"),
    ("pending", "expire", "system", IN_TIME, LATE, "expired", True, None),  # an early claim
    ("half-approved", "approve", "u-bob", IN_TIME, IN_TIME, "pending", False, None),
    ("half-approved", "approve", "u-carol", IN_TIME, IN_TIME, "approved", True, None),
    ("half-approved", "reject", "u-carol", IN_TIME, IN_TIME, "rejected", True, None),
    ("half-approved", "approve", "u-carol", LATE, LATE, "expired", True, "expired"),
    ("half-approved", "expire", "system", LATE, LATE, "expired", True, None),
    ("approved", "approve", "u-carol", LATE, LATE, "approved", False, None),  # a repeat
    ("approved", "reject", "u-carol", IN_TIME, IN_TIME, "approved", False, "already approved"),
    ("approved", "expire", "system", LATE, LATE, "approved", False, None),
    ("rejected", "reject", "u-carol", IN_TIME, IN_TIME, "rejected", False, None),
    ("rejected", "approve", "u-carol", IN_TIME, IN_TIME, "rejected", False, "already rejected"),
    ("rejected", "expire", "system", LATE, LATE, "rejected", False, None),
    ("expired", "approve", "u-carol", IN_TIME, LATE, "expired", False, "expired"),
    ("expired", "reject", "u-carol", LATE, LATE, "expired", False, "expired"),
    ("expired", "expire", "system", LATE, LATE, "expired", False, None),
]


@pytest.mark.parametrize(
    ("state", "verb", "actor", "at", "now", "status", "changed", "conflict"), TABLE
)
def test_the_transition_of_each_state_and_decision(
    state: str, verb: Verb, actor: str, at: datetime, now: datetime, status: str,
    changed: bool, conflict: str | None,
) -> None:
    before = in_state(state)
    outcome = transition(before, verb, actor, at, now, "why")
    assert (outcome.checkpoint.status, outcome.changed) == (status, changed)
    if conflict is None:
        assert outcome.conflict is None
    else:
        assert outcome.conflict is not None
        assert conflict in outcome.conflict
    if not changed:
        assert outcome.checkpoint == before, "nothing but the state may change"


def test_a_late_decision_expires_the_checkpoint_at_the_time_it_was_made() -> None:
    outcome = transition(four_eyes(1), "approve", "u-bob", LATE, LATE + timedelta(hours=1))
    assert outcome.conflict is not None
    assert outcome.checkpoint.status == "expired"
    assert outcome.checkpoint.decided_at == LATE
    assert outcome.checkpoint.decided_by is None, "the late decider decided nothing"
    assert outcome.checkpoint.approvals == ()


@pytest.mark.parametrize(
    ("claimed", "expected"),
    [
        ("in time", "expires_at"),  # a claim before the expiry cannot date it earlier
        ("late", "claimed"),  # an honest expiry keeps its time, whoever applies it
        ("future", "now"),  # nor later than the clock that applies it
    ],
)
def test_an_expiry_is_dated_by_its_record_within_the_expiry_and_the_clock(
    claimed: str, expected: str
) -> None:
    cp = four_eyes(1)
    now = cp.expires_at + timedelta(minutes=10)
    at = {"in time": IN_TIME, "late": cp.expires_at + timedelta(minutes=1),
          "future": now + timedelta(days=1)}[claimed]
    dated = transition(cp, "expire", "system", at, now).checkpoint.decided_at
    assert dated == {"expires_at": cp.expires_at, "claimed": at, "now": now}[expected]


@pytest.mark.parametrize("state", ["pending", "approved", "expired"])
def test_the_submitter_is_refused_by_the_transition_in_every_state(state: str) -> None:
    with pytest.raises(SelfDecisionError):
        transition(in_state(state), "approve", "u-alice", IN_TIME, IN_TIME)


def test_a_record_verb_outside_approve_reject_expire_is_refused() -> None:
    assert [parse_verb(v) for v in ("approve", "reject", "expire")] == [
        "approve", "reject", "expire"]
    with pytest.raises(ProcessingError):
        parse_verb("maybe")
