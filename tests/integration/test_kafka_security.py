"""Kafka's own security on the broker Nova runs: no login, no access; each principal writes only
what its ACLs allow.

The attack of issue 14 is the case: an ``approve`` record, encoded with the project's own
encoder, written straight onto the decisions topic. Before SASL and ACLs it released a held
payment. Now the broker refuses it from a client without credentials, with a wrong password,
with the PLAIN mechanism, and from every principal but the gateway's; the held request stays
held and no provider is called.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from nova.audit.verify import verify_audit
from nova.kafka import credentials
from nova.kafka.clients import client_options
from nova.records import CheckpointDecisionRecord, now_ms
from nova.settings import KafkaClient, Settings
from schemas import TOPICS, load_schema_set
from schemas.topics import WORKER_TABLES, worker_app_id
from tests.integration.conftest import Gateway, SessionBroker, eventually
from tests.integration.pipeline_checks import read_records, read_topic

pytestmark = pytest.mark.integration

ALICE = "identity-alice"
CAROL = "user-carol"  # another person of identity-alice: an approver, not the submitter


def approve(request_id: str = "req-attack", checkpoint_id: str = "cp-attack") -> (
        CheckpointDecisionRecord):
    return CheckpointDecisionRecord(
        checkpoint_id=checkpoint_id, request_id=request_id, identity_id=ALICE,
        decision="approve", actor="nobody", reason="attack", decided_at=now_ms())


async def write(options: dict[str, Any], topic: str, value: bytes,
                headers: list[tuple[str, bytes]] | None = None, key: bytes = b"k") -> None:
    """Produce one record with raw aiokafka, as an attacker on the network would."""
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=False,
                                request_timeout_ms=5000, metadata_max_age_ms=1000)
    try:
        await asyncio.wait_for(producer.start(), 20)
        await asyncio.wait_for(
            producer.send_and_wait(topic, value, key=key, headers=headers or []), 20)
    finally:
        await producer.stop()


def as_principal(settings: Settings, role: KafkaClient) -> dict[str, Any]:
    return client_options(settings.as_client(role))


def forged(settings: Settings, record: CheckpointDecisionRecord) -> tuple[bytes, list[Any]]:
    """The record exactly as the gateway's producer encodes it (``RecordProducer.encode``:
    the decisions topic's Avro schema and its fingerprint header)."""
    codec = load_schema_set()[TOPICS["decisions"].value_schema]
    return codec.encode(record.to_avro()), [codec.header]


def without_login(settings: Settings) -> dict[str, Any]:
    return {"bootstrap_servers": settings.bootstrap_servers, "security_protocol": "PLAINTEXT"}


def wrong_password(settings: Settings) -> dict[str, Any]:
    return {**as_principal(settings, "gateway"), "sasl_plain_password": "guessed-password"}


def plain_mechanism(settings: Settings, broker: SessionBroker) -> dict[str, Any]:
    """SASL/PLAIN with the admin's real password: the client listener only speaks SCRAM."""
    return {**as_principal(settings, "admin"), "sasl_mechanism": "PLAIN",
            "sasl_plain_password": credentials.read_password(broker.credentials, "admin")}


@pytest.mark.parametrize("client", ["no credentials", "wrong password", "PLAIN mechanism"])
async def test_a_client_that_does_not_log_in_with_scram_is_refused(
    settings: Settings, broker: SessionBroker, client: str,
) -> None:
    options = {"no credentials": without_login(settings),
               "wrong password": wrong_password(settings),
               "PLAIN mechanism": plain_mechanism(settings, broker)}[client]
    value, headers = forged(settings, approve())
    with pytest.raises((KafkaError, TimeoutError)):
        await write(options, settings.topic("decisions"), value, headers)
    assert await read_topic(settings, "decisions") == []


@pytest.mark.parametrize("role", ["worker", "tools"])
async def test_an_approve_record_from_any_principal_but_the_gateway_is_refused(
    settings: Settings, role: KafkaClient,
) -> None:
    value, headers = forged(settings, approve())
    with pytest.raises(TopicAuthorizationFailedError):
        await write(as_principal(settings, role), settings.topic("decisions"), value, headers)
    assert await read_topic(settings, "decisions") == []
    # Control: the same record from the gateway's principal is accepted (ACLs, not a broken
    # encoding, refused it above).
    await write(as_principal(settings, "gateway"), settings.topic("decisions"), value, headers)
    assert len(await read_topic(settings, "decisions")) == 1


