"""Lane B reads a referenced meeting's entries, and only the requesting identity's."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from nova.entities.models import MeetingEntity, MeetingEntryEntity, ThreadEntity, to_event
from nova.entities.state import EntityState
from nova.entities.view import Witness
from nova.records import PipelineRecord
from nova.settings import load_settings
from streams.context import LaneContext
from streams.lanes.lane_b_context import ContextLane

T0 = 1_750_000_000_000


class View(EntityState):
    """An in-memory entity view: the state itself, with the barrier a no-op."""

    async def sync(self, witness: Witness | None = None) -> None:
        return None

    async def ready(self) -> None:
        return None


def view() -> View:
    v = View()
    for owner, mid in (("alice", "m-a"), ("bob", "m-b")):
        v.apply(to_event(MeetingEntity(id=mid, owner=owner, title=f"{owner}'s", created_at=T0),
                         version=1, ts=T0))
        for n, kind in enumerate(("agenda", "note", "decision")):
            v.apply(to_event(MeetingEntryEntity(
                id=f"{mid}:e{n}", owner=owner, meeting_id=mid, kind=kind,
                text=f"{owner} {kind}", created_at=T0 + n), version=1, ts=T0))
    v.apply(to_event(ThreadEntity(id="t-a", owner="alice", title="", created_at=T0),
                     version=1, ts=T0))
    return v


async def context_of(meeting_id: str) -> Any:
    ctx = SimpleNamespace(settings=load_settings(), services=SimpleNamespace(entities=view()),
                          witness=lambda: None)
    record = PipelineRecord(request_id="r1", identity_id="alice", user_id="u", submitted_at=T0,
                            prompt="Summarise the meeting", meeting_id=meeting_id)
    outcome = await ContextLane().process(record, cast(LaneContext, ctx))
    return outcome.record.context


async def test_a_meeting_of_the_identity_is_context_newest_first() -> None:
    context = await context_of("m-a")
    assert context.sources == ("mtg:m-a/e2", "mtg:m-a/e1", "mtg:m-a/e0")
    assert "alice agenda" in context.text
    assert "alice note" in context.text
    assert "meeting \"alice's\" decision at" in context.text


async def test_another_identity_s_or_an_unknown_meeting_adds_nothing() -> None:
    for meeting_id in ("m-b", "nope"):
        context = await context_of(meeting_id)
        assert (context.sources, context.text) == ((), "")
