"""Entity states survive the round trip to EntityEvent (and Avro) unchanged and canonical."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from nova.auth.keys import create_api_key, verify_api_key
from nova.domain.governance import InvalidRuleError, Rule, RuleMatch
from nova.entities.models import (
    AlertAckEntity,
    AlertThresholdsEntity,
    AnyEntity,
    ApiKeyEntity,
    Changed,
    DataspaceEntity,
    DataspaceItemEntity,
    IdentityEntity,
    MeetingEntity,
    MeetingEntryEntity,
    ProbeSettingsEntity,
    ProviderLimitsEntity,
    RuleEntity,
    SphereEntity,
    ThreadEntity,
    ThreadMessageEntity,
    UserEntity,
    alert_ack_id,
    entity_key,
    from_event,
    split_key,
    to_event,
)
from nova.errors import SchemaError
from nova.records import EntityEvent
from schemas import load_schema_set

T0 = 1_750_000_000_000

SAMPLES: list[AnyEntity] = [
    IdentityEntity(id="alice-p", user_id="alice", display_name="Alice", sphere_id="personal",
                   created_at=T0),
    ThreadEntity(id="t1", owner="alice-p", title="Trip", created_at=T0),
    ThreadMessageEntity(id="t1:m1", owner="alice-p", thread_id="t1", author="user",
                        text="héllo", created_at=T0),
    DataspaceEntity(id="d1", owner="alice-p", name="Notes", created_at=T0),
    DataspaceItemEntity(id="d1:i1", owner="alice-p", dataspace_id="d1", title="A", text="x",
                        created_at=T0),
    MeetingEntity(id="mt1", owner="alice-p", title="Weekly", thread_id="t1",
                  participants=("bob-w", "alice-p"),
                  starts_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC), created_at=T0),
    MeetingEntryEntity(id="mt1:e1", owner="alice-p", meeting_id="mt1", kind="decision",
                       text="Ship Friday", created_at=T0),
    RuleEntity(rule_id="r1", identity_id="alice-p", sphere_id=None, effect="deny", priority=5,
               actions=("PAYMENT",), text_patterns=("wire money",)),
    ApiKeyEntity(key_id="0123456789abcdef", identity_id="alice-p", roles=("member",),
                 hash="pbkdf2_sha256$1$c2FsdA$ZGlnZXN0", created_at=T0),
    UserEntity(id="Alice Martin", display_name="Alice", created_by="ops", created_at=T0),
    SphereEntity(id="club", name="Club", created_by="ops", created_at=T0),
    ProviderLimitsEntity(provider="openai", rpm=60, tpm=None, reset_at=T0,
                         changed=Changed(updated_at=T0, updated_by="ops")),
    ProbeSettingsEntity(interval_s=15, window_min=10, degraded_failure_rate=0.3,
                        changed=Changed(updated_at=T0, updated_by="ops")),
    AlertThresholdsEntity(window_s=300, min_calls=5, error_rate=0.5, latency_ms=2000,
                          checkpoint_wait_s=600, changed=Changed(updated_at=T0, updated_by="o")),
    AlertAckEntity(id=alert_ack_id("provider-health/openai/down/7"),
                   event_id="provider-health/openai/down/7", owner="system",
                   by_identity="ops-p", by="ops", note="on it", at=T0),
]


def test_an_identity_body_from_before_roles_grants_member_and_old_keys_stay_valid() -> None:
    """Bodies written before a field existed decode with its default: records are never
    rewritten, so every old body must stay readable (the Avro envelope is unchanged)."""
    old = json.dumps({"id": "alice-p", "user_id": "alice", "display_name": "Alice",
                      "sphere_id": "personal", "created_at": T0})
    event = EntityEvent(entity_type="identity", entity_id="alice-p", owner_identity="alice-p",
                        version=1, ts=T0, body=old)
    ident = from_event(event)
    assert isinstance(ident, IdentityEntity)
    assert ident.roles == ("member",)


@pytest.mark.parametrize("bad", ["", " padded", "nul\x00", "tab\there", "x" * 129])
def test_user_ids_are_printable_subjects(bad: str) -> None:
    with pytest.raises(ValueError, match="user id"):
        UserEntity(id=bad, display_name="x", created_by="ops", created_at=T0)


@pytest.mark.parametrize("entity", SAMPLES, ids=lambda e: e.ENTITY_TYPE)
def test_round_trip_through_event_and_avro(entity: AnyEntity) -> None:
    event = to_event(entity, version=3, ts=T0 + 1)
    assert event.entity_type == entity.ENTITY_TYPE
    assert event.entity_id == entity.entity_id
    assert event.owner_identity == entity.owner_identity
    assert entity_key(event.entity_type, event.entity_id) == entity.key
    codec = load_schema_set()["entity"]
    decoded = EntityEvent.from_avro(codec.decode(codec.encode(event.to_avro()), [codec.header]))
    assert decoded == event
    assert from_event(decoded) == entity


@pytest.mark.parametrize("entity", SAMPLES, ids=lambda e: e.ENTITY_TYPE)
def test_body_is_canonical_json(entity: AnyEntity) -> None:
    body = to_event(entity, version=1, ts=T0).body
    parsed = json.loads(body)
    assert body == json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert to_event(type(entity).model_validate_json(body), version=1, ts=T0).body == body


def test_unknown_entity_type_decodes_to_none() -> None:
    event = EntityEvent(entity_type="widget", entity_id="b1", owner_identity="x", version=1,
                        ts=T0, body="{}")
    assert from_event(event) is None


def test_body_naming_another_id_or_owner_is_refused() -> None:
    good = to_event(SAMPLES[1], version=1, ts=T0)
    with pytest.raises(SchemaError, match="another id"):
        from_event(good.model_copy(update={"entity_id": "t2"}))
    with pytest.raises(SchemaError, match="another owner"):
        from_event(good.model_copy(update={"owner_identity": "mallory"}))
    with pytest.raises(SchemaError, match="invalid body"):
        from_event(good.model_copy(update={"body": '{"id": "t1"}'}))
    with pytest.raises(SchemaError, match="invalid body"):
        from_event(good.model_copy(update={"body": good.body[:-1] + ',"extra":1}'}))


def test_child_ids_must_name_their_parent() -> None:
    with pytest.raises(ValueError, match="thread_id"):
        ThreadMessageEntity(id="t2:m1", owner="a", thread_id="t1", author="user", text="x",
                            created_at=T0)
    with pytest.raises(ValueError, match="dataspace_id"):
        DataspaceItemEntity(id="d2:i1", owner="a", dataspace_id="d1", title="", text="x",
                            created_at=T0)
    msg = SAMPLES[2]
    assert isinstance(msg, ThreadMessageEntity)
    assert msg.message_id == "m1"
    domain = msg.to_domain()
    assert domain.created_at == datetime.fromtimestamp(T0 / 1000, UTC)
    assert (domain.thread_id, domain.message_id, domain.text) == ("t1", "m1", "héllo")


def test_a_meeting_s_participants_are_canonical_and_its_entries_name_it() -> None:
    meeting = MeetingEntity(id="mt1", owner="a", title="x", participants=("c", "b", "c"),
                            created_at=T0)
    assert meeting.participants == ("b", "c")  # equal meetings, equal bytes
    with pytest.raises(ValueError, match="meeting_id"):
        MeetingEntryEntity(id="mt2:e1", owner="a", meeting_id="mt1", kind="note", text="x",
                           created_at=T0)
    with pytest.raises(ValueError, match="kind"):
        MeetingEntryEntity(id="mt1:e1", owner="a", meeting_id="mt1", kind="minutes",
                           text="x", created_at=T0)
    with pytest.raises(ValueError, match="starts_at"):
        MeetingEntity(id="mt1", owner="a", title="x", starts_at=datetime(2026, 1, 1),  # noqa: DTZ001
                      created_at=T0)  # no offset: which 9 o'clock?
    note = MeetingEntryEntity(id="mt1:e1", owner="a", meeting_id="mt1", kind="note",
                              text="late", created_at=T0).to_domain("Weekly")
    assert (note.meeting_id, note.entry_id, note.meeting_title, note.kind) == (
        "mt1", "e1", "Weekly", "note")


@pytest.mark.parametrize("bad", ["", "a:b", "a b", "x" * 200, "-lead"])
def test_ids_are_closed_slugs(bad: str) -> None:
    with pytest.raises(ValueError, match="id"):
        ThreadEntity(id=bad, owner="a", title="", created_at=T0)


def test_versions_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        to_event(SAMPLES[1], version=0, ts=T0)


def test_split_key() -> None:
    assert split_key("thread_message:t1:m1") == ("thread_message", "t1:m1")
    with pytest.raises(SchemaError):
        split_key("nokey")


def test_rule_entity_round_trips_the_domain_rule() -> None:
    rule = Rule(rule_id="r9", identity_id="a", sphere_id="business", effect="require_approval",
                priority=-2, match=RuleMatch(actions=frozenset({"SEND", "PAYMENT"}),
                                             roles=frozenset({"member"}), max_cost_usd=1.5,
                                             text_patterns=("invoice",)))
    entity = RuleEntity.from_rule(rule)
    assert entity.actions == ("PAYMENT", "SEND")  # sorted: equal rules, equal bytes
    assert entity.to_rule() == rule


def test_rule_entity_with_a_dangerous_pattern_is_not_enforceable() -> None:
    entity = RuleEntity(rule_id="r1", identity_id="a", effect="deny", priority=0,
                        text_patterns=(r"(a)\1",))
    with pytest.raises(InvalidRuleError):
        entity.to_rule()


def test_api_key_entity_keeps_only_the_hash_and_still_verifies() -> None:
    record, plaintext = create_api_key("alice-p", ["member", "approver"],
                                       datetime(2025, 1, 1, tzinfo=UTC))
    entity = ApiKeyEntity.from_record(record)
    body = to_event(entity, version=1, ts=T0).body
    assert plaintext not in body
    assert record.hash not in repr(entity)
    assert record.hash not in str(entity)
    restored = from_event(to_event(entity, version=1, ts=T0))
    assert isinstance(restored, ApiKeyEntity)
    principal = verify_api_key(restored.to_record(), plaintext)
    assert principal.identity == "alice-p"
    assert principal.roles == frozenset({"member", "approver"})


def test_platform_settings_belong_to_system_and_an_ack_is_keyed_by_its_alert() -> None:
    for entity in SAMPLES[-4:]:
        assert entity.owner_identity == "system"
    assert SAMPLES[-3].entity_id == SAMPLES[-2].entity_id == "global"
    with pytest.raises(ValueError, match="alert_ack_id"):
        AlertAckEntity(id=alert_ack_id("another alert"), event_id="provider-health/x/down/1",
                       owner="system", by_identity="ops-p", by="ops", at=T0)
