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

Checkpoint ids are derived from the request id (``cp_`` + first 24 hex of SHA-256), so a lane E
that replays a request after a crash recreates the same id instead of a second checkpoint.
``now`` is always passed in (the record's timestamp on replay), never read from the clock here.

Who may decide is :func:`may_decide`: the checkpoint's own identity, holding an approver or
admin role. The gateway enforces it; the state machine records ``actor`` as given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from nova.domain.roles import DECIDER_ROLES
from nova.errors import ConflictError, ProcessingError

CheckpointStatus = Literal["pending", "approved", "rejected", "expired"]
Decision = Literal["approve", "reject"]

_RESULT: dict[str, CheckpointStatus] = {"approve": "approved", "reject": "rejected"}


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

    def __post_init__(self) -> None:
        _require_aware(self.created_at, "created_at")
        _require_aware(self.expires_at, "expires_at")
        if self.decided_at is not None:
            _require_aware(self.decided_at, "decided_at")

    def is_expired(self, now: datetime) -> bool:
        """Expired in status, or still pending at or past ``expires_at``."""
        return self.status == "expired" or (self.status == "pending" and now >= self.expires_at)


class Transition(NamedTuple):
    """The checkpoint after an operation and whether it changed (unpacks as a pair)."""

    checkpoint: Checkpoint
    changed: bool


def open_checkpoint(
    request_id: str, identity_id: str, reason: str, now: datetime, ttl_s: int
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
    )


def may_decide(cp: Checkpoint, identity_id: str, roles: frozenset[str]) -> bool:
    """Only the checkpoint's own identity, with an approver or admin role, may decide it."""
    return identity_id == cp.identity_id and bool(roles & DECIDER_ROLES)


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
    if cp.status == target:
        return Transition(cp, False)
    if cp.status in ("approved", "rejected"):
        raise ConflictError(f"checkpoint {cp.checkpoint_id} is already {cp.status}")
    if cp.is_expired(now):
        raise ConflictError(f"checkpoint {cp.checkpoint_id} expired at {cp.expires_at.isoformat()}")
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
