"""The gateway's view of checkpoints: every held request and every decision, folded in order.

Tails the ``pending``, ``decisions`` and ``expiries`` topics from the beginning (all keep
everything), so a restarted gateway knows every checkpoint and its state. The fold uses the
same domain state machine as lane E (``nova.domain.checkpoints``), four eyes included, so the
gateway can answer "already decided" (harmless repeat), "decided the other way" (409),
"expired" (409) and "one more approver needed" exactly as the worker will apply them.

It trusts what lane E trusts: a decision counts only when it verifies with the gateway's
public key and names the held request's checkpoint and identity, never when its actor is the
request's submitter; an expiry only once the checkpoint is overdue (by the expiry's time and by
this gateway's clock). Anything else is skipped with a warning (lane E dead-letters and audits
it), so a forged approval never shows a checkpoint as approved here either.

An agent's tool call held during a run is a checkpoint like a request's (its own id, the
request's identity and submitter), shown with the call it holds (``agent_tool_call``: tool,
arguments, step) and that call's governance; approving it resumes the run, not the request.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from nova.convert import checkpoint_domain, domain_masks, from_ms
from nova.domain.checkpoints import Checkpoint, expire, parse_verb, transition
from nova.errors import ForbiddenError, SignatureError
from nova.kafka.tail import TopicTail
from nova.llm.agent_pause import AgentPause
from nova.records import CheckpointDecisionRecord, PipelineRecord
from nova.settings import Settings
from nova.signing import Verifier
from schemas import SchemaSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldRequest:
    checkpoint: Checkpoint
    record: PipelineRecord

    @property
    def user_id(self) -> str:
        return self.record.user_id

    def to_json(self) -> dict[str, object]:
        cp, gov = self.checkpoint, self.record.governance
        pause = AgentPause.from_json(self.record.agent_pause) if self.record.agent_pause else None
        fired = list(pause.decision.fired_rules if pause else gov.fired_rules if gov else [])
        reasons = list(pause.decision.reasons if pause else gov.reasons if gov else [])
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
            "approvals_required": cp.approvals_required,
            "approved_by": list(cp.approvals),
            "approvals_missing": cp.approvals_missing,
            "action": self.record.intent.action if self.record.intent else None,
            "prompt": self.record.prompt,
            "thread_id": self.record.thread_id,
            "meeting_id": self.record.meeting_id,
            "fired_rules": fired,
            "governance_reasons": reasons,
            # an agent's tool call held during the request's run (None: the request itself)
            "agent_tool_call": pause.describe(
                domain_masks(self.record.encoded.masks) if self.record.encoded else ())
            if pause else None,
        }


def fold_decision(held: HeldRequest, decision: CheckpointDecisionRecord) -> HeldRequest:
    """Apply a (verified) decision or expiry with lane E's transition, at the time it was made
    (an expiry once this gateway's clock shows the checkpoint overdue, as lane E's does);
    conflicting, foreign or self-made ones leave the state unchanged, a late one expires it."""
    cp = held.checkpoint
    if decision.checkpoint_id != cp.checkpoint_id or decision.identity_id != cp.identity_id:
        return held
    try:
        outcome = transition(cp, parse_verb(decision.decision), decision.actor,
                             from_ms(decision.decided_at), datetime.now(UTC), decision.reason)
    except ForbiddenError:
        return held  # the submitter's: lane E refuses it too
    return replace(held, checkpoint=outcome.checkpoint)


class CheckpointBook(TopicTail):
    """Every checkpoint since the beginning, by id; read to the end before the gateway serves."""

    TOPICS = ("pending", "decisions", "expiries")
    START = "beginning"

    def __init__(self, settings: Settings, schemas: SchemaSet, verifier: Verifier) -> None:
        super().__init__(settings, schemas)
        self.verifier = verifier
        self.by_id: dict[str, HeldRequest] = {}
        self._early: dict[str, list[CheckpointDecisionRecord]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._awaited: dict[str, asyncio.Event] = {}

    def lock(self, checkpoint_id: str) -> asyncio.Lock:
        """Serialises decisions on one checkpoint in this gateway: of an approve and a reject
        racing, the second sees the first and gets 409 instead of a misleading 200."""
        return self._locks.setdefault(checkpoint_id, asyncio.Lock())

    def get(self, checkpoint_id: str) -> HeldRequest | None:
        return self.by_id.get(checkpoint_id)

    async def known(self, checkpoint_id: str, timeout_s: float) -> bool:
        """Wait (up to ``timeout_s``) until this book holds ``checkpoint_id``.

        The request tracker and this book tail the pending topic apart, so a client answered
        423 by the one could ask the other about its checkpoint a moment too early, and be
        told it does not exist; the 423 waits for this first (read your own hold).
        """
        if checkpoint_id in self.by_id:
            return True
        arrived = self._awaited.setdefault(checkpoint_id, asyncio.Event())
        try:
            await asyncio.wait_for(arrived.wait(), timeout_s)
        except TimeoutError:
            return False
        finally:
            if self._awaited.get(checkpoint_id) is arrived and not arrived.is_set():
                del self._awaited[checkpoint_id]
        return True

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
            return
        decision = CheckpointDecisionRecord.from_avro(data)
        if topic == "expiries":
            if decision.decision == "expire":
                self._on_decision(decision)
            return
        try:
            self.verifier.verify_decision(decision)
        except SignatureError as exc:
            log.warning("decision on %s ignored: %s", decision.checkpoint_id, exc)
            return
        if decision.decision in ("approve", "reject"):
            self._on_decision(decision)

    def _on_pending(self, record: PipelineRecord) -> None:
        if record.checkpoint is None:
            return
        cp = checkpoint_domain(record.checkpoint, record.request_id, record.identity_id,
                               record.user_id)
        if cp.checkpoint_id in self.by_id:
            return  # a re-sent hold (lane E re-processing) changes nothing
        held = HeldRequest(cp, record)
        for decision in self._early.pop(cp.checkpoint_id, []):
            held = fold_decision(held, decision)
        self.by_id[cp.checkpoint_id] = held
        arrived = self._awaited.pop(cp.checkpoint_id, None)
        if arrived is not None:
            arrived.set()

    def _on_decision(self, decision: CheckpointDecisionRecord) -> None:
        held = self.by_id.get(decision.checkpoint_id)
        if held is None:  # decisions and holds are different topics: a decision may come first
            self._early.setdefault(decision.checkpoint_id, []).append(decision)
            return
        self.by_id[decision.checkpoint_id] = fold_decision(held, decision)
