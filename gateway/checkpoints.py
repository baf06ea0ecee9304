"""The gateway's view of checkpoints: every held request and every decision, folded in order.

Tails the ``pending`` and ``decisions`` topics from the beginning (both keep everything), so
a restarted gateway knows every checkpoint and its state. The fold uses the same domain state
machine as lane E (``nova.domain.checkpoints``), so the gateway can answer "already decided"
(harmless repeat), "decided the other way" (409) and "expired" (409) exactly as the worker
will apply them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from nova.domain.checkpoints import Checkpoint, apply_decision, expire
from nova.errors import ConflictError
from nova.kafka.tail import TopicTail
from nova.records import CheckpointDecisionRecord, PipelineRecord
from nova.settings import Settings
from schemas import SchemaSet
from streams.convert import checkpoint_domain, from_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldRequest:
    checkpoint: Checkpoint
    record: PipelineRecord

    @property
    def user_id(self) -> str:
        return self.record.user_id

    def to_json(self) -> dict[str, object]:
        cp = self.checkpoint
        return {
            "checkpoint_id": cp.checkpoint_id,
            "request_id": cp.request_id,
            "identity_id": cp.identity_id,
            "user_id": self.record.user_id,
            "status": cp.status,
            "reason": cp.reason,
            "created_at": cp.created_at.isoformat(),
            "expires_at": cp.expires_at.isoformat(),
            "decided_by": cp.decided_by,
            "decided_at": cp.decided_at.isoformat() if cp.decided_at else None,
            "decision_reason": cp.decision_reason,
            "action": self.record.intent.action if self.record.intent else None,
            "prompt": self.record.prompt,
        }


def fold_decision(held: HeldRequest, decision: CheckpointDecisionRecord) -> HeldRequest:
    """Apply a decision as lane E does; conflicting or late ones leave the state unchanged."""
    cp = held.checkpoint
    when = from_ms(decision.decided_at)
    if decision.decision == "expire":
        return replace(held, checkpoint=expire(cp, max(when, cp.expires_at)).checkpoint)
    try:
        changed = apply_decision(
            cp,
            decision.decision,  # type: ignore[arg-type]
            decision.actor,
            when,
            decision.reason,
        )
    except ConflictError:
        return held
    return replace(held, checkpoint=changed.checkpoint)


class CheckpointBook(TopicTail):
    """Every checkpoint since the beginning, by id; read to the end before the gateway serves."""

    TOPICS = ("pending", "decisions")
    START = "beginning"

    def __init__(self, settings: Settings, schemas: SchemaSet) -> None:
        super().__init__(settings, schemas)
        self.by_id: dict[str, HeldRequest] = {}
        self._early: dict[str, list[CheckpointDecisionRecord]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, checkpoint_id: str) -> asyncio.Lock:
        """Serialises decisions on one checkpoint in this gateway: of an approve and a reject
        racing, the second sees the first and gets 409 instead of a misleading 200."""
        return self._locks.setdefault(checkpoint_id, asyncio.Lock())

    def get(self, checkpoint_id: str) -> HeldRequest | None:
        return self.by_id.get(checkpoint_id)

    def for_identity(self, identity_id: str) -> list[HeldRequest]:
        now = datetime.now(UTC)
        return sorted(
            (
                self._as_of(h, now)
                for h in self.by_id.values()
                if h.checkpoint.identity_id == identity_id
            ),
            key=lambda h: h.checkpoint.created_at,
        )

    @staticmethod
    def _as_of(held: HeldRequest, now: datetime) -> HeldRequest:
        """Show an overdue checkpoint as expired even before the expiry decision lands."""
        return replace(held, checkpoint=expire(held.checkpoint, now).checkpoint)

    def record_decision(self, decision: CheckpointDecisionRecord) -> None:
        """Apply our own decision at once so the caller reads its own write."""
        held = self.by_id.get(decision.checkpoint_id)
        if held is not None:
            self.by_id[decision.checkpoint_id] = fold_decision(held, decision)

    def apply(self, topic: str, data: dict[str, Any]) -> None:
        if topic == "pending":
            self._on_pending(PipelineRecord.from_avro(data))
        else:
            self._on_decision(CheckpointDecisionRecord.from_avro(data))

    def _on_pending(self, record: PipelineRecord) -> None:
        if record.checkpoint is None:
            return
        cp = checkpoint_domain(record.checkpoint, record.request_id, record.identity_id)
        if cp.checkpoint_id in self.by_id:
            return  # a re-sent hold (lane E re-processing) changes nothing
        held = HeldRequest(cp, record)
        for decision in self._early.pop(cp.checkpoint_id, []):
            held = fold_decision(held, decision)
        self.by_id[cp.checkpoint_id] = held

    def _on_decision(self, decision: CheckpointDecisionRecord) -> None:
        held = self.by_id.get(decision.checkpoint_id)
        if held is None:  # decisions and holds are different topics: a decision may come first
            self._early.setdefault(decision.checkpoint_id, []).append(decision)
            return
        self.by_id[decision.checkpoint_id] = fold_decision(held, decision)
