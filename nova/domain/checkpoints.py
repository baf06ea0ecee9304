"""Lane E: the human checkpoint as a small state machine.

::

    pending ──approve──▶ approved      (approve again: no-op; reject: ConflictError)
       │  ──reject───▶ rejected      (reject again: no-op;  approve: ConflictError)
       └──expire────▶ expired       (any decision: ConflictError)

Decisions arrive over HTTP and are replayed from Kafka, so repeating a decision must be
harmless (a retried click, a redelivered record) while contradicting one must fail loudly: a
payment approved and then "rejected" may already have been executed, and silently flipping the
record would make the audit trail lie. The first decider is kept on a repeated decision.

A decision on a pending checkpoint at or after ``expires_at`` raises ``ConflictError`` rather
than returning an expired checkpoint: the caller learns the approval did not count (409 at the
gateway) and can persist the expiry with :func:`expire`. Deciding after expiry must never
approve, or the TTL would be meaningless for sensitive flows.

**Four eyes.** The submitter of a request (``submitter``, the token subject that submitted it)
can never decide its checkpoint, whatever roles they hold: :func:`apply_decision` raises
:class:`SelfDecisionError` (a ``ForbiddenError``) for them, before anything else, so the
gateway answers 403 and lane E refuses a decision record naming them. A checkpoint may need
several distinct approvers (``approvals_required``, 2 when a four-eyes rule fired at lane D):
each approval by a new approver is recorded in ``approvals`` and the checkpoint stays pending
until there are enough of them; an approver approving twice changes nothing and counts once.
One rejection by any allowed decider rejects. ``decided_by`` is the approver who completed
the approval (or the rejecter); ``approvals`` lists all of them in order.

Checkpoint ids are derived from the request id (``cp_`` + first 24 hex of SHA-256), so a lane E
that replays a request after a crash recreates the same id instead of a second checkpoint.
``now`` is always passed in (the record's timestamp on replay), never read from the clock here.

Who may decide is :func:`may_decide`: the checkpoint's own identity, holding an approver or
admin role, and not its submitter (:func:`is_submitter`). The gateway enforces it; lane E
enforces the submitter rule again through :func:`apply_decision`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from nova.domain.roles import DECIDER_ROLES
from nova.errors import ConflictError, ForbiddenError, ProcessingError

CheckpointStatus = Literal["pending", "approved", "rejected", "expired"]
Decision = Literal["approve", "reject"]

_RESULT: dict[str, CheckpointStatus] = {"approve": "approved", "reject": "rejected"}


MAX_APPROVALS_REQUIRED = 5


class SelfDecisionError(ForbiddenError):
    """The submitter of a request tried to decide its checkpoint (four eyes)."""


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ProcessingError(f"{name} must be timezone-aware")


def checkpoint_id_for(request_id: str) -> str:
    """Deterministic checkpoint id of a request: ``cp_`` + sha256(request_id)[:24]."""
    if not request_id:
        raise ProcessingError("request_id is required for a checkpoint")
    return "cp_" + hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A request waiting for (or having received) a human decision."""

    checkpoint_id: str
    request_id: str
    identity_id: str
    reason: str
    created_at: datetime
    expires_at: datetime
    status: CheckpointStatus = "pending"
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    submitter: str | None = None  # who submitted the request: never a decider
    approvals_required: int = 1
    approvals: tuple[str, ...] = ()  # distinct approvers so far, in order

    def __post_init__(self) -> None:
        _require_aware(self.created_at, "created_at")
        _require_aware(self.expires_at, "expires_at")
        if self.decided_at is not None:
            _require_aware(self.decided_at, "decided_at")
        if not 1 <= self.approvals_required <= MAX_APPROVALS_REQUIRED:
            raise ProcessingError(
                f"a checkpoint needs 1 to {MAX_APPROVALS_REQUIRED} approvers, "
                f"not {self.approvals_required}"
            )

    @property
    def approvals_missing(self) -> int:
        """How many more distinct approvers a pending checkpoint needs."""
        if self.status != "pending":
            return 0
        return max(self.approvals_required - len(self.approvals), 0)

    def is_expired(self, now: datetime) -> bool:
        """Expired in status, or still pending at or past ``expires_at``."""
        return self.status == "expired" or (self.status == "pending" and now >= self.expires_at)


class Transition(NamedTuple):
    """The checkpoint after an operation and whether it changed (unpacks as a pair)."""

    checkpoint: Checkpoint
    changed: bool


def open_checkpoint(
    request_id: str,
    identity_id: str,
    reason: str,
    now: datetime,
    ttl_s: int,
    *,
    submitter: str | None = None,
    approvals_required: int = 1,
) -> Checkpoint:
    """A new pending checkpoint expiring ``ttl_s`` seconds after ``now``."""
    _require_aware(now, "now")
    if ttl_s <= 0:
        raise ProcessingError("checkpoint ttl must be positive")
    return Checkpoint(
        checkpoint_id=checkpoint_id_for(request_id),
        request_id=request_id,
        identity_id=identity_id,
        reason=reason,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
        submitter=submitter,
        approvals_required=approvals_required,
    )


def may_decide(cp: Checkpoint, identity_id: str, roles: frozenset[str]) -> bool:
    """Only the checkpoint's own identity, with an approver or admin role, may decide it
    (and never its submitter: :func:`is_submitter`)."""
    return identity_id == cp.identity_id and bool(roles & DECIDER_ROLES)


def is_submitter(cp: Checkpoint, actor: str) -> bool:
    """Whether ``actor`` submitted the request held at ``cp`` (and so may not decide it)."""
    return cp.submitter is not None and actor == cp.submitter


def apply_decision(
    cp: Checkpoint,
    decision: Decision,
    actor: str,
    now: datetime,
    reason: str | None = None,
) -> Transition:
    """Approve or reject; repeating is a no-op, contradicting or deciding late conflicts."""
    _require_aware(now, "now")
    target = _RESULT.get(decision)
    if target is None:
        raise ProcessingError(f"unknown checkpoint decision {decision!r}")
    if not actor:
        raise ProcessingError("a checkpoint decision needs an actor")
    if is_submitter(cp, actor):
        raise SelfDecisionError("the submitter of a request cannot decide its checkpoint")
    if cp.status == target:
        return Transition(cp, False)
    if cp.status in ("approved", "rejected"):
        raise ConflictError(f"checkpoint {cp.checkpoint_id} is already {cp.status}")
    if cp.is_expired(now):
        raise ConflictError(f"checkpoint {cp.checkpoint_id} expired at {cp.expires_at.isoformat()}")
    if target == "approved":
        if actor in cp.approvals:
            return Transition(cp, False)  # the same approver again counts once
        approvals = (*cp.approvals, actor)
        if len(approvals) < cp.approvals_required:
            return Transition(replace(cp, approvals=approvals), True)  # still pending
        cp = replace(cp, approvals=approvals)
    decided = replace(cp, status=target, decided_by=actor, decided_at=now, decision_reason=reason)
    return Transition(decided, True)


def expire(cp: Checkpoint, now: datetime) -> Transition:
    """Mark a pending checkpoint expired once ``now`` reaches ``expires_at``; else no change."""
    _require_aware(now, "now")
    if cp.status != "pending" or now < cp.expires_at:
        return Transition(cp, False)
    return Transition(
        replace(cp, status="expired", decided_at=now, decision_reason="expired"), True
    )
