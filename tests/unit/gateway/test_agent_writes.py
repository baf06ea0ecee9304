"""The gateway's check of an agent's write against its own state (``gateway.agent_writes``):
what it writes, what it refuses and why, without Kafka."""

from __future__ import annotations

from gateway.agent_writes import checked, child_id, refusal
from nova.domain.agents import agent_write_id
from nova.entities.models import (
    AgentEntity,
    IdentityEntity,
    MeetingEntity,
    MeetingEntryEntity,
    ThreadEntity,
    ThreadMessageEntity,
    to_event,
)
from nova.entities.state import EntityState
from nova.records import AgentWrite

T0 = 1_750_000_000_000


def state(*, tools: tuple[str, ...] = ("append_thread", "append_meeting_note"),
          visibility: str = "private") -> EntityState:
    s = EntityState()
    for entity in (
        ThreadEntity(id="t1", owner="alice", title="notes", created_at=T0),
        ThreadEntity(id="t2", owner="bob", title="bob's", created_at=T0),
        MeetingEntity(id="m1", owner="alice", title="Ops", created_at=T0),
        AgentEntity(id="ag", owner="alice", name="n", role="analyst", created_at=T0,
                    tools=tools, visibility=visibility),
    ):
        assert s.apply(to_event(entity, version=1, ts=T0)) == "applied"
    return s


def write(**changes: object) -> AgentWrite:
    base = {"write_id": agent_write_id("r1", 1, 0), "request_id": "r1", "identity_id": "alice",
            "agent_id": "ag", "kind": "thread_message", "parent_id": "t1", "text": "hello",
            "ts": T0 + 5}
    return AgentWrite.model_validate({**base, **changes})


def test_the_write_id_names_the_call_s_place_in_its_run() -> None:
    assert agent_write_id("r1", 1, 0) == agent_write_id("r1", 1, 0)
    assert len({agent_write_id("r1", 1, 0), agent_write_id("r1", 1, 1),
                agent_write_id("r1", 2, 0), agent_write_id("r2", 1, 0)}) == 4


def test_an_owned_thread_gets_a_message_by_the_agent_with_an_id_from_the_write() -> None:
    made = checked(write(), state())
    assert isinstance(made, ThreadMessageEntity)
    assert (made.id, made.owner, made.thread_id, made.author, made.text, made.created_at) == (
        child_id(write()), "alice", "t1", "agent:ag", "hello", T0 + 5)
    assert made.id == checked(write(), state()).id  # type: ignore[union-attr]


def test_a_meeting_note_is_an_entry_of_kind_note() -> None:
    made = checked(write(kind="meeting_note", parent_id="m1"), state())
    assert isinstance(made, MeetingEntryEntity)
    assert (made.kind, made.meeting_id, made.owner) == ("note", "m1", "alice")


def test_writes_the_gateway_s_state_does_not_allow_are_refused() -> None:
    s = state()
    assert checked(write(parent_id="t2"), s) == "no such thread of this identity"  # bob's
    assert checked(write(parent_id="nope"), s) == "no such thread of this identity"
    assert checked(write(identity_id="bob", parent_id="t2"), s) == (
        "the agent is not available to this identity")
    assert checked(write(agent_id="other"), s) == "no such agent"
    assert checked(write(kind="meeting_note", parent_id="t1"), s) == (
        "no such meeting of this identity")
    assert checked(write(), state(tools=("read_thread",))) == (
        "the agent does not list append_thread")
    assert "at most" in str(checked(write(text="x" * 32_001), s))
    assert "at most" in str(checked(write(kind="meeting_note", parent_id="m1",
                                          text="x" * 16_001), s))


def test_a_deleted_thread_or_identity_takes_no_write() -> None:
    s = state()
    s.apply(to_event(ThreadEntity(id="t1", owner="alice", title="notes", created_at=T0),
                     version=2, ts=T0, deleted=True))
    assert checked(write(), s) == "no such thread of this identity"
    s = state()
    ident = IdentityEntity(id="alice", user_id="u-alice", display_name="Alice",
                           sphere_id="personal", created_at=T0)
    s.apply(to_event(ident, version=1, ts=T0))
    assert isinstance(checked(write(), s), ThreadMessageEntity)
    s.apply(to_event(ident, version=2, ts=T0, deleted=True))
    assert checked(write(), s) == "the identity is deleted"


def test_a_refusal_is_one_fact_per_write_naming_no_text() -> None:
    fact = refusal(write(text="a secret plan"), "no such thread of this identity")
    assert fact.kind == "AGENT_WRITE_REFUSED"
    assert fact.fact_id.endswith(write().write_id)
    assert "secret" not in fact.detail
    assert '"reason":"no such thread of this identity"' in fact.detail
