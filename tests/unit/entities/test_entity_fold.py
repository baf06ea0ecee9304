"""The fold of entity events: versions never go back, owners are pinned, children wait."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nova.entities.models import (
    DataspaceEntity,
    DataspaceItemEntity,
    IdentityEntity,
    MeetingEntity,
    MeetingEntryEntity,
    RuleEntity,
    ThreadEntity,
    ThreadMessageEntity,
    entity_key,
    to_event,
)
from nova.entities.state import EntityState
from nova.entities.store import EntityStore
from nova.records import EntityEvent
from nova.settings import Settings
from nova.signing import Signer
from schemas import load_schema_set

SIGNER = Signer(Ed25519PrivateKey.generate())

T0 = 1_750_000_000_000


def thread(tid: str = "t1", owner: str = "a", title: str = "x") -> ThreadEntity:
    return ThreadEntity(id=tid, owner=owner, title=title, created_at=T0)


def message(mid: str, at: int, tid: str = "t1", owner: str = "a") -> ThreadMessageEntity:
    return ThreadMessageEntity(id=f"{tid}:{mid}", owner=owner, thread_id=tid, author="user",
                               text=mid, created_at=at)


def rule(rid: str, owner: str = "a", priority: int = 0, **kw: object) -> RuleEntity:
    return RuleEntity(rule_id=rid, identity_id=owner, effect="deny", priority=priority, **kw)


def test_apply_and_read_back() -> None:
    s = EntityState()
    assert s.apply(to_event(thread(), version=1, ts=T0)) == "applied"
    assert s.get(ThreadEntity, "t1") == thread()
    assert s.owner("thread", "t1") == "a"
    assert s.owner("dataspace", "t1") is None
    assert s.version("thread", "t1") == 1
    assert s.owned(ThreadEntity, "a") == [thread()]
    assert s.owned(ThreadEntity, "b") == []
    assert len(s) == 1


def test_older_versions_are_stale_and_equal_versions_follow_log_order() -> None:
    s = EntityState()
    s.apply(to_event(thread(title="v2"), version=2, ts=T0))
    assert s.apply(to_event(thread(title="v1"), version=1, ts=T0)) == "stale"
    assert s.get(ThreadEntity, "t1") == thread(title="v2")
    assert s.apply(to_event(thread(title="v2b"), version=2, ts=T0)) == "applied"
    assert s.get(ThreadEntity, "t1") == thread(title="v2b")


def test_delete_hides_the_entity_and_an_older_record_does_not_resurrect_it() -> None:
    s = EntityState()
    s.apply(to_event(rule("r1"), version=1, ts=T0))
    s.apply(to_event(rule("r1"), version=2, ts=T0, deleted=True))
    assert s.get(RuleEntity, "r1") is None
    assert s.owner("rule", "r1") is None
    assert s.rules_for("a") == []
    assert s.owned(RuleEntity, "a") == []
    assert s.version("rule", "r1") == 2
    assert s.apply(to_event(rule("r1"), version=1, ts=T0)) == "stale"
    assert s.get(RuleEntity, "r1") is None


def test_owner_is_pinned_by_the_first_record() -> None:
    s = EntityState()
    s.apply(to_event(thread(owner="a"), version=1, ts=T0))
    assert s.apply(to_event(thread(owner="b"), version=2, ts=T0)) == "rejected"
    assert s.owner("thread", "t1") == "a"
    s.apply(to_event(thread(owner="a"), version=3, ts=T0, deleted=True))
    assert s.apply(to_event(thread(owner="b"), version=4, ts=T0)) == "rejected"
    assert s.pinned_owner("thread", "t1") == "a"


def test_children_arriving_before_their_parent_appear_with_it_in_time_order() -> None:
    s = EntityState()
    s.apply(to_event(message("m2", T0 + 2), version=1, ts=T0))
    s.apply(to_event(message("m1", T0 + 1), version=1, ts=T0))
    assert s.messages("t1") == []  # no parent yet: nothing to read
    s.apply(to_event(thread(), version=1, ts=T0))
    assert [m.message_id for m in s.messages("t1")] == ["m1", "m2"]
    assert [m.message_id for m in s.thread_messages("t1")] == ["m1", "m2"]
    assert s.count_children("thread_message", "t1") == 2


def test_children_of_another_owner_are_never_read_with_the_parent() -> None:
    s = EntityState()
    s.apply(to_event(thread(owner="a"), version=1, ts=T0))
    s.apply(to_event(message("mine", T0, owner="a"), version=1, ts=T0))
    s.apply(to_event(message("forged", T0, owner="b"), version=1, ts=T0))
    assert [m.message_id for m in s.messages("t1")] == ["mine"]


def test_dataspace_items() -> None:
    s = EntityState()
    s.apply(to_event(DataspaceEntity(id="d1", owner="a", name="n"), version=1, ts=T0))
    for i, at in (("i2", T0 + 5), ("i1", T0 + 5), ("i0", T0)):
        s.apply(to_event(DataspaceItemEntity(id=f"d1:{i}", owner="a", dataspace_id="d1",
                                             title=i, text=i, created_at=at), version=1, ts=T0))
    assert [i.item_id for i in s.dataspace_items("d1")] == ["i0", "i1", "i2"]
    assert s.dataspace_items("nope") == []


def test_meeting_entries_are_its_live_children_headed_with_its_title() -> None:
    s = EntityState()
    meeting = MeetingEntity(id="mt1", owner="a", title="Weekly", created_at=T0)
    for i, kind, at in (("e2", "note", T0 + 5), ("e1", "agenda", T0), ("e3", "decision", T0 + 9)):
        s.apply(to_event(MeetingEntryEntity(id=f"mt1:{i}", owner="a", meeting_id="mt1",
                                            kind=kind, text=i, created_at=at),
                         version=1, ts=T0))
    s.apply(to_event(MeetingEntryEntity(id="mt1:forged", owner="b", meeting_id="mt1",
                                        kind="note", text="x", created_at=T0), version=1, ts=T0))
    assert s.meeting_entries("mt1") == []  # no parent yet
    s.apply(to_event(meeting, version=1, ts=T0))
    assert [(e.entry_id, e.kind, e.meeting_title) for e in s.meeting_entries("mt1")] == [
        ("e1", "agenda", "Weekly"), ("e2", "note", "Weekly"), ("e3", "decision", "Weekly")]
    renamed = meeting.model_copy(update={"title": "Monthly"})
    s.apply(to_event(renamed, version=2, ts=T0))
    assert {e.meeting_title for e in s.meeting_entries("mt1")} == {"Monthly"}
    s.apply(to_event(renamed, version=3, ts=T0, deleted=True))
    assert s.meeting_entries("mt1") == []  # the entries go with their meeting
    assert s.entries("mt1") == []
    assert s.owned(MeetingEntity, "a") == []


def test_rules_for_are_the_identity_s_own_enforceable_rules_by_priority() -> None:
    s = EntityState()
    s.apply(to_event(rule("low", priority=1), version=1, ts=T0))
    s.apply(to_event(rule("high", priority=9), version=1, ts=T0))
    s.apply(to_event(rule("other", owner="b", priority=50), version=1, ts=T0))
    s.apply(to_event(rule("bad", text_patterns=(r"(a)\1",)), version=1, ts=T0))
    assert [r.rule_id for r in s.rules_for("a")] == ["high", "low"]
    assert s.get(RuleEntity, "bad") is not None  # visible to its owner, never enforced
    s.apply(to_event(rule("low", priority=20), version=2, ts=T0))
    assert [r.rule_id for r in s.rules_for("a")] == ["low", "high"]


def test_identities_by_user_and_sphere() -> None:
    s = EntityState()
    for iid, sphere in (("al-p", "personal"), ("al-b", "business")):
        s.apply(to_event(IdentityEntity(id=iid, user_id="alice", display_name=iid,
                                        sphere_id=sphere, created_at=T0), version=1, ts=T0))
    assert [i.id for i in s.identities_of_user("alice")] == ["al-b", "al-p"]
    assert s.sphere_of("al-b") == "business"
    assert s.sphere_of("nobody") is None
    assert s.owner("identity", "al-p") == "al-p"


def test_unknown_and_corrupt_records_are_skipped() -> None:
    s = EntityState()
    unknown = EntityEvent(entity_type="widget", entity_id="b", owner_identity="a", version=1,
                          ts=T0, body="{}")
    assert s.apply(unknown) == "unknown"
    corrupt = to_event(thread(), version=1, ts=T0).model_copy(update={"body": "not json"})
    assert s.apply(corrupt) == "rejected"
    assert len(s) == 0


def test_forget_drops_a_key_and_its_pins() -> None:
    s = EntityState()
    s.apply(to_event(thread(), version=5, ts=T0))
    s.forget(entity_key("thread", "t1"))
    assert s.get(ThreadEntity, "t1") is None
    assert s.version("thread", "t1") == 0
    assert s.apply(to_event(thread(owner="b"), version=1, ts=T0)) == "applied"
    s.forget("garbage")


def test_store_decodes_kafka_records_and_skips_bad_ones() -> None:
    schemas = load_schema_set()
    store = EntityStore(Settings(environment="test"), schemas, verifier=SIGNER.verifier)
    codec = schemas["entity"]
    event = SIGNER.sign_entity(to_event(thread(), version=1, ts=T0))
    value = codec.encode(event.to_avro())
    assert store.apply_message(b"thread:t1", value, [codec.header]) == "applied"
    assert store.apply_message(b"thread:t9", value, [codec.header]) == "rejected"
    assert store.apply_message(b"thread:t1", b"\x00garbage", [codec.header]) == "rejected"
    assert store.apply_message(b"thread:t1", value, []) == "rejected"  # no schema header
    assert store.get(ThreadEntity, "t1") == thread()
    assert store.apply_message(b"thread:t1", None, []) == "untrusted"  # tombstone: unsigned
    assert store.get(ThreadEntity, "t1") == thread(), "a tombstone cannot delete anything"
