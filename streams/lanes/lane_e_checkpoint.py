"""Lane E, checkpoint: hold what needs a person's approval; resume it exactly once.

Requests that governance flagged (DELETE, SEND, TRANSFER, PAYMENT, PII, rules) are written to
the ``pending`` topic and to the ``held`` table (a Faust table, so held requests survive worker
restarts through its changelog). Decisions arrive on the ``decisions`` topic, keyed like the
requests, so the decision for a request lands on the partition holding it. Each held entry
moves from ``pending`` to exactly one of approved / rejected / expired; a later decision for
a resolved entry is ignored, which makes "approve resumes into lane F exactly once" hold even
when a decision is delivered twice. The transitions are the domain state machine's
(``nova.domain.checkpoints``), four eyes included: the submitter never decides, and a
checkpoint needing two approvers stays pending, recording the first, until a second distinct
approver approves.

Only the gateway decides. A decision counts only when it verifies with the gateway's public
key (``nova.signing``) and names exactly the held request: its key, request, checkpoint and
identity. Anything else (unsigned, signed with another key, altered, a signed decision copied
onto another checkpoint, a decision by the submitter) is dead-lettered with its reason and
original bytes, audited as ``UNTRUSTED_RECORD``, and the request stays held.

An agent's tool call held during a run is decided here the same way (``streams.held``: its
entry has a key of its own, lane F wrote it): a decision names its checkpoint, which finds the
entry, and the decided record goes back to lane F, which resumes the run.

Expiry has its own topic, ``expiries``: the worker holds no signing key, so a timer publishes
unsigned ``expire`` records for overdue entries, and lane E consumes them next to the decisions
(one agent, so a partition's transitions stay in order). An expiry carries no authority: lane E
applies it only if, by its own clock, the checkpoint is overdue, so a forged expiry can at
worst ask for what the clock would do anyway.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from nova.audit.facts import checkpoint_fact, governance_fact, untrusted_fact
from nova.convert import checkpoint_domain, checkpoint_record, from_ms
from nova.domain.checkpoints import (
    Outcome,
    SelfDecisionError,
    open_checkpoint,
    parse_verb,
    transition,
)
from nova.errors import SchemaError, SignatureError
from nova.records import CheckpointDecisionRecord, LaneTiming, PipelineRecord, now_ms
from streams.context import LaneContext
from streams.held import find_held, held_entry, held_key, parse_entry
from streams.runtime import LaneOutcome

__all__ = ["CheckpointLane", "held_entry", "on_checkpoint_message", "on_decision",
           "on_expiry", "parse_entry", "sweep_expired"]

log = logging.getLogger(__name__)

EXPIRY_ACTOR = "system:expiry"
DECIDED_BY_PEOPLE = frozenset({"approve", "reject"})


class CheckpointLane:
    code = "E"
    source = "governed"
    output = "executable"

    async def process(self, record: PipelineRecord, ctx: LaneContext) -> LaneOutcome:
        if record.finished:
            return LaneOutcome(record, status="skipped")
        gov = record.governance
        if gov is None or gov.outcome != "require_approval":
            return LaneOutcome(record)
        key = held_key(record.request_id)
        existing = ctx.state.held.get(key)
        if existing is not None:
            # Re-delivered after a crash: never reopen (or re-date) a checkpoint. A pending one
            # stays pending; a decided one goes on as decided (lane F will not call twice).
            state_name, stored = parse_entry(existing)
            if state_name == "pending":
                return LaneOutcome(stored, status="held", target="pending")
            return LaneOutcome(stored, status=state_name)
        reason = "; ".join(gov.reasons) or "approval required"
        cp = open_checkpoint(
            record.request_id,
            record.identity_id,
            reason,
            datetime.now(UTC),
            ctx.settings.checkpoint_ttl_s,
            submitter=record.user_id,
            approvals_required=gov.approvals_required,
        )
        state = checkpoint_record(cp)
        held = record.model_copy(update={"checkpoint": state, "status": "held"})
        ctx.state.held[key] = held_entry(held, "pending")
        # The governance decision is chained now, before the hold, rather than by lane G when
        # (days later, perhaps) the request finishes; lane G skips it for a held request.
        await ctx.audit(governance_fact(held, gov))
        await ctx.audit(checkpoint_fact(held, state, actor=None))
        return LaneOutcome(held, status="held", target="pending")


async def on_checkpoint_message(ctx: LaneContext, message: Any) -> None:
    """One record of ``decisions`` or ``expiries`` (both consumed by one agent)."""
    if message.topic == ctx.settings.topic("expiries"):
        await on_expiry(ctx, message)
    else:
        await on_decision(ctx, message)


def _decode(ctx: LaneContext, message: Any) -> CheckpointDecisionRecord:
    codec = ctx.schemas["decision"]
    return CheckpointDecisionRecord.from_avro(codec.decode(message.value, message.headers))


async def _untrusted(
    ctx: LaneContext,
    message: Any,
    decision: CheckpointDecisionRecord,
    exc: Exception,
    held: PipelineRecord | None = None,
) -> None:
    """Dead-letter a decodable record lane E refuses to act on, and audit the attempt."""
    await ctx.dead_letter(message, "E", exc)
    await ctx.audit(
        untrusted_fact(
            topic=str(message.topic),
            partition=int(message.partition),
            offset=int(message.offset),
            reason=str(exc),
            identity_id=held.identity_id if held is not None else decision.identity_id,
            request_id=decision.request_id,
            claimed={
                "checkpoint_id": decision.checkpoint_id,
                "decision": decision.decision,
                "actor": decision.actor,
                "key_id": decision.key_id,
                "decided_at": decision.decided_at,
            },
        )
    )


def _binding_error(
    message: Any, decision: CheckpointDecisionRecord, record: PipelineRecord
) -> SignatureError | None:
    """Why a (validly signed) decision does not belong to the held request, if it does not."""
    assert record.checkpoint is not None
    key = message.key if isinstance(message.key, bytes) else None
    if key is not None and key != decision.request_id.encode():
        return SignatureError("the record's key names another request than its body")
    if decision.checkpoint_id != record.checkpoint.checkpoint_id:
        return SignatureError("the decision names another checkpoint than the held request's")
    if decision.identity_id != record.identity_id:
        return SignatureError("the decision names another identity than the held request's")
    return None


async def on_decision(ctx: LaneContext, message: Any) -> None:
    """Apply one signed decision to the held request it names (partition-local)."""
    try:
        decision = _decode(ctx, message)
    except (SchemaError, ValueError) as exc:
        await ctx.dead_letter(message, "E", exc)
        return
    try:
        ctx.services.verifier.verify_decision(decision)
        if decision.decision not in DECIDED_BY_PEOPLE:
            raise SignatureError(
                f"the decisions topic carries approve or reject, not {decision.decision!r}"
            )
    except SignatureError as exc:
        await _untrusted(ctx, message, decision, exc)
        return
    found = find_held(ctx.state.held, decision.request_id, decision.checkpoint_id)
    if found is None:
        log.warning("decision for unknown held request %s ignored", decision.request_id)
        return
    key, raw = found
    state, record = parse_entry(raw)
    if record.checkpoint is None:
        return
    problem = _binding_error(message, decision, record)
    if problem is not None:
        await _untrusted(ctx, message, decision, problem, record)
        return
    # Judge expiry at the moment the person decided, not when this worker got to it: an
    # approval given in time stays valid even if the worker was down or behind. The time is
    # the gateway's, under its signature.
    cp = checkpoint_domain(record.checkpoint, record.request_id, record.identity_id,
                           record.user_id)
    try:
        outcome = transition(cp, parse_verb(decision.decision), decision.actor,
                             from_ms(decision.decided_at), datetime.now(UTC), decision.reason)
    except SelfDecisionError as exc:
        if state == "pending":  # once decided, nothing it says is acted on anyway
            await _untrusted(ctx, message, decision, exc, record)
        return
    if not outcome.changed and outcome.conflict is None and state != "pending":
        # The same decision again: after a crash the resumed record may never have reached
        # the broker, so send it once more (lane F's idempotency record prevents a 2nd call).
        await ctx.send("executable", record.request_id, record)
        return
    # A contradicting decision changes nothing; a late one expires the checkpoint.
    await _apply(ctx, key, record, outcome, decision.actor)


async def on_expiry(ctx: LaneContext, message: Any) -> None:
    """Expire the held request an ``expiries`` record names, if lane E's clock agrees."""
    try:
        decision = _decode(ctx, message)
    except (SchemaError, ValueError) as exc:
        await ctx.dead_letter(message, "E", exc)
        return
    if decision.decision != "expire":
        wrong = SignatureError(f"the expiries topic carries only expire, not {decision.decision!r}")
        await _untrusted(ctx, message, decision, wrong)
        return
    found = find_held(ctx.state.held, decision.request_id, decision.checkpoint_id)
    if found is None:
        return
    key, raw = found
    state, record = parse_entry(raw)
    if state != "pending" or record.checkpoint is None:
        return
    if record.checkpoint.checkpoint_id != decision.checkpoint_id:
        return  # names another checkpoint: nothing this record may expire
    cp = checkpoint_domain(record.checkpoint, record.request_id, record.identity_id,
                           record.user_id)
    # Overdue by our clock, never by the record's claim; recorded at the record's time (within
    # the expiry and now), as every gateway records it.
    outcome = transition(cp, "expire", EXPIRY_ACTOR, from_ms(decision.decided_at),
                         datetime.now(UTC))
    if not outcome.changed:
        log.warning("premature expiry of %s ignored", decision.request_id)
        return
    await _apply(ctx, key, record, outcome, EXPIRY_ACTOR)