@pytest.mark.parametrize("topic", ["decisions", "requests", "entities"])
async def test_the_worker_cannot_write_decisions_requests_or_entities(
    settings: Settings, topic: str,
) -> None:
    worker = as_principal(settings, "worker")
    with pytest.raises(TopicAuthorizationFailedError):
        await write(worker, settings.topic(topic), b"forged")
    assert await read_topic(settings, topic) == []
    await write(worker, settings.topic("intents"), b"a lane hand-off")  # its own topics: yes


async def test_the_gateway_cannot_write_audit_and_only_the_worker_can(settings: Settings) -> None:
    for role in ("gateway", "tools"):
        with pytest.raises(TopicAuthorizationFailedError):
            await write(as_principal(settings, role), settings.topic("audit"), b"forged link")
    assert await read_topic(settings, "audit") == []
    await write(as_principal(settings, "gateway"), settings.topic("requests"), b"its own topic")
    await write(as_principal(settings, "worker"), settings.topic("audit"), b"lane G's link")
    assert len(await read_topic(settings, "audit")) == 1


async def test_tools_read_what_they_verify(settings: Settings) -> None:
    result = await verify_audit(settings.as_client("tools"))  # as `nova audit verify` does
    assert result.report.ok


@pytest.mark.parametrize("topic", [*TOPICS, "worker-internal"])
async def test_the_tools_principal_cannot_write_any_topic(settings: Settings, topic: str) -> None:
    """Every declared topic, and the worker's Faust topics (a changelog would rebuild state)."""
    name = (f"{worker_app_id(settings.topic_prefix)}-{WORKER_TABLES[0]}-changelog"
            if topic == "worker-internal" else settings.topic(topic))
    with pytest.raises(TopicAuthorizationFailedError):
        await write(as_principal(settings, "tools"), name, b"forged")


async def test_a_held_payment_stays_held_when_anyone_but_the_gateway_approves_it(
    settings: Settings, broker: SessionBroker, gateway: Gateway, worker_factory: Any,
    fake_llm: Any,
) -> None:
    """The attack end to end: a running pipeline, a held payment, approvals forged onto the
    decisions topic with the project's encoder by every client that is not the gateway."""
    assert gateway.services.settings.kafka_client == "gateway"
    worker_factory()
    r = await gateway.http.post(
        "/api/v2/nova/requests", headers=gateway.auth(ALICE, "member"),
        json={"prompt": "Pay invoice INV-7 of 300 EUR to ACME", "wait_ms": 60_000})
    assert r.status_code == 423, r.text
    held = r.json()
    value, headers = forged(settings, approve(held["request_id"], held["checkpoint_id"]))
    key = held["request_id"].encode()
    topic = settings.topic("decisions")
    for options in (without_login(settings), wrong_password(settings),
                    plain_mechanism(settings, broker), as_principal(settings, "worker"),
                    as_principal(settings, "tools")):
        with pytest.raises((KafkaError, TimeoutError)):
            await write(options, topic, value, headers, key=key)
    assert await read_topic(settings, "decisions") == [], "no forged approval got through"
    view = gateway.services.tracker.get(held["request_id"])
    assert view is not None
    assert view.status == "held"
    assert fake_llm.state.calls_for(held["request_id"]) == []

    # Control: the approval that does count is the gateway's, for an approver who is not the
    # submitter; it is the only decision on the topic, and it releases the payment once.
    url = f"/api/v2/governance/checkpoints/{held['checkpoint_id']}/approve"
    r = await gateway.http.post(url, headers=gateway.auth(ALICE, "approver", sub=CAROL),
                                json={"reason": "checked the invoice"})
    assert r.status_code == 200, r.text
    [decision] = await read_records(settings, "decisions", CheckpointDecisionRecord)
    assert (decision.request_id, decision.decision) == (held["request_id"], "approve")
    assert decision.actor != "nobody"

    async def completed() -> bool:
        view = gateway.services.tracker.get(held["request_id"])
        return view is not None and view.status == "completed"

    assert await eventually(completed, 60, message="the approved payment to complete")
    assert len(fake_llm.state.calls_for(held["request_id"])) == 1
