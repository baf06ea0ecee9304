"""Checkpoint decisions: ``/api/v2/governance/checkpoints``.

Only an approver (or admin) of the identity that owns the held request may decide it; another
identity gets 403 (and an IDENTITY_BOUNDARY audit fact), whatever its roles. Four eyes: the
submitter of the request (the token subject that submitted it) never decides it, whatever its
roles: 403, and, like a member without the approver role, a ``CHECKPOINT_DENIED`` audit fact.
Deciding twice the same way is harmless; the opposite decision, or any decision after expiry,
is 409. A checkpoint that needs two approvers (a four-eyes rule) answers the first approval
with 200 and ``status: pending``, ``approved_by`` naming the first approver and
``approvals_missing: 1``; the second distinct approver's approval resumes the request, the
first approver approving again changes nothing.

Each decision is signed with the gateway's key (``nova.signing``) before it is produced: lane
E acts on nothing else.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from gateway.bodies import StrictBody
from gateway.checkpoints import CheckpointBook, HeldRequest
from gateway.deps import PrincipalDep, ServicesDep
from gateway.services import Services
from nova.audit.facts import emit_audit_fact, fact
from nova.auth.tokens import Principal
from nova.domain.checkpoints import is_submitter, may_decide, transition
from nova.errors import ConflictError, ForbiddenError, NotFoundError
from nova.records import CheckpointDecisionRecord, now_ms

log = logging.getLogger(__name__)

CHECKPOINT_DENIED = "CHECKPOINT_DENIED"

router = APIRouter(prefix="/api/v2/governance/checkpoints", tags=["checkpoints"])


class DecisionBody(StrictBody):
    reason: str | None = Field(default=None, max_length=2000)


def visible(held: HeldRequest, principal: Principal) -> bool:
    """Approvers see every checkpoint of their identity; members see their own requests'."""
    return principal.has_role("approver", "admin") or held.user_id == principal.sub


@router.get("")
async def list_checkpoints(
    principal: PrincipalDep,
    services: ServicesDep,
    status: Literal["pending", "approved", "rejected", "expired"] | None = Query(default=None),
) -> dict[str, Any]:
    book = services.checkpoints
    items = [h for h in book.for_identity(principal.identity) if visible(h, principal)]
    if status is not None:
        items = [h for h in items if h.checkpoint.status == status]
    return {"checkpoints": [h.to_json() for h in items]}


async def owned(services: Services, principal: Principal, checkpoint_id: str) -> HeldRequest:
    held = services.checkpoints.get(checkpoint_id)
    if held is None:
        raise NotFoundError(f"no checkpoint {checkpoint_id}")
    if held.checkpoint.identity_id != principal.identity:
        await services.boundary.violation(
            principal, "checkpoint", checkpoint_id, held.checkpoint.identity_id
        )
        raise ForbiddenError("this checkpoint belongs to another identity")
    return held


@router.get("/{checkpoint_id}", responses={403: {}, 404: {}})
async def get_checkpoint(
    checkpoint_id: str, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    held = await owned(services, principal, checkpoint_id)
    if not visible(held, principal):
        raise ForbiddenError("only approvers see other members' checkpoints")
    return CheckpointBook._as_of(held, datetime.now(UTC)).to_json()


async def denied(
    services: Services, principal: Principal, held: HeldRequest, decision: str, why: str
) -> None:
    """Audit a refused decision attempt; a failure to record it never turns it into an allow."""
    cp = held.checkpoint
    try:
        await emit_audit_fact(
            services.producer,
            CHECKPOINT_DENIED,
            cp.identity_id,
            principal.sub,
            cp.request_id,
            {"resource_kind": "checkpoint", "resource_id": cp.checkpoint_id,
             "operation": decision, "why": why, "roles": sorted(principal.roles)},
        )
    except Exception:
        log.exception("could not audit a refused decision on %s", cp.checkpoint_id)


async def decide(
    checkpoint_id: str,
    decision: Literal["approve", "reject"],
    body: DecisionBody,
    principal: Principal,
    services: Services,
) -> dict[str, Any]:
    held = await owned(services, principal, checkpoint_id)
    if not may_decide(held.checkpoint, principal.identity, principal.roles):
        await denied(services, principal, held, decision, "not_an_approver")
        raise ForbiddenError("deciding a checkpoint needs the approver role of its identity")
    if is_submitter(held.checkpoint, principal.sub):
        await denied(services, principal, held, decision, "submitter")
        raise ForbiddenError("the submitter of a request cannot decide its checkpoint")
    async with services.checkpoints.lock(checkpoint_id):
        held = services.checkpoints.get(checkpoint_id) or held  # the state after any decision ahead
        now = datetime.now(UTC)
        cp = held.checkpoint
        outcome = transition(cp, decision, principal.sub, now, now, body.reason)
        if outcome.conflict is not None:  # the opposite decision came first, or too late
            expired = outcome.checkpoint.status == "expired"
            raise ConflictError("this checkpoint has expired" if expired else outcome.conflict)
        if outcome.changed:
            record = services.signer.sign_decision(
                CheckpointDecisionRecord(
                    checkpoint_id=cp.checkpoint_id,
                    request_id=cp.request_id,
                    identity_id=cp.identity_id,
                    decision=decision,
                    actor=principal.sub,
                    reason=body.reason,
                    decided_at=now_ms(),
                )
            )
            await services.producer.send("decisions", cp.request_id, record)
            services.checkpoints.record_decision(record)
            await services.producer.send(
                "facts",
                cp.request_id,
                fact(
                    "CHECKPOINT_DECISION",
                    cp.identity_id,
                    {
                        "checkpoint_id": cp.checkpoint_id,
                        "decision": decision,
                        "reason": body.reason,
                    },
                    request_id=cp.request_id,
                    actor=principal.sub,
                    suffix=f"{decision}:{principal.sub}",
                ),
            )
    current = services.checkpoints.get(checkpoint_id) or held
    return current.to_json()


@router.post("/{checkpoint_id}/approve", responses={403: {}, 404: {}, 409: {}})
async def approve(
    checkpoint_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    body: DecisionBody | None = None,
) -> dict[str, Any]:
    return await decide(checkpoint_id, "approve", body or DecisionBody(), principal, services)


@router.post("/{checkpoint_id}/reject", responses={403: {}, 404: {}, 409: {}})
async def reject(
    checkpoint_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    body: DecisionBody | None = None,
) -> dict[str, Any]:
    return await decide(checkpoint_id, "reject", body or DecisionBody(), principal, services)
