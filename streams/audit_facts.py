"""Audit facts the lanes emit, built in one place so their ids and details stay consistent.

Fact ids are deterministic (request id + kind + transition), so a lane that re-processes a
record after a crash re-sends the same fact id; auditors and ClickHouse see one fact.
"""

from __future__ import annotations

import json
from typing import Any

from nova.records import AuditFact, CheckpointState, GovernanceDecision, PipelineRecord, now_ms


def canonical(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fact(
    kind: str,
    identity_id: str,
    detail: dict[str, Any],
    *,
    request_id: str | None = None,
    actor: str | None = None,
    suffix: str = "",
) -> AuditFact:
    base = request_id or identity_id
    return AuditFact(
        fact_id=f"{base}/{kind}{'/' + suffix if suffix else ''}",
        kind=kind,
        request_id=request_id,
        identity_id=identity_id,
        actor=actor,
        ts=now_ms(),
        detail=canonical(detail),
    )


def governance_fact(record: PipelineRecord, gov: GovernanceDecision) -> AuditFact:
    return fact(
        "GOVERNANCE",
        record.identity_id,
        {
            "outcome": gov.outcome,
            "fired_rules": list(gov.fired_rules),
            "reasons": list(gov.reasons),
            "action": record.intent.action if record.intent else None,
            "task_type": record.intent.task_type if record.intent else None,
        },
        request_id=record.request_id,
        actor=record.user_id,
    )


def checkpoint_fact(
    record: PipelineRecord, cp: CheckpointState, actor: str | None, suffix: str | None = None
) -> AuditFact:
    """A checkpoint transition; ``suffix`` tells apart facts of one status (approvals)."""
    return fact(
        "CHECKPOINT",
        record.identity_id,
        {
            "checkpoint_id": cp.checkpoint_id,
            "status": cp.status,
            "reason": cp.reason,
            "decision_reason": cp.decision_reason,
            "expires_at": cp.expires_at,
            "approvals": list(cp.approvals),
            "approvals_required": cp.approvals_required,
        },
        request_id=record.request_id,
        actor=actor,
        suffix=suffix or cp.status,
    )


UNTRUSTED_RECORD = "UNTRUSTED_RECORD"


def untrusted_fact(
    *,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    identity_id: str,
    request_id: str | None,
    claimed: dict[str, Any],
) -> AuditFact:
    """A decision or entity change refused because it is unsigned, badly signed or does not
    belong where it claims (``nova.signing``); the position lets ``nova audit verify`` match
    the refused record with its audit. ``claimed`` is what the record said, not the truth."""
    return fact(
        UNTRUSTED_RECORD,
        identity_id,
        {"topic": topic, "partition": partition, "offset": offset, "reason": reason,
         "claimed": claimed},
        request_id=request_id,
        actor=None,
        suffix=f"{topic}:{partition}:{offset}",
    )


def outcome_fact(record: PipelineRecord) -> AuditFact:
    ex = record.execution
    return fact(
        "OUTCOME",
        record.identity_id,
        {
            "status": record.status,
            "error": record.error,
            "provider": ex.provider if ex else None,
            "model": ex.model if ex else None,
            "cost_usd": ex.cost_usd if ex else 0.0,
            "attempts": ex.attempts if ex else 0,
            "lanes": [t.lane for t in record.lanes],
        },
        request_id=record.request_id,
        actor=record.user_id,
    )
