"""Only the gateway decides: forged decisions and entity changes change nothing, on the broker.

The attacker here can write the ``decisions`` and ``entities`` topics with Nova's own encoder
(the harness logs in as the broker's super user): the ACLs that keep everyone but the gateway
off those topics are not what these tests rely on. What they prove is the second wall: lane E,
the gateway's checkpoint book and the entity views act only on records the gateway signed, and
every refused record is dead-lettered (reason and original bytes), audited, and reported by
``nova audit verify``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nova.audit.verify import verify_audit
from nova.auth.keys import create_api_key
from nova.entities.models import ApiKeyEntity, RuleEntity, to_event
from nova.kafka.producer import RecordProducer
from nova.records import AuditRecord, CheckpointDecisionRecord, DeadLetter, EntityEvent, now_ms
from nova.settings import Settings
from nova.signing import Signer, load_verifier
from schemas import load_schema_set
from tests.integration.conftest import REPO, Gateway, eventually
from tests.integration.pipeline_checks import read_records, read_topic

pytestmark = pytest.mark.integration

ALICE = "identity-alice"
CAROL = "user-carol"  # an approver of identity-alice who did not submit anything


async def hold(gw: Gateway, prompt: str) -> dict[str, Any]:
    r = await gw.http.post("/api/v2/nova/requests", headers=gw.auth(ALICE, "member"),
                           json={"prompt": prompt, "wait_ms": 60_000})
    assert r.status_code == 423, r.text
    held = dict(r.json())

    async def in_the_book() -> bool:  # the gateway's checkpoint book tails another topic
        seen = await gw.http.get(f"/api/v2/governance/checkpoints/{held['checkpoint_id']}",
                                 headers=gw.auth(ALICE, "approver", sub=CAROL))
        return seen.status_code == 200

    await eventually(in_the_book, 30, 0.1, message="the checkpoint in the gateway's book")
    return held


async def checkpoint(gw: Gateway, checkpoint_id: str) -> dict[str, Any]:
    r = await gw.http.get(f"/api/v2/governance/checkpoints/{checkpoint_id}",
                          headers=gw.auth(ALICE, "approver", sub=CAROL))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def produce(settings: Settings, topic: str, key: bytes, value: bytes | None,
                  headers: list[tuple[str, bytes]]) -> None:
    producer = RecordProducer(settings)
    await producer.start()
    try:
        await producer._producer.send_and_wait(settings.topic(topic), value, key=key,
                                               headers=headers)
    finally:
        await producer.stop()


def encoded(name: str, record: Any) -> tuple[bytes, list[tuple[str, bytes]]]:
    codec = load_schema_set()[name]
    return codec.encode(record.to_avro()), [codec.header]


async def untrusted_audits(settings: Settings, topic: str, n: int) -> list[dict[str, Any]]:
    """The UNTRUSTED_RECORD audit records about ``topic``, once there are ``n`` of them."""

    async def found() -> list[dict[str, Any]] | None:
        records = await read_records(settings, "audit", AuditRecord)
        details = [json.loads(r.detail) for r in records if r.kind == "UNTRUSTED_RECORD"]
        mine = [d for d in details if d["topic"] == settings.topic(topic)]
        return mine if len(mine) >= n else None

    result: list[dict[str, Any]] = await eventually(found, 60, message=f"{n} audits of {topic}")
    return result


def nova_audit_verify(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.to_env()}
    return subprocess.run([sys.executable, "-m", "nova", "audit", "verify"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def test_forged_decisions_leave_the_request_held_are_dead_lettered_audited_and_reported(
    gateway: Gateway, worker_factory: Any, fake_llm: Any, settings: Settings,
) -> None:
    worker_factory()
    target = await hold(gateway, "Pay invoice INV-9 of 300 EUR to ACME")
    other = await hold(gateway, "Pay invoice INV-10 of 400 EUR to ACME")

    # A real approval of the other checkpoint, by an approver: signed by the gateway.
    r = await gateway.http.post(
        f"/api/v2/governance/checkpoints/{other['checkpoint_id']}/approve",
        headers=gateway.auth(ALICE, "approver", sub=CAROL))
    assert r.status_code == 200, r.text
    [real] = [d for d in await read_records(settings, "decisions", CheckpointDecisionRecord)
              if d.checkpoint_id == other["checkpoint_id"]]
    assert real.signature is not None

    base = CheckpointDecisionRecord(
        checkpoint_id=target["checkpoint_id"], request_id=target["request_id"],
        identity_id=ALICE, decision="approve", actor="nobody", decided_at=now_ms())
    forgeries = {
        "unsigned": base,
        "signed with another key": Signer(Ed25519PrivateKey.generate()).sign_decision(base),
        "a real approval replayed onto this checkpoint": real.model_copy(update={
            "checkpoint_id": target["checkpoint_id"], "request_id": target["request_id"]}),
    }
    sent: dict[bytes, str] = {}
    for why, record in forgeries.items():
        value, headers = encoded("decision", record)
        await produce(settings, "decisions", target["request_id"].encode(), value, headers)
        sent[value] = why

    audits = await untrusted_audits(settings, "decisions", len(forgeries))
    assert {a["claimed"]["checkpoint_id"] for a in audits} == {target["checkpoint_id"]}
    reasons = sorted(a["reason"] for a in audits)
    assert reasons[0].startswith("bad signature")  # the replayed one
    assert "unknown key" in reasons[1]
    assert reasons[2] == "unsigned record"

    letters = [d for d in await read_records(settings, "deadletter", DeadLetter)
               if d.source_topic == settings.topic("decisions")]
    assert {d.value for d in letters} == set(sent), "the original bytes, each once"
    assert all(d.lane == "E" and d.error_type == "SignatureError" for d in letters)

    # The request stays held, in lane E and in the gateway's book; nothing reached a provider.
    cp = await checkpoint(gateway, target["checkpoint_id"])
    assert cp["status"] == "pending"
    assert cp["approved_by"] == []
    status = await gateway.http.get(f"/api/v2/nova/requests/{target['request_id']}",
                                    headers=gateway.auth(ALICE, "member"))
    assert status.json()["status"] == "held"
    assert fake_llm.state.calls_for(target["request_id"]) == []

    # nova audit verify names each refused record and where it was audited.
    result = await verify_audit(settings)
    assert result.ok, result
    refused = {(u.topic, u.reason) for u in result.untrusted}
    assert len(refused) == len(forgeries)
    assert all(u.audited_at is not None for u in result.untrusted)
    cli = nova_audit_verify(settings)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.count(f"REJECTED: {settings.topic('decisions')} partition") == 3
    assert "audit chain intact" in cli.stdout

    # The real approver still can: the held request resumes and runs once.
    r = await gateway.http.post(
        f"/api/v2/governance/checkpoints/{target['checkpoint_id']}/approve",
        headers=gateway.auth(ALICE, "approver", sub=CAROL))
    assert r.status_code == 200, r.text

    async def completed() -> bool:
        s = await gateway.http.get(f"/api/v2/nova/requests/{target['request_id']}",
                                   headers=gateway.auth(ALICE, "member"))
        return bool(s.json()["status"] == "completed")

    await eventually(completed, 60, message="the approved request to complete")
    assert len(fake_llm.state.calls_for(target["request_id"])) == 1


async def test_forged_entity_changes_are_ignored_healed_audited_and_reported(
    gateway: Gateway, worker_factory: Any, settings: Settings,
) -> None:
    worker_factory()
    approver = gateway.auth(ALICE, "approver", sub=CAROL)
    r = await gateway.http.post("/api/v2/governance/rules", headers=approver, json={
        "effect": "deny", "match": {"text_patterns": ["forbidden-word"]}})
    assert r.status_code == 201, r.text
    rule_id = r.json()["rule_id"]
    store = gateway.services.entities
    rule = store.get(RuleEntity, rule_id)
    assert rule is not None
    key = f"rule:{rule_id}".encode()

    # A rule deleted, unsigned; the same by a null-value tombstone; an admin API key added,
    # signed with a key that is not the gateway's.
    delete = to_event(rule, version=store.version("rule", rule_id) + 1, ts=now_ms(), deleted=True)
    key_record, plaintext = create_api_key(ALICE, ["admin"], datetime.now(UTC))
    api_key = ApiKeyEntity.from_record(key_record)
    added = Signer(Ed25519PrivateKey.generate()).sign_entity(to_event(api_key, version=1,
                                                                      ts=now_ms()))
    value, headers = encoded("entity", delete)
    await produce(settings, "entities", key, value, headers)
    await produce(settings, "entities", key, None, [])
    value, headers = encoded("entity", added)
    await produce(settings, "entities", f"api_key:{api_key.key_id}".encode(), value, headers)

    audits = await untrusted_audits(settings, "entities", 3)
    assert {a["claimed"]["key"] for a in audits} == {key.decode(), f"api_key:{api_key.key_id}"}

    # The views ignored all three: the rule is listed and enforced, the key opens nothing.
    listed = await gateway.http.get("/api/v2/governance/rules", headers=approver)
    assert [x["rule_id"] for x in listed.json()] == [rule_id]
    denied = await gateway.http.post("/api/v2/nova/requests", headers=gateway.auth(ALICE),
                                     json={"prompt": "say forbidden-word", "wait_ms": 60_000})
    assert denied.json()["status"] == "denied", denied.text  # the worker's view kept the rule
    token = await gateway.http.post("/api/v2/auth/token", json={"api_key": plaintext})
    assert token.status_code == 401

    # The gateway re-signed the rule behind the forgeries, so compaction cannot evict it.
    verifier = load_verifier(settings)

    async def healed() -> EntityEvent | None:
        codec = load_schema_set()["entity"]
        mine = [r for r in await read_topic(settings, "entities") if r.key == key]
        last = mine[-1]
        if last.value is None:
            return None
        event = EntityEvent.from_avro(codec.decode(last.value, last.headers))
        return event if event.signature else None

    newest = await eventually(healed, 30, message="the rule re-signed after the forgeries")
    verifier.verify_entity(newest)
    assert (newest.deleted, newest.version) == (False, delete.version)

    letters = [d for d in await read_records(settings, "deadletter", DeadLetter)
               if d.source_topic == settings.topic("entities")]
    assert len(letters) == 3
    assert {d.lane for d in letters} == {"entities"}

    result = await verify_audit(settings)
    assert result.ok, result
    assert len([u for u in result.untrusted if u.topic == settings.topic("entities")]) == 3
