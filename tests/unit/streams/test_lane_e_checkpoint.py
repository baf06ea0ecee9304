"""Lane E: a held request is decided once, by the time the person decided, whatever replays;
only the gateway's signed decisions count, the submitter never decides, and a four-eyes
checkpoint waits for a second distinct approver."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.checkpoints import CheckpointBook
from nova.convert import checkpoint_record
from nova.domain.checkpoints import checkpoint_id_for, open_checkpoint
from nova.records import (
    CheckpointDecisionRecord,
    GovernanceDecision,
    Intent,
    PipelineRecord,
    Record,
    now_ms,
)
from nova.settings import load_settings
from nova.signing import Signer
from schemas import load_schema_set
from streams.context import LaneContext
from streams.held import held_key
from streams.lanes.lane_e_checkpoint import (
    CheckpointLane,
    held_entry,
    on_checkpoint_message,
    on_decision,
    parse_entry,
    sweep_expired,
)

GATEWAY = Signer(Ed25519PrivateKey.generate())
FORGER = Signer(Ed25519PrivateKey.generate())


@dataclass
class FakeCtx:
    """The parts of LaneContext lane E uses, recording what it sends."""

    settings: Any = field(default_factory=lambda: load_settings(checkpoint_ttl_s=60))
    schemas: Any = field(default_factory=load_schema_set)
    state: Any = field(default_factory=lambda: SimpleNamespace(held={}))
    services: Any = field(default_factory=lambda: SimpleNamespace(verifier=GATEWAY.verifier))
    sent: list[tuple[str, Record]] = field(default_factory=list)
    facts: list[Record] = field(default_factory=list)
    worker: str = "worker-test"
    dead: list[tuple[Any, str]] = field(default_factory=list)

    async def send(self, topic: str, key: str, record: Record) -> None:
        self.sent.append((topic, record))

    async def audit(self, fact: Record) -> None:
        self.facts.append(fact)

    async def dead_letter(self, message: Any, lane: str, exc: BaseException) -> None:
        self.dead.append((message, str(exc)))

    @property
    def lane(self) -> LaneContext:
        """This fake where lane E takes a LaneContext: it has every part lane E uses."""
        return cast(LaneContext, self)


@dataclass
class Msg:
    value: bytes
    headers: list[tuple[str, bytes]]
    key: bytes = b"r-1"
    topic: str = "nova.decisions"
    partition: int = 0
    offset: int = 0


def payment(approvals: int = 1) -> PipelineRecord:
    return PipelineRecord(
        request_id="r-1", identity_id="alice", user_id="u-alice", submitted_at=now_ms(),
        prompt="pay the invoice",
        intent=Intent(task_type="general", action="PAYMENT", confidence=0.9),
        governance=GovernanceDecision(outcome="require_approval",
                                      reasons=("CHECKPOINT_ACTION: PAYMENT",),
                                      approvals_required=approvals),
        status="in_flight",
    )


def decision(ctx: FakeCtx, verb: str, decided_at: int, *, actor: str = "u-approver",
             signer: Signer | None = GATEWAY, request_id: str = "r-1",
             topic: str = "nova.decisions", signed_checkpoint: str | None = None,
             **changes: Any) -> Msg:
    """A decision record as the gateway writes it (``signer=None``: unsigned), then
    ``changes`` applied after signing, as a forger would."""
    codec = ctx.schemas["decision"]
    rec = CheckpointDecisionRecord(checkpoint_id=signed_checkpoint or checkpoint_id_for(request_id),
                                   request_id=request_id, identity_id="alice", decision=verb,
                                   actor=actor, decided_at=decided_at)
    if signer is not None:
        rec = signer.sign_decision(rec)
    rec = rec.model_copy(update=changes)
    return Msg(codec.encode(rec.to_avro()), [codec.header], key=rec.request_id.encode(),
               topic=topic, offset=len(ctx.sent) + len(ctx.dead))


async def hold(ctx: FakeCtx, approvals: int = 1) -> PipelineRecord:
    outcome = await CheckpointLane().process(payment(approvals), ctx.lane)
    assert outcome.target == "pending"
    assert outcome.status == "held"
    return outcome.record


async def test_a_redelivered_request_keeps_its_checkpoint_instead_of_reopening_it() -> None:
    ctx = FakeCtx()
    first = await hold(ctx)
    again = await CheckpointLane().process(payment(), ctx.lane)
    assert again.target == "pending"
    assert again.record.checkpoint == first.checkpoint, "same id, same expiry"
    assert [getattr(f, "kind", None) for f in ctx.facts] == ["GOVERNANCE", "CHECKPOINT"]


async def test_approval_resumes_once_and_a_contrary_decision_changes_nothing() -> None:
    ctx = FakeCtx()
    await hold(ctx)
    await on_decision(ctx.lane, decision(ctx, "approve", now_ms()))
    resumed = executable(ctx)
    assert len(resumed) == 1
    assert resumed[0].status == "in_flight"
    await on_decision(ctx.lane, decision(ctx, "reject", now_ms()))
    assert len([t for t, _ in ctx.sent if t == "executable"]) == 1
    state, _ = parse_entry(ctx.state.held[b"r-1"])
    assert state == "approved"


async def test_a_repeated_approval_resends_the_resumed_request_in_case_it_was_lost() -> None:
    ctx = FakeCtx()
    await hold(ctx)
    await on_decision(ctx.lane, decision(ctx, "approve", now_ms()))
    await on_decision(ctx.lane, decision(ctx, "approve", now_ms()))
    sent = executable(ctx)
    assert len(sent) == 2
    assert sent[0].request_id == sent[1].request_id
    for resent in sent:  # the transition itself happened once: one lane E timing, approved
        assert [(t.lane, t.status, t.worker) for t in resent.lanes
                if t.lane == "E"] == [("E", "approved", "worker-test")]


async def test_an_approval_given_in_time_counts_even_if_processed_after_expiry() -> None:
    ctx = FakeCtx()
    held = await hold(ctx)
    assert held.checkpoint is not None
    in_time = held.checkpoint.expires_at - 1
    await on_decision(ctx.lane, decision(ctx, "approve", in_time))
    state, _ = parse_entry(ctx.state.held[b"r-1"])
    assert state == "approved"


async def test_an_approval_given_after_expiry_expires_the_request() -> None:
    ctx = FakeCtx()
    held = await hold(ctx)
    assert held.checkpoint is not None
    await on_decision(ctx.lane, decision(ctx, "approve", held.checkpoint.expires_at + 1))
    state, record = parse_entry(ctx.state.held[b"r-1"])
    assert state == "expired"
    assert record.status == "expired"


async def test_a_tool_call_held_in_a_run_is_decided_under_its_own_key() -> None:
    """Lane F holds an agent's call under the request id and the call's checkpoint: deciding it
    leaves the request's own (approved) entry as it was, and sends the run back in flight."""
    ctx = FakeCtx()
    await hold(ctx)
    await on_decision(ctx.lane, decision(ctx, "approve", now_ms()))
    own = ctx.state.held[b"r-1"]
    call = checkpoint_record(open_checkpoint("r-1", "alice", "SEND", datetime.now(UTC), 60,
                                             submitter="u-alice", part="tool/1/0"))
    paused = payment().model_copy(update={"status": "held", "checkpoint": call,
                                          "agent_pause": "{}"})
    ctx.state.held[held_key("r-1", call.checkpoint_id)] = held_entry(paused, "pending")
    await on_decision(ctx.lane, decision(ctx, "reject", now_ms(),
                                         signed_checkpoint=call.checkpoint_id))
    back = executable(ctx)[-1]
    assert back.checkpoint is not None
    assert (back.status, back.error, back.checkpoint.status) == ("in_flight", None, "rejected")
    assert back.lanes == paused.lanes, "lane E's row stays the request's own"
    assert ctx.state.held[b"r-1"] == own
    state, _ = parse_entry(ctx.state.held[held_key("r-1", call.checkpoint_id)])
    assert state == "rejected"
    await on_decision(ctx.lane, decision(ctx, "approve", now_ms()))  # the request's, again
    assert not ctx.dead, "a repeated decision on the request's checkpoint is not foreign"
    assert [getattr(f, "fact_id", "") for f in ctx.facts][-1] == (
        f"r-1/CHECKPOINT/{call.checkpoint_id}:rejected")


