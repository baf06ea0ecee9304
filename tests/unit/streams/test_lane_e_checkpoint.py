"""Lane E: a held request is decided once, by the time the person decided, whatever replays."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from nova.records import (
    CheckpointDecisionRecord,
    GovernanceDecision,
    Intent,
    PipelineRecord,
    Record,
    now_ms,
)
from nova.settings import load_settings
from schemas import load_schema_set
from streams.lanes.lane_e_checkpoint import CheckpointLane, on_decision, parse_entry


@dataclass
class FakeCtx:
    """The parts of LaneContext lane E uses, recording what it sends."""

    settings: Any = field(default_factory=lambda: load_settings(checkpoint_ttl_s=60))
    schemas: Any = field(default_factory=load_schema_set)
    state: Any = field(default_factory=lambda: SimpleNamespace(held={}))
    sent: list[tuple[str, Record]] = field(default_factory=list)
    facts: list[Record] = field(default_factory=list)
    lane_events: list[str] = field(default_factory=list)

    async def send(self, topic: str, key: str, record: Record) -> None:
        self.sent.append((topic, record))

    async def audit(self, fact: Record) -> None:
        self.facts.append(fact)

    async def emit_lane_event(self, record: Any, lane: str, status: str, *_: Any,
                              **__: Any) -> None:
        self.lane_events.append(status)

    async def dead_letter(self, message: Any, lane: str, exc: BaseException) -> None:
        raise AssertionError(f"unexpected dead letter: {exc}")


@dataclass
class Msg:
    value: bytes
    headers: list[tuple[str, bytes]]


def payment() -> PipelineRecord:
    return PipelineRecord(
        request_id="r-1", identity_id="alice", user_id="u-alice", submitted_at=now_ms(),
        prompt="pay the invoice",
        intent=Intent(task_type="general", action="PAYMENT", confidence=0.9),
        governance=GovernanceDecision(outcome="require_approval",
                                      reasons=("CHECKPOINT_ACTION: PAYMENT",)),
        status="in_flight",
    )


def decision(ctx: FakeCtx, verb: str, decided_at: int) -> Msg:
    codec = ctx.schemas["decision"]
    rec = CheckpointDecisionRecord(checkpoint_id="cp", request_id="r-1", identity_id="alice",
                                   decision=verb, actor="u-approver", decided_at=decided_at)
    return Msg(codec.encode(rec.to_avro()), [codec.header])


async def hold(ctx: FakeCtx) -> PipelineRecord:
    outcome = await CheckpointLane().process(payment(), ctx)
    assert outcome.target == "pending"
    assert outcome.status == "held"
    return outcome.record


async def test_a_redelivered_request_keeps_its_checkpoint_instead_of_reopening_it() -> None:
    ctx = FakeCtx()
    first = await hold(ctx)
    again = await CheckpointLane().process(payment(), ctx)
    assert again.target == "pending"
    assert again.record.checkpoint == first.checkpoint, "same id, same expiry"
    assert len(ctx.facts) == 1, "the hold is audited once"


async def test_approval_resumes_once_and_a_contrary_decision_changes_nothing() -> None:
    ctx = FakeCtx()
    await hold(ctx)
    await on_decision(ctx, decision(ctx, "approve", now_ms()))
    resumed = [r for topic, r in ctx.sent if topic == "executable"]
    assert len(resumed) == 1
    assert resumed[0].status == "in_flight"  # type: ignore[attr-defined]
    await on_decision(ctx, decision(ctx, "reject", now_ms()))
    assert len([t for t, _ in ctx.sent if t == "executable"]) == 1
    state, _ = parse_entry(ctx.state.held[b"r-1"])
    assert state == "approved"


async def test_a_repeated_approval_resends_the_resumed_request_in_case_it_was_lost() -> None:
    ctx = FakeCtx()
    await hold(ctx)
    await on_decision(ctx, decision(ctx, "approve", now_ms()))
    await on_decision(ctx, decision(ctx, "approve", now_ms()))
    sent = [r for topic, r in ctx.sent if topic == "executable"]
    assert len(sent) == 2
    assert sent[0].request_id == sent[1].request_id
    assert ctx.lane_events == ["approved"], "the transition itself happened once"


async def test_an_approval_given_in_time_counts_even_if_processed_after_expiry() -> None:
    ctx = FakeCtx()
    held = await hold(ctx)
    assert held.checkpoint is not None
    in_time = held.checkpoint.expires_at - 1
    await on_decision(ctx, decision(ctx, "approve", in_time))
    state, _ = parse_entry(ctx.state.held[b"r-1"])
    assert state == "approved"


async def test_an_approval_given_after_expiry_expires_the_request() -> None:
    ctx = FakeCtx()
    held = await hold(ctx)
    assert held.checkpoint is not None
    await on_decision(ctx, decision(ctx, "approve", held.checkpoint.expires_at + 1))
    state, record = parse_entry(ctx.state.held[b"r-1"])
    assert state == "expired"
    assert record.status == "expired"
