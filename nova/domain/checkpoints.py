"""Lane E: the human checkpoint as a small state machine.

::

    pending ──approve──▶ approved      (approve again: no-op; reject: conflict)
       │  ──reject───▶ rejected      (reject again: no-op;  approve: conflict)
       └──expire────▶ expired       (any decision: conflict)

:func:`transition` is the one place a checkpoint changes: from a state and a decision to the
new state, or a conflict. Lane E applies the decisions and expiries it consumes with it and the
gateway folds the same records into its checkpoint book with it, so both reach the same state
from the same records; :func:`apply_decision` and :func:`expire` are its two common uses.

Decisions arrive over HTTP and are replayed from Kafka, so repeating a decision must be
harmless (a retried click, a redelivered record) while contradicting one must fail loudly: a
payment approved and then "rejected" may already have been executed, and silently flipping the
record would make the audit trail lie. The first decider is kept on a repeated decision.

A decision on a pending checkpoint at or after ``expires_at`` is a conflict (409 at the
gateway: the approval did not count) *and* expires the checkpoint, at the decision's time:
deciding after expiry must never approve, or the TTL would be meaningless for sensitive flows,
and a decision that shows the checkpoint overdue is as good a reason to expire it as the
sweep's. :func:`apply_decision` raises ``ConflictError`` for it; :func:`transition` returns the
expired checkpoint with the conflict, which is what the folds of lane E and the gateway keep.

An expiry carries no authority (the worker that sends it holds no signing key): it applies only
once the checkpoint is overdue by the clock of whoever applies it (``now``), never by the time
the record claims; the time recorded is the record's, kept within ``expires_at`` and ``now``, so
lane E and every gateway record the same one.

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
that replays a request after a crash recreates the same id instead of a second checkpoint; an
agent's tool call held in the request's run gets its own, derived from the request id and the
call's place in the run.
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

from nova.domain.kinds import CheckpointStatus as CheckpointStatus
from nova.domain.roles import DECIDER_ROLES
from nova.errors import ConflictError, ForbiddenError, ProcessingError

Decision = Literal["approve", "reject"]
Verb = Literal["approve", "reject", "expire"]  # what a decision record may carry

_RESULT: dict[str, CheckpointStatus] = {"approve": "approved", "reject": "rejected"}
_VERBS: dict[str, Verb] = {"approve": "approve", "reject": "reject", "expire": "expire"}


MAX_APPROVALS_REQUIRED = 5


class SelfDecisionError(ForbiddenError):
    """The submitter of a request tried to decide its checkpoint (four eyes)."""


def parse_verb(value: str) -> Verb:
    """A decision record's verb; anything else is a ``ProcessingError``."""
    verb = _VERBS.get(value)
    if verb is None:
        raise ProcessingError(f"unknown checkpoint decision {value!r}")
    return verb


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ProcessingError(f"{name} must be timezone-aware")


def checkpoint_id_for(request_id: str, part: str | None = None) -> str:
    """Deterministic checkpoint id of a request: ``cp_`` + sha256(request_id)[:24]; of one
    ``part`` of it (an agent's tool call, ``"tool/3/0"``), of ``request_id/part``, so a
    request's own checkpoint and each of its tool calls' never share an id."""
    if not request_id:
        raise ProcessingError("request_id is required for a checkpoint")
    key = request_id if part is None else f"{request_id}/{part}"
    return "cp_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


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
    part: str | None = None,
) -> Checkpoint:
    """A new pending checkpoint expiring ``ttl_s`` seconds after ``now`` (of the request, or of
    one ``part`` of it: :func:`checkpoint_id_for`)."""
    _require_aware(now, "now")
    if ttl_s <= 0:
        raise ProcessingError("checkpoint ttl must be positive")
    return Checkpoint(
        checkpoint_id=checkpoint_id_for(request_id, part),
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


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a decision does to a checkpoint: its state after, whether that changed, and why
    the decision did not count when it did not (``conflict``: 409 at the gateway).

    A conflict with ``changed`` is a late decision: it did not count, and the checkpoint is
    expired by it."""

    checkpoint: Checkpoint
    changed: bool
    conflict: str | None = None


def transition(
    cp: Checkpoint,
    verb: Verb,
    actor: str,
    at: datetime,
    now: datetime,
    reason: str | None = None,
) -> Outcome:
    """The one checkpoint transition: ``cp`` after ``actor``'s ``verb`` made at ``at``.

    ``at`` is when the decision was made (the gateway's signed time; an expiry's claim), ``now``
    the clock of whoever applies it, consulted only for an expiry. The submitter deciding
    raises :class:`SelfDecisionError` (the actor is wrong, whatever the state); a bad verb,
    actor or naive time raises ``ProcessingError``.
    """
    _require_aware(at, "at")
    _require_aware(now, "now")
    if verb == "expire":
        if cp.status != "pending":
            return Outcome(cp, False)
        if now < cp.expires_at:
            return Outcome(cp, False, f"checkpoint {cp.checkpoint_id} is not overdue until "
                                      f"{cp.expires_at.isoformat()}")
        return Outcome(_expired(cp, min(max(at, cp.expires_at), now)), True)
    target = _RESULT.get(verb)
    if target is None:
        raise ProcessingError(f"unknown checkpoint decision {verb!r}")
    if not actor:
        raise ProcessingError("a checkpoint decision needs an actor")
    if is_submitter(cp, actor):
        raise SelfDecisionError("the submitter of a request cannot decide its checkpoint")
    if cp.status == target:
        return Outcome(cp, False)
    if cp.status in ("approved", "rejected"):
        return Outcome(cp, False, f"checkpoint {cp.checkpoint_id} is already {cp.status}")
    if cp.is_expired(at):
        late = f"checkpoint {cp.checkpoint_id} expired at {cp.expires_at.isoformat()}"
        if cp.status == "expired":
            return Outcome(cp, False, late)
        return Outcome(_expired(cp, at), True, late)
    if target == "approved":
        if actor in cp.approvals:
            return Outcome(cp, False)  # the same approver again counts once
        approvals = (*cp.approvals, actor)
        if len(approvals) < cp.approvals_required:
            return Outcome(replace(cp, approvals=approvals), True)  # still pending
        cp = replace(cp, approvals=approvals)
    decided = replace(cp, status=target, decided_by=actor, decided_at=at, decision_reason=reason)
    return Outcome(decided, True)


def _expired(cp: Checkpoint, at: datetime) -> Checkpoint:
    return replace(cp, status="expired", decided_at=at, decision_reason="expired")


def apply_decision(
    cp: Checkpoint,
    decision: Decision,
    actor: str,
    now: datetime,
    reason: str | None = None,
) -> Transition:
    """Approve or reject at ``now``; repeating is a no-op, contradicting or deciding late
    raises ``ConflictError`` (and leaves persisting the expiry to :func:`expire`)."""
    outcome = transition(cp, decision, actor, now, now, reason)
    if outcome.conflict is not None:
        raise ConflictError(outcome.conflict)
    return Transition(outcome.checkpoint, outcome.changed)


def expire(cp: Checkpoint, now: datetime) -> Transition:
    """Mark a pending checkpoint expired once ``now`` reaches ``expires_at``; else no change."""
    outcome = transition(cp, "expire", "", now, now)
    return Transition(outcome.checkpoint, outcome.changed)