async def test_an_overdue_tool_call_expires_under_its_own_key_and_the_run_goes_on() -> None:
    ctx = FakeCtx()
    ago = datetime.now(UTC) - timedelta(minutes=2)
    call = checkpoint_record(open_checkpoint("r-1", "alice", "SEND", ago, 60,
                                             submitter="u-alice", part="tool/2/1"))
    paused = payment().model_copy(update={"status": "held", "checkpoint": call,
                                          "agent_pause": "{}"})
    key = held_key("r-1", call.checkpoint_id)
    ctx.state.held[key] = held_entry(paused, "pending")
    assert await sweep_expired(ctx.lane, set()) == 1
    topic, expiry = ctx.sent[-1]
    assert topic == "expiries"
    assert isinstance(expiry, CheckpointDecisionRecord)
    assert expiry.checkpoint_id == call.checkpoint_id
    codec = ctx.schemas["decision"]
    await on_checkpoint_message(ctx.lane, Msg(codec.encode(expiry.to_avro()), [codec.header],
                                              topic=ctx.settings.topic("expiries")))
    state, _ = parse_entry(ctx.state.held[key])
    assert state == "expired"
    back = executable(ctx)[-1]
    assert back.checkpoint is not None
    assert (back.status, back.checkpoint.status) == ("in_flight", "expired")
    assert b"r-1" not in ctx.state.held, "the request itself was never held"


