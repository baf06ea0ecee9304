"""Lane E specification: checkpoint decisions are idempotent, never contradictory, never late."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from nova.domain.checkpoints import (
    Checkpoint,
    SelfDecisionError,
    apply_decision,
    checkpoint_id_for,
    expire,
    is_submitter,
    may_decide,
    open_checkpoint,
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
