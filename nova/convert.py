"""Conversions between pure domain values (datetimes, dataclasses) and wire records (ms, Avro).

Lanes call the domain modules with domain values and put wire records on topics; keeping the
mapping here means neither side learns the other's representation.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nova.domain.checkpoints import Checkpoint
from nova.domain.context import ContextSnapshot as DomainSnapshot
from nova.domain.encoding import EncodedPrompt as DomainEncoded
from nova.domain.governance import GovernanceDecision as DomainDecision
from nova.domain.intent import Intent as DomainIntent
from nova.domain.masking import Mask as DomainMask
from nova.records import (
    CheckpointState,
    ContextSnapshot,
    EncodedPrompt,
    GovernanceDecision,
    Intent,
    Mask,
    Message,
)


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def intent_record(i: DomainIntent) -> Intent:
    return Intent(
        task_type=i.task_type,
        action=i.action,
        confidence=i.confidence,
        reasons=tuple(i.reasons),
        defers_to_context=i.defers_to_context,
        language=i.language,
    )


def context_record(s: DomainSnapshot, text: str) -> ContextSnapshot:
    return ContextSnapshot(
        text=text,
        token_count=s.total_tokens,
        item_count=s.item_count,
        truncated=s.truncated,
        sources=s.sources,
    )


def encoded_record(e: DomainEncoded) -> EncodedPrompt:
    return EncodedPrompt(
        messages=tuple(Message(role=m.role, content=m.content) for m in e.messages),
        token_estimate=e.token_estimate,
        masks=tuple(
            Mask(placeholder=m.placeholder, kind=m.kind, value=m.value, written=m.written)
            for m in e.masks
        ),
    )


def domain_masks(masks: tuple[Mask, ...]) -> tuple[DomainMask, ...]:
    """Wire masks back to the domain's, for unmasking an answer."""
    return tuple(
        DomainMask(m.placeholder, m.kind, m.value, m.written)
        for m in masks
    )


def governance_record(d: DomainDecision) -> GovernanceDecision:
    return GovernanceDecision(
        outcome=d.outcome,
        fired_rules=tuple(d.fired_rule_ids),
        reasons=tuple(d.reasons),
        approvals_required=d.approvals_required,
    )


def checkpoint_record(cp: Checkpoint) -> CheckpointState:
    return CheckpointState(
        checkpoint_id=cp.checkpoint_id,
        reason=cp.reason,
        status=cp.status,
        created_at=to_ms(cp.created_at),
        expires_at=to_ms(cp.expires_at),
        decided_by=cp.decided_by,
        decided_at=to_ms(cp.decided_at) if cp.decided_at else None,
        decision_reason=cp.decision_reason,
        approvals_required=cp.approvals_required,
        approvals=cp.approvals,
    )


def checkpoint_domain(
    state: CheckpointState, request_id: str, identity_id: str, submitter: str | None
) -> Checkpoint:
    """The domain checkpoint of a held record; ``submitter`` is the record's ``user_id``."""
    return Checkpoint(
        checkpoint_id=state.checkpoint_id,
        request_id=request_id,
        identity_id=identity_id,
        reason=state.reason,
        created_at=from_ms(state.created_at),
        expires_at=from_ms(state.expires_at),
        status=state.status,
        decided_by=state.decided_by,
        decided_at=from_ms(state.decided_at) if state.decided_at else None,
        decision_reason=state.decision_reason,
        submitter=submitter,
        approvals_required=state.approvals_required,
        approvals=state.approvals,
    )
