"""The writer reads its own writes; the boundary guard refuses, records and leaks nothing.

Kafka is replaced by a list that records what would be produced; the store's ``sync`` is a
no-op because nothing else writes.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.boundary import BoundaryGuard
from nova.audit.facts import emit_audit_fact
from nova.auth.tokens import Principal
from nova.entities.models import (
    DataspaceEntity,
    IdentityEntity,
    RuleEntity,
    ThreadEntity,
)
from nova.entities.store import EntitiesUnavailableError, EntityStore, EntityWriter
from nova.entities.view import EntityView, Witness
from nova.errors import AuditUnavailableError, ConflictError, ForbiddenError, NotFoundError
from nova.records import AuditFact, EntityEvent, Event, Record
from nova.settings import Settings
from nova.signing import Signer

T0 = 1_750_000_000_000
SIGNER = Signer(Ed25519PrivateKey.generate())


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Record]] = []
        self.fail = False

    async def send(self, topic: str, key: str, record: Record) -> None:
        if self.fail:
            raise OSError("broker down")
        self.sent.append((topic, key, record))

    def on(self, topic: str) -> list[tuple[str, Record]]:
        return [(k, r) for t, k, r in self.sent if t == topic]


class LocalStore(EntityStore):
    syncs = 0

    async def sync(self, witness: Witness | None = None, *, timeout_s: float | None = None) -> None:
        self.syncs += 1


def principal(identity: str, sub: str | None = None) -> Principal:
    return Principal(sub=sub or f"user-{identity}", identity=identity,
                     roles=frozenset({"member"}), expires_at=datetime.now(UTC))


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def store() -> LocalStore:
    return LocalStore(Settings(environment="test"), verifier=SIGNER.verifier)


@pytest.fixture
def writer(producer: FakeProducer, store: LocalStore) -> EntityWriter:
    return EntityWriter(producer, store, SIGNER)


@pytest.fixture
def guard(producer: FakeProducer, store: LocalStore, writer: EntityWriter) -> BoundaryGuard:
    return BoundaryGuard(store, writer, producer)


def thread(tid: str, owner: str) -> ThreadEntity:
    return ThreadEntity(id=tid, owner=owner, title=f"secret title of {tid}", created_at=T0)


async def test_writer_produces_then_reads_its_own_write(
    writer: EntityWriter, producer: FakeProducer, store: LocalStore
) -> None:
    stored = await writer.put(thread("t1", "a"))
    assert stored.version == 1
    assert store.get(ThreadEntity, "t1") == thread("t1", "a")
    [(key, event)] = producer.on("entities")
    assert key == "thread:t1"
    assert isinstance(event, EntityEvent)
    assert (event.version, event.owner_identity, event.deleted) == (1, "a", False)
    assert store.syncs == 0  # a fresh id needs no catch-up

    again = await writer.put(thread("t1", "a").model_copy(update={"title": "new"}))
    assert again.version == 2
    assert store.syncs == 1  # an update catches up with other writers first
    await writer.delete(thread("t1", "a"))
    assert store.get(ThreadEntity, "t1") is None
    assert store.version("thread", "t1") == 3


async def test_writer_refuses_taken_ids_and_owner_changes(writer: EntityWriter,
                                                          producer: FakeProducer) -> None:
    ident = IdentityEntity(id="al", user_id="alice", display_name="A", sphere_id="personal",
                           created_at=T0)
    await writer.put(ident, create=True)
    with pytest.raises(ConflictError, match="already exists"):
        await writer.put(ident, create=True)
    await writer.put(thread("t1", "a"))
    with pytest.raises(ConflictError, match="owner"):
        await writer.put(thread("t1", "b"))
    assert len(producer.on("entities")) == 2


async def test_sync_before_start_is_an_explicit_error() -> None:
    with pytest.raises(EntitiesUnavailableError):
        await EntityStore(Settings(environment="test"), verifier=SIGNER.verifier).sync()


async def test_emit_audit_fact(producer: FakeProducer) -> None:
    detail = {"resource_kind": "thread", "resource_id": "t1", "owner_identity": "a",
              "operation": "read"}
    event = await emit_audit_fact(producer, "IDENTITY_BOUNDARY", "b", "user-b", None, detail)
    [(key, sent)] = producer.on("events")
    assert key == "b"
    assert sent == event
    assert event.kind == "alert"
    assert event.alert is not None
    assert event.alert.alert_type == "IDENTITY_BOUNDARY"
    assert event.alert.subject == "thread:t1"
    assert event.alert.severity == "high"
    assert json.loads(event.alert.message) == {"actor": "user-b", **detail}
    await emit_audit_fact(producer, "IDENTITY_BOUNDARY", "b", "user-b", "req-1", detail)
    assert producer.on("events")[1][0] == "req-1"


async def test_guard_returns_own_resources(guard: BoundaryGuard, writer: EntityWriter,
                                           producer: FakeProducer) -> None:
    await writer.put(thread("t1", "a"))
    assert await guard.owned(principal("a"), ThreadEntity, "t1") == thread("t1", "a")
    assert producer.on("events") == []


async def test_guard_refuses_foreign_resources_with_a_fact_and_no_data(
    guard: BoundaryGuard, writer: EntityWriter, producer: FakeProducer
) -> None:
    await writer.put(thread("t1", "a"))
    with pytest.raises(ForbiddenError) as refused:
        await guard.owned(principal("b"), ThreadEntity, "t1", operation="append")
    assert "secret title" not in str(refused.value)
    assert "a" not in str(refused.value).split()  # the owner is not named
    [(key, fact)] = producer.on("events")
    assert key == "b"
    assert isinstance(fact, Event)
    assert fact.alert is not None
    assert fact.identity_id == "b"
    assert json.loads(fact.alert.message)["operation"] == "append"
    assert json.loads(fact.alert.message)["owner_identity"] == "a"


async def test_guard_unknown_is_not_found_and_wrong_kind_is_unknown(
    guard: BoundaryGuard, writer: EntityWriter, producer: FakeProducer
) -> None:
    await writer.put(thread("t1", "a"))
    with pytest.raises(NotFoundError):
        await guard.owned(principal("a"), ThreadEntity, "nope")
    with pytest.raises(NotFoundError):
        await guard.owned(principal("a"), RuleEntity, "t1")
    assert producer.on("events") == []


async def test_refusal_stands_when_the_fact_cannot_be_sent(
    guard: BoundaryGuard, writer: EntityWriter, producer: FakeProducer
) -> None:
    await writer.put(thread("t1", "a"))
    producer.fail = True
    with pytest.raises(ForbiddenError):
        await guard.owned(principal("b"), ThreadEntity, "t1")


async def test_check_request(guard: BoundaryGuard, writer: EntityWriter,
                             producer: FakeProducer) -> None:
    await writer.put(thread("t1", "a"))
    await writer.put(DataspaceEntity(id="d1", owner="a", name="n", created_at=T0))
    await writer.put(DataspaceEntity(id="d2", owner="b", name="n", created_at=T0))
    await guard.check_request(principal("a"), "t1", ["d1", "d1"])
    await guard.check_request(principal("a"), None, [])
    with pytest.raises(NotFoundError):
        await guard.check_request(principal("a"), "t9", ["d1"])
    assert producer.on("events") == []
    with pytest.raises(ForbiddenError):
        await guard.check_request(principal("b"), "t1", ["d1", "d2", "d9"])
    subjects = sorted(f.alert.subject for _, f in producer.on("events")
                      if isinstance(f, Event) and f.alert)
    assert subjects == ["dataspace:d1", "thread:t1"]


async def test_identities_are_visible_within_one_user_only(
    guard: BoundaryGuard, writer: EntityWriter, producer: FakeProducer
) -> None:
    for iid, user, sphere in (("al-p", "alice", "personal"), ("al-b", "alice", "business"),
                              ("bo-p", "bob", "personal")):
        await writer.put(IdentityEntity(id=iid, user_id=user, display_name=iid,
                                        sphere_id=sphere, created_at=T0))
    assert (await guard.identity(principal("al-p"), "al-b")).sphere_id == "business"
    with pytest.raises(ForbiddenError):
        await guard.identity(principal("al-p"), "bo-p")
    with pytest.raises(NotFoundError):
        await guard.identity(principal("al-p"), "nobody")
    assert len(producer.on("events")) == 1


async def test_listing_another_identity_is_refused(guard: BoundaryGuard,
                                                   producer: FakeProducer) -> None:
    assert await guard.listing(principal("a"), "thread", None) == "a"
    assert await guard.listing(principal("a"), "thread", "a") == "a"
    with pytest.raises(ForbiddenError):
        await guard.listing(principal("a"), "thread", "b")
    assert len(producer.on("events")) == 1


def test_the_store_is_what_lanes_b_and_d_expect() -> None:
    view: EntityView = EntityStore(  # mypy checks the protocol
        Settings(environment="test"), verifier=SIGNER.verifier
    )
    assert view.owner("thread", "t1") is None
    assert list(view.rules_for("a")) == []


async def test_forged_changes_are_ignored_and_the_signed_state_is_re_signed(
    writer: EntityWriter, producer: FakeProducer, store: LocalStore
) -> None:
    """A rule deleted and an API key added without the gateway's signature change nothing; the
    rule's signed state is written again so compaction cannot evict it behind a forgery."""
    from nova.entities.models import ApiKeyEntity, to_event
    from schemas import load_schema_set

    codec = load_schema_set()["entity"]
    deny = RuleEntity(rule_id="no-pay", identity_id="a", effect="deny", priority=0,
                      actions=("PAYMENT",))
    await writer.put(deny)
    healed: list[str] = []
    store.heal_delay_s = 0.0

    async def heal(key: str) -> None:
        healed.append(key)
        await writer.heal(key)

    store.healer = heal
    forged_delete = to_event(deny, version=9, ts=T0, deleted=True)  # unsigned
    forged_key = ApiKeyEntity(key_id="k-evil", identity_id="a", roles=("admin",), hash="x",
                              created_at=T0)
    other = Signer(Ed25519PrivateKey.generate())
    for key, event in (("rule:no-pay", forged_delete),
                       ("api_key:k-evil", other.sign_entity(to_event(forged_key, version=1,
                                                                      ts=T0)))):
        outcome = store.apply_message(key.encode(), codec.encode(event.to_avro()), [codec.header])
        assert outcome == "untrusted"
    assert store.apply_message(b"rule:no-pay", None, []) == "untrusted"  # a real tombstone
    assert store.get(RuleEntity, "no-pay") == deny
    assert [r.rule_id for r in store.rules_for("a")] == ["no-pay"]
    assert store.api_key("k-evil") is None
    assert store.tainted == {"rule:no-pay", "api_key:k-evil"}
    store._heal_tainted()
    await asyncio.sleep(0.05)
    assert healed == ["rule:no-pay"], "a key that was never trusted has nothing to restore"
    [(_, first), (_, again)] = producer.on("entities")
    assert isinstance(first, EntityEvent)
    assert isinstance(again, EntityEvent)
    assert (again.version, again.deleted, again.body) == (2, False, first.body)
    SIGNER.verifier.verify_entity(again)