def executable(ctx: FakeCtx) -> list[PipelineRecord]:
    """The requests lane E resumed (sent to lane F), in order."""
    resumed = []
    for topic, record in ctx.sent:
        if topic == "executable":
            assert isinstance(record, PipelineRecord)
            resumed.append(record)
    return resumed


def untrusted(ctx: FakeCtx) -> list[Any]:
    return [f for f in ctx.facts if getattr(f, "kind", "") == "UNTRUSTED_RECORD"]


async def test_forged_decisions_leave_the_request_held_and_are_dead_lettered_and_audited() -> None:
    ctx = FakeCtx()
    await hold(ctx)
    now = now_ms()
    forgeries = {
        "unsigned": decision(ctx, "approve", now, signer=None),
        "another key": decision(ctx, "approve", now, signer=FORGER),
        "altered after signing": decision(ctx, "approve", now, reason="altered"),
        "tampered signature": decision(ctx, "approve", now, signature=b"\x00" * 64),
        "expire on decisions": decision(ctx, "expire", now),
    }
    for msg in forgeries.values():
        await on_checkpoint_message(ctx.lane, msg)
    state, record = parse_entry(ctx.state.held[b"r-1"])
    assert state == "pending"
    assert record.status == "held"
    assert executable(ctx) == []
    assert len(ctx.dead) == len(forgeries)
    assert [m.value for m, _ in ctx.dead] == [m.value for m in forgeries.values()], "raw bytes"
    reasons = [reason for _, reason in ctx.dead]
    assert reasons[0] == "unsigned record"
    assert "unknown key" in reasons[1]
    assert "bad signature" in reasons[2]
    assert "bad signature" in reasons[3]
    assert "approve or reject" in reasons[4]
    facts = untrusted(ctx)
    assert len(facts) == len(forgeries)
    assert {(f.request_id, f.identity_id) for f in facts} == {("r-1", "alice")}


