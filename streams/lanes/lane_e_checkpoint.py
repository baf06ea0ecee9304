"""Lane E, checkpoint: hold what needs a person's approval; resume it exactly once.

Requests that governance flagged (DELETE, SEND, TRANSFER, PAYMENT, PII, rules) are written to
the ``pending`` topic and to the ``held`` table (a Faust table, so held requests survive worker
restarts through its changelog). Decisions arrive on the ``decisions`` topic, keyed like the
requests, so the decision for a request lands on the partition holding it. Each held entry
moves from ``pending`` to exactly one of approved / rejected / expired; a later decision for
a resolved entry is ignored, which makes "approve resumes into lane F exactly once" hold even
when a decision is delivered twice. Expiry is a decision too: a timer publishes ``expire``
decisions for overdue entries, so every transition flows through one code path.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from nova.domain.checkpoints import apply_decision, expire, open_checkpoint
from nova.errors import ConflictError, SchemaError
from nova.records import CheckpointDecisionRecord, LaneTiming, PipelineRecord, now_ms
from streams.audit_facts import checkpoint_fact
from streams.context import LaneContext
from streams.convert import checkpoint_domain, checkpoint_record, from_ms
from streams.runtime import LaneOutcome

log = logging.getLogger(__name__)

EXPIRY_ACTOR = "system:expiry"
TARGET = {"approve": "approved", "reject": "rejected", "expire": "expired"}


def held_entry(record: PipelineRecord, state: str) -> bytes:
    return json.dumps({"state": state, "record": record.model_dump(mode="json")}).encode()


def parse_entry(raw: bytes) -> tuple[str, PipelineRecord]:
    data = json.loads(raw)
    return data["state"], PipelineRecord.model_validate(data["record"])


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
        key = record.request_id.encode()
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
        )
        state = checkpoint_record(cp)
        held = record.model_copy(update={"checkpoint": state, "status": "held"})
        ctx.state.held[key] = held_entry(held, "pending")
        await ctx.audit(checkpoint_fact(held, state, actor=None))
        return LaneOutcome(held, status="held", target="pending")


async def on_decision(ctx: LaneContext, message: Any) -> None:
    """Apply one decision to the held request it names (partition-local)."""
    codec = ctx.schemas["decision"]
    try:
        decision = CheckpointDecisionRecord.from_avro(codec.decode(message.value, message.headers))
    except (SchemaError, ValueError) as exc:
        await ctx.dead_letter(message, "E", exc)
        return
    table = ctx.state.held
    key = decision.request_id.encode()
    raw = table.get(key)
    if raw is None:
        log.warning("decision for unknown held request %s ignored", decision.request_id)
        return
    state, record = parse_entry(raw)
    if record.checkpoint is None:
        return
    if state != "pending":
        if state == TARGET.get(decision.decision):
            # The same decision again: after a crash the resumed record may never have reached
            # the broker, so send it once more (lane F's idempotency record prevents a 2nd call).
            await ctx.send("executable", record.request_id, record)
        return  # a contradicting decision after the first one changes nothing
    started = now_ms()
    # Judge expiry at the moment the person decided, not when this worker got to it: an
    # approval given in time stays valid even if the worker was down or behind.
    now = from_ms(decision.decided_at)
    cp = checkpoint_domain(record.checkpoint, record.request_id, record.identity_id)
    if decision.decision == "expire":
        transition = expire(cp, now)
    else:
        try:
            transition = apply_decision(
                cp,
                decision.decision,  # type: ignore[arg-type]
                decision.actor,
                now,
                decision.reason,
            )
        except ConflictError:
            transition = expire(cp, now)  # decided too late: the checkpoint had expired
    if not transition.changed:
        return
    new_cp = checkpoint_record(transition.checkpoint)
    status = {"approved": "in_flight", "rejected": "rejected", "expired": "expired"}[new_cp.status]
    error = (
        None
        if status == "in_flight"
        else f"checkpoint {new_cp.status}"
        + (f": {new_cp.decision_reason}" if new_cp.decision_reason else "")
    )
    duration = float(now_ms() - started)
    timing = LaneTiming(lane="E", status=new_cp.status, started_at=started, duration_ms=duration)
    resumed = record.model_copy(
        update={
            "checkpoint": new_cp,
            "status": status,
            "error": error,
            "lanes": (*record.lanes, timing),
        }
    )
    table[key] = held_entry(resumed, new_cp.status)
    await ctx.send("executable", resumed.request_id, resumed)
    await ctx.emit_lane_event(resumed, "E", new_cp.status, started, duration)
    await ctx.audit(checkpoint_fact(resumed, new_cp, actor=decision.actor))


async def sweep_expired(ctx: LaneContext, sent: set[str]) -> int:
    """Publish ``expire`` decisions for overdue pending checkpoints held by this worker."""
    now = now_ms()
    count = 0
    for key, raw in list(ctx.state.held.items()):
        state, record = parse_entry(raw)
        cp = record.checkpoint
        if state != "pending" or cp is None or cp.expires_at > now or cp.checkpoint_id in sent:
            continue
        await ctx.send(
            "decisions",
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
        del key
    return count