async def test_an_update_or_a_live_delete_never_revives_a_deleted_entity(
    writer: EntityWriter, producer: FakeProducer, store: LocalStore
) -> None:
    await writer.put(thread("t1", "a"))
    renamed = thread("t1", "a").model_copy(update={"title": "renamed"})
    assert (await writer.update(renamed)).version == 2
    assert store.get(ThreadEntity, "t1") == renamed
    await writer.delete(renamed, live=True)
    # A change resolved before the delete and written after it: refused, still deleted.
    with pytest.raises(NotFoundError, match="deleted"):
        await writer.update(renamed.model_copy(update={"title": "late"}))
    with pytest.raises(NotFoundError, match="deleted"):
        await writer.delete(renamed, live=True)
    assert store.get(ThreadEntity, "t1") is None
    events = [r for _, r in producer.on("entities")]
    assert [(e.version, e.deleted) for e in events if isinstance(e, EntityEvent)] == [
        (1, False), (2, False), (3, True)]
    last = store.last_state("thread:t1")
    assert last is not None
    assert last[1] is True
    assert last[0].entity == renamed
    with pytest.raises(NotFoundError):
        await writer.update(thread("never", "a"))  # an update needs a live entity


async def test_an_owner_change_is_a_fact_in_the_chain_without_an_alert(
    guard: BoundaryGuard, producer: FakeProducer
) -> None:
    await guard.owner_change(principal("a", sub="alice"), "thread", "t1", operation="delete",
                             detail={"messages": 3})
    assert producer.on("events") == []  # nothing is wrong: no alert
    [(key, record)] = producer.on("facts")
    assert key == "a"
    assert isinstance(record, AuditFact)
    assert (record.kind, record.identity_id, record.actor) == ("RESOURCE_CHANGE", "a", "alice")
    assert json.loads(record.detail) == {
        "resource_kind": "thread", "resource_id": "t1", "owner_identity": "a",
        "operation": "delete", "messages": 3}


async def test_no_owner_change_fact_no_change(guard: BoundaryGuard, producer: FakeProducer
                                              ) -> None:
    producer.fail = True
    with pytest.raises(AuditUnavailableError, match="nothing was changed"):
        await guard.owner_change(principal("a"), "thread", "t1", operation="update",
                                 detail={"fields": ["title"]})