async def test_a_signed_approval_replayed_onto_another_checkpoint_is_refused() -> None:
    ctx = FakeCtx()
    await hold(ctx)
    other = checkpoint_id_for("r-other")
    # The signature covers the checkpoint: rewriting it breaks the signature...
    await on_decision(ctx.lane, decision(ctx, "approve", now_ms(), checkpoint_id=other))
    # ...and a decision signed for another checkpoint, sent under this request's key and id,
    # names a checkpoint that is not the held one.
    codec = ctx.schemas["decision"]
    signed = GATEWAY.sign_decision(CheckpointDecisionRecord(
        checkpoint_id=other, request_id="r-1", identity_id="alice", decision="approve",
        actor="u-approver", decided_at=now_ms()))
    await on_decision(ctx.lane, Msg(codec.encode(signed.to_avro()), [codec.header]))
    state, _ = parse_entry(ctx.state.held[b"r-1"])
    assert state == "pending"
    assert executable(ctx) == []
    assert "bad signature" in ctx.dead[0][1]
    assert "another checkpoint" in ctx.dead[1][1]
    assert len(untrusted(ctx)) == 2


async def test_the_submitter_never_decides_even_with_a_signed_decision() -> None:
    ctx = FakeCtx()
    await hold(ctx)
    await on_decision(ctx.lane, decision(ctx, "approve", now_ms(), actor="u-alice"))
    state, _ = parse_entry(ctx.state.held[b"r-1"])
    assert state == "pending"
    assert "submitter" in ctx.dead[0][1]
    assert len(untrusted(ctx)) == 1


async def test_four_eyes_waits_for_a_second_distinct_approver() -> None:
    ctx = FakeCtx()
    await hold(ctx, approvals=2)
    await on_decision(ctx.lane, decision(ctx, "approve", now_ms(), actor="u-bob"))
    await on_decision(ctx.lane, decision(ctx, "approve", now_ms(), actor="u-bob"))
    state, record = parse_entry(ctx.state.held[b"r-1"])
    assert state == "pending"
    assert record.checkpoint is not None
    assert record.checkpoint.approvals == ("u-bob",), "the same approver counts once"
    assert executable(ctx) == []
    await on_decision(ctx.lane, decision(ctx, "approve", now_ms(), actor="u-carol"))
    state, record = parse_entry(ctx.state.held[b"r-1"])
    assert state == "approved"
    assert record.checkpoint is not None
    assert record.checkpoint.approvals == ("u-bob", "u-carol")
    assert record.checkpoint.decided_by == "u-carol"
    assert len(executable(ctx)) == 1
    assert ctx.dead == []


async def test_expiries_come_from_their_own_topic_and_only_count_when_overdue() -> None:
    ctx = FakeCtx()
    held = await hold(ctx)
    assert held.checkpoint is not None
    early = decision(ctx, "expire", held.checkpoint.expires_at + 10_000, signer=None,
                     topic=ctx.settings.topic("expiries"))
    await on_checkpoint_message(ctx.lane, early)  # the record claims it is late; our clock says no
    state, _ = parse_entry(ctx.state.held[b"r-1"])
    assert state == "pending"
    approve_on_expiries = decision(ctx, "approve", now_ms(), topic=ctx.settings.topic("expiries"))
    await on_checkpoint_message(ctx.lane, approve_on_expiries)
    assert "only expire" in ctx.dead[-1][1]
    state, _ = parse_entry(ctx.state.held[b"r-1"])
    assert state == "pending"


# -- lane E and the gateway's checkpoint book reach the same state from the same records -------


def book_with(ctx: FakeCtx, held: PipelineRecord) -> CheckpointBook:
    """The gateway's book, holding what lane E held (as read from the pending topic)."""
    book = CheckpointBook(ctx.settings, ctx.schemas, GATEWAY.verifier)
    codec = ctx.schemas["pipeline_record"]
    book.apply("pending", codec.decode(codec.encode(held.to_avro()), [codec.header]))
    return book


def overdue(ctx: FakeCtx, held: PipelineRecord) -> PipelineRecord:
    """``held`` as if its checkpoint had expired a minute ago (lane E's entry rewritten)."""
    assert held.checkpoint is not None
    ago = now_ms() - 60_000
    cp = held.checkpoint.model_copy(update={"created_at": ago - 60_000, "expires_at": ago})
    held = held.model_copy(update={"checkpoint": cp})
    ctx.state.held[b"r-1"] = held_entry(held, "pending")
    return held


