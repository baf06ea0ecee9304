"""Agents as records: the tool catalogue, the registry's search and ratings, and the fold."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from nova.domain.agents import TOOL_ACTIONS, TOOL_NAMES, AgentQuery, summarize
from nova.entities.models import AgentEntity, AgentRatingEntity, from_event, to_event
from nova.entities.state import EntityState

T0 = 1_750_000_000_000


def agent(aid: str = "ag1", owner: str = "a", **kw: object) -> AgentEntity:
    fields: dict[str, object] = {"name": "Summariser", "role": "analyst", "created_at": T0}
    fields.update(kw)
    return AgentEntity(id=aid, owner=owner, **fields)


def test_every_tool_has_an_action_and_sends_are_risky() -> None:
    assert set(TOOL_ACTIONS) == TOOL_NAMES
    assert {t for t, a in TOOL_ACTIONS.items() if a == "SEND"} == {"send_message", "http_call"}
    assert {t for t, a in TOOL_ACTIONS.items() if a == "READ"} == {
        "read_thread", "read_meeting", "read_dataspace"}


def test_an_agent_serializes_canonically_and_round_trips() -> None:
    a = agent(tools=("send_message", "read_thread", "read_thread"), allowed_hosts=("b", "a"))
    assert a.tools == ("read_thread", "send_message")
    assert a.allowed_hosts == ("a", "b")
    event = to_event(a, version=1, ts=T0)
    assert from_event(event) == a
    assert (event.entity_id, event.owner_identity) == ("ag1", "a")
    with pytest.raises(ValidationError):
        agent(tools=("rm_rf",))
    with pytest.raises(ValidationError):
        agent(role="janitor")
    with pytest.raises(ValidationError):
        agent(max_steps=0)


def test_a_rating_is_keyed_by_agent_and_rater_and_owned_by_the_rater() -> None:
    r = AgentRatingEntity(agent_id="ag1", rater="b", stars=4, created_at=T0)
    assert (r.key, r.owner_identity) == ("agent_rating:ag1:b", "b")
    with pytest.raises(ValidationError):
        AgentRatingEntity(agent_id="ag1", rater="b", stars=6, created_at=T0)


def test_the_fold_serves_visible_agents_and_live_agents_ratings() -> None:
    s = EntityState()
    s.apply(to_event(agent("p1", "a", visibility="public"), version=1, ts=T0))
    s.apply(to_event(agent("x1", "a"), version=1, ts=T0))
    s.apply(to_event(agent("y1", "b"), version=1, ts=T0))
    assert [x.id for x in s.agents_visible_to("a")] == ["p1", "x1"]
    assert [x.id for x in s.agents_visible_to("b")] == ["p1", "y1"]
    for rater, stars in (("b", 2), ("c", 5), ("b", 4)):  # b rates again: one per rater
        rating = AgentRatingEntity(agent_id="p1", rater=rater, stars=stars, created_at=T0)
        s.apply(to_event(rating, version=s.version("agent_rating", rating.entity_id) + 1, ts=T0))
    assert [(r.rater, r.stars) for r in s.ratings("p1")] == [("b", 4), ("c", 5)]
    assert s.count_owned("agent_rating", "b") == 1
    s.apply(to_event(agent("p1", "a", visibility="public"), version=2, ts=T0, deleted=True))
    assert s.ratings("p1") == []
    assert [x.id for x in s.agents_visible_to("b")] == ["y1"]


def test_summaries_and_queries() -> None:
    assert (summarize([]).count, summarize([]).average) == (0, None)
    assert (summarize([4, 5]).count, summarize([4, 5]).average) == (2, 4.5)
    assert summarize([1, 2, 2]).average == 1.67
    q = AgentQuery(role="analyst", tool="read_thread", text="RÉSUMÉ")
    assert q.matches("analyst", ("read_thread",), "Résumé writer", "")
    assert q.matches("analyst", ("read_thread", "http_call"), "x", "makes a resume")
    assert not q.matches("researcher", ("read_thread",), "resume", "")
    assert not q.matches("analyst", ("http_call",), "resume", "")
    assert not q.matches("analyst", ("read_thread",), "other", "nothing")
    assert AgentQuery().matches("nova", (), "", "")