async def _apply(ctx: LaneContext, key: bytes, record: PipelineRecord, outcome: Outcome,
                 actor: str) -> None:
    """Persist a transition; a final one resumes the request into lane F, once.

    An agent run paused at a tool call (``agent_pause``) goes back to lane F ``in_flight``
    whatever was decided: the request is not rejected, the call is, and lane F tells the
    model; its timing is lane F's (lane E's row stays the request's own)."""
    if not outcome.changed:
        return
    new_cp = checkpoint_record(outcome.checkpoint)
    if new_cp.status == "pending":  # an approval recorded, more approvers needed
        waiting = record.model_copy(update={"checkpoint": new_cp})
        ctx.state.held[key] = held_entry(waiting, "pending")
        await ctx.audit(checkpoint_fact(waiting, new_cp, actor=actor, suffix=f"approval:{actor}"))
        return
    started = now_ms()
    status = {"approved": "in_flight", "rejected": "rejected", "expired": "expired"}[new_cp.status]
    error = (
        None
        if status == "in_flight"
        else f"checkpoint {new_cp.status}"
        + (f": {new_cp.decision_reason}" if new_cp.decision_reason else "")
    )
    duration = float(now_ms() - started)
    timing = LaneTiming(lane="E", status=new_cp.status, started_at=started, duration_ms=duration,
                        worker=ctx.worker)
    paused_run = record.agent_pause is not None
    resumed = record.model_copy(
        update={
            "checkpoint": new_cp,
            "status": "in_flight" if paused_run else status,
            "error": None if paused_run else error,
            "lanes": record.lanes if paused_run else (*record.lanes, timing),
        }
    )
    ctx.state.held[key] = held_entry(resumed, new_cp.status)
    await ctx.send("executable", resumed.request_id, resumed)  # lane G writes its lane events
    await ctx.audit(checkpoint_fact(resumed, new_cp, actor=actor))


async def sweep_expired(ctx: LaneContext, sent: set[str]) -> int:
    """Publish ``expire`` records on ``expiries`` for overdue pending checkpoints held here."""
    now = now_ms()
    count = 0
    for raw in list(ctx.state.held.values()):
        state, record = parse_entry(raw)
        cp = record.checkpoint
        if state != "pending" or cp is None or cp.expires_at > now or cp.checkpoint_id in sent:
            continue
        await ctx.send(
            "expiries",
            record.request_id,
            CheckpointDecisionRecord(
                checkpoint_id=cp.checkpoint_id,
                request_id=record.request_id,
                identity_id=record.identity_id,
                decision="expire",
                actor=EXPIRY_ACTOR,
                reason="expired",
                decided_at=now,
            ),
        )
        sent.add(cp.checkpoint_id)
        count += 1
    return count