# Each step: verb, decided_at relative to the checkpoint's expiry (ms), actor, topic.
AGREEMENT = {
    "late approval": (False, 1, [("approve", 1, "u-bob", "decisions")]),
    "in-time approval read after expiry": (True, 1, [("approve", -1, "u-bob", "decisions")]),
    "approval then rejection": (False, 1, [("approve", -10_000, "u-bob", "decisions"),
                                           ("reject", -5_000, "u-carol", "decisions")]),
    "four eyes, one approver twice": (False, 2, [("approve", -10_000, "u-bob", "decisions"),
                                                 ("approve", -9_000, "u-bob", "decisions"),
                                                 ("approve", -8_000, "u-carol", "decisions")]),
    "half approved, then late": (False, 2, [("approve", -10_000, "u-bob", "decisions"),
                                            ("approve", 5, "u-carol", "decisions")]),
    "the submitter's signed approval": (False, 1, [("approve", -5, "u-alice", "decisions")]),
    "expiry when overdue": (True, 1, [("expire", 500, "system:expiry", "expiries")]),
    "expiry claiming a time before the expiry": (
        True, 1, [("expire", -30_000, "system:expiry", "expiries")]),
    "expiry before it is due": (False, 1, [("expire", 500, "system:expiry", "expiries")]),
    "expiry then an in-time approval": (True, 1, [("expire", 500, "system:expiry", "expiries"),
                                                  ("approve", -1, "u-bob", "decisions")]),
}


@pytest.mark.parametrize("scenario", AGREEMENT)
async def test_lane_e_and_the_gateway_book_agree_on_every_decision(scenario: str) -> None:
    is_overdue, approvals, steps = AGREEMENT[scenario]
    ctx = FakeCtx()
    held = await hold(ctx, approvals)
    if is_overdue:
        held = overdue(ctx, held)
    assert held.checkpoint is not None
    book = book_with(ctx, held)
    for verb, offset, actor, topic in steps:
        msg = decision(ctx, verb, held.checkpoint.expires_at + offset, actor=actor,
                       signer=GATEWAY if topic == "decisions" else None,
                       topic=ctx.settings.topic(topic))
        await on_checkpoint_message(ctx.lane, msg)
        book.apply(topic, ctx.schemas["decision"].decode(msg.value, msg.headers))
    _, lane_e = parse_entry(ctx.state.held[b"r-1"])
    gateway = book.get(held.checkpoint.checkpoint_id)
    assert gateway is not None
    assert checkpoint_record(gateway.checkpoint) == lane_e.checkpoint


async def test_a_late_approval_expires_the_checkpoint_in_lane_e_and_in_the_gateway() -> None:
    ctx = FakeCtx()
    held = await hold(ctx)
    assert held.checkpoint is not None
    book = book_with(ctx, held)
    late = decision(ctx, "approve", held.checkpoint.expires_at + 1)
    await on_decision(ctx.lane, late)
    book.apply("decisions", ctx.schemas["decision"].decode(late.value, late.headers))
    state, record = parse_entry(ctx.state.held[b"r-1"])
    gateway = book.get(held.checkpoint.checkpoint_id)
    assert gateway is not None
    assert (state, gateway.checkpoint.status) == ("expired", "expired")
    assert record.checkpoint is not None
    assert record.checkpoint.decided_at == held.checkpoint.expires_at + 1
    assert executable(ctx)[0].status == "expired"


async def test_the_book_answers_when_a_hold_it_is_waited_for_arrives_and_not_before() -> None:
    """A 423 waits for the gateway's book to know the checkpoint (read your own hold)."""
    import asyncio

    ctx = FakeCtx()
    held = await hold(ctx)
    assert held.checkpoint is not None
    book = CheckpointBook(ctx.settings, ctx.schemas, GATEWAY.verifier)
    assert not await book.known(held.checkpoint.checkpoint_id, 0.01), "nothing held yet"
    waiting = asyncio.create_task(book.known(held.checkpoint.checkpoint_id, 5.0))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    codec = ctx.schemas["pipeline_record"]
    book.apply("pending", codec.decode(codec.encode(held.to_avro()), [codec.header]))
    assert await waiting
    assert await book.known(held.checkpoint.checkpoint_id, 0.0)
