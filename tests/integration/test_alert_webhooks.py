"""Alerts that reach people: webhook destinations, tested against a real local HTTP receiver.

One gateway for the module (no worker: the tests write the records the lanes would write, on
the real broker, and the gateway's dispatcher reads them as it reads the lanes'); it is
restarted once, to show that nothing is delivered twice after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from analytics.client import ClickHouse
from nova.alerts import payloads
from nova.kafka.acls import alerts_group
from nova.kafka.clients import kafka_admin, kafka_consumer
from nova.kafka.launcher import free_port
from nova.kafka.producer import RecordProducer
from nova.records import (
    Alert,
    AuditFact,
    CheckpointState,
    DeadLetter,
    Delivery,
    Event,
    LlmCall,
    PipelineRecord,
    now_ms,
)
from nova.settings import Settings
from tests.integration.alert_receiver import Receiver
from tests.integration.conftest import (
    Gateway,
    SessionBroker,
    eventually,
    provisioned,
    serve_gateway,
)
from tests.integration.pipeline_checks import read_records

pytestmark = pytest.mark.integration


def unique(name: str) -> str:
    return f"identity-{name}-{uuid.uuid4().hex[:8]}"


@dataclass
class AlertStack:
    settings: Settings
    clickhouse: ClickHouse
    receiver: Receiver
    gw: Any = None
    _serving: Any = None
    producer: RecordProducer | None = None
    identities: dict[str, str] = field(default_factory=dict)

    async def start(self) -> Gateway:
        self._serving = serve_gateway(self.settings, self.clickhouse)
        gw: Gateway = await self._serving.__aenter__()
        self.gw = gw
        await asyncio.wait_for(gw.services.alerts.ready.wait(), 120)
        return gw

    async def stop(self) -> None:
        if self._serving is not None:
            await self._serving.__aexit__(None, None, None)
            self._serving = None

    async def emit(self, *records: tuple[str, str, Any]) -> None:
        assert self.producer is not None
        for topic, key, record in records:
            await self.producer.send(topic, key, record)

    async def webhook(self, identity: str, path: str, *alerts: str, roles: tuple[str, ...] = (
            "admin",), **body: Any) -> dict[str, Any]:
        r = await self.gw.http.post(
            "/api/v2/alerts/webhooks", headers=self.gw.auth(identity, *roles),
            json={"name": path, "url": self.receiver.url + path, "alerts": list(alerts), **body})
        assert r.status_code == 201, r.text
        created: dict[str, Any] = r.json()
        return created


@pytest.fixture(scope="module")
async def stack(broker: SessionBroker, clickhouse: ClickHouse,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AlertStack]:
    tag = uuid.uuid4().hex[:10]
    data = tmp_path_factory.mktemp("alerts")
    settings = provisioned(broker.settings(
        environment="test", data_dir=data / "data", topic_prefix=f"t{tag}",
        topic_partitions=4, clickhouse_database=f"t_{tag}", gateway_port=free_port(),
        run_sink=False, log_level="warning", alert_private_urls=True, alert_retries=3,
        alert_backoff_s=0.05, alert_sweep_s=0.3, alert_checkpoint_wait_s=1.0,
        alert_window_s=600.0, alert_min_calls=3, alert_error_rate=0.5, alert_latency_ms=1000.0,
        alert_commit_interval_s=3600.0, report_schedule="2s", report_dir=data / "reports"))
    receiver = Receiver().start()
    running = AlertStack(settings, clickhouse.with_database(settings.clickhouse_database),
                         receiver)
    await running.start()
    running.producer = RecordProducer(settings)
    await running.producer.start()
    try:
        yield running
    finally:
        await running.producer.stop()
        await running.stop()
        receiver.stop()


def budget_event(identity: str, kind: str = "BUDGET_SOFT_LIMIT", rid: str | None = None
                 ) -> tuple[str, str, Event]:
    rid = rid or f"r-{uuid.uuid4().hex}"
    return ("events", rid, Event(
        event_id=f"{rid}/alert/0", kind="alert", request_id=rid, identity_id=identity,
        ts=now_ms(), alert=Alert(alert_type=kind, subject=f"cap-{identity}",
                                 message="budget cap: spent 4.2 of soft limit 4 USD")))


def health_event(provider: str, status: str) -> tuple[str, str, Event]:
    ts = now_ms()
    return ("events", f"provider-health/{provider}", Event(
        event_id=f"provider-health/{provider}/{status}/{uuid.uuid4().hex}", kind="alert",
        request_id=f"provider-health/{provider}", identity_id="system", ts=ts,
        alert=Alert(alert_type="PROVIDER_HEALTH", subject=provider, message=status)))


async def received(receiver: Receiver, path: str, n: int = 1, timeout_s: float = 60
                   ) -> list[Any]:
    async def enough() -> list[Any] | None:
        got = receiver.at(path)
        return got if len(got) >= n else None

    result: list[Any] = await eventually(enough, timeout_s, 0.1,
                                         message=f"{n} POSTs to {path}")
    return result


# -- the routes --------------------------------------------------------------------------
async def test_destinations_belong_to_their_identity_and_need_the_right_role(
    stack: AlertStack,
) -> None:
    gw, alice, bob = stack.gw, unique("alice"), unique("bob")
    mine = await stack.webhook(alice, "/ok/routes", "budget.soft", format="slack")
    assert mine["url"] == stack.receiver.url + "/ok/routes"
    assert len(mine["secret"]) >= 32
    listed = (await gw.http.get("/api/v2/alerts/webhooks", headers=gw.auth(alice, "admin"))
              ).json()["webhooks"]
    assert [w["id"] for w in listed] == [mine["id"]]
    assert listed[0]["url"] == f"{stack.receiver.url}/…"  # never whole again
    assert "secret" not in listed[0]
    one = await gw.http.get(f"/api/v2/alerts/webhooks/{mine['id']}",
                            headers=gw.auth(alice, "admin"))
    assert one.status_code == 200
    assert "secret" not in one.json()

    # another identity, whatever its roles: 403, nothing of the destination, no side effect
    for method in ("get", "delete"):
        r = await gw.http.request(method.upper(), f"/api/v2/alerts/webhooks/{mine['id']}",
                                  headers=gw.auth(bob, "admin", "approver", "member"))
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert stack.receiver.url not in r.text
        assert "/ok/routes" not in r.text
    assert (await gw.http.get(f"/api/v2/alerts/webhooks/{mine['id']}",
                              headers=gw.auth(alice, "admin"))).status_code == 200
    bob_lists = await gw.http.get("/api/v2/alerts/webhooks", headers=gw.auth(bob, "admin"))
    assert bob_lists.json()["webhooks"] == []

    async def crossings() -> list[AuditFact]:
        facts = await read_records(gw.settings, "facts", AuditFact)
        return [f for f in facts if f.kind == "IDENTITY_BOUNDARY" and f.identity_id == bob
                and json.loads(f.detail)["resource_id"] == mine["id"]]

    assert len(await eventually(crossings, 30, message="IDENTITY_BOUNDARY facts")) == 2

    # roles: members, approvers and analysts do not manage destinations; admins not global
    for roles in (("member",), ("approver",), ("analyst",)):
        r = await gw.http.post("/api/v2/alerts/webhooks", headers=gw.auth(alice, *roles),
                               json={"name": "x", "url": stack.receiver.url + "/ok/x"})
        assert r.status_code == 403, roles
        r = await gw.http.get("/api/v2/alerts/webhooks", headers=gw.auth(alice, *roles))
        assert r.status_code == 403, roles
    r = await gw.http.post("/api/v2/alerts/webhooks", headers=gw.auth(alice, "admin"),
                           json={"name": "x", "url": stack.receiver.url + "/ok/x",
                                 "scope": "global"})
    assert r.status_code == 403
    r = await gw.http.delete(f"/api/v2/alerts/webhooks/{mine['id']}",
                             headers=gw.auth(alice, "admin"))
    assert r.status_code == 204
    assert (await gw.http.get(f"/api/v2/alerts/webhooks/{mine['id']}",
                              headers=gw.auth(alice, "admin"))).status_code == 404


@pytest.mark.parametrize(("body", "slug"), [
    ({"url": "ftp://127.0.0.1/x"}, "webhook-url"),
    ({"url": "http://user:pw@127.0.0.1/x"}, "webhook-url"),
    ({"url": "http://169.254.169.254/latest/meta-data"}, "webhook-url"),
    ({"url": "http://127.0.0.1/x", "alerts": ["provider.gossip"]}, "validation"),
    ({"url": "http://127.0.0.1/x", "alerts": []}, "validation"),
    ({"url": "http://127.0.0.1/x", "alerts": ["report"]}, "webhook"),
    ({"url": "http://127.0.0.1/x", "format": "xml"}, "validation"),
    ({"url": "http://127.0.0.1/x", "secret": "mine"}, "validation"),
    ({"url": 7}, "validation"),
])
async def test_bad_destinations_are_422_problems(stack: AlertStack, body: dict[str, Any],
                                                 slug: str) -> None:
    gw = stack.gw
    r = await gw.http.post("/api/v2/alerts/webhooks", headers=gw.auth(unique("a"), "admin"),
                           json={"name": "bad", **body})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith(slug)


async def test_an_operators_global_destination_is_audited(stack: AlertStack) -> None:
    gw, ops = stack.gw, unique("ops")
    created = await stack.webhook(ops, "/ok/global-audit", "provider.down", roles=("operator",),
                                  scope="global")

    async def audited() -> list[AuditFact]:
        facts = await read_records(gw.settings, "facts", AuditFact)
        return [f for f in facts if f.kind == "OPERATOR_ACTION"
                and json.loads(f.detail)["resource_id"] == created["id"]]

    await eventually(audited, 30, message="the OPERATOR_ACTION fact")
    r = await gw.http.delete(f"/api/v2/alerts/webhooks/{created['id']}",
                             headers=gw.auth(ops, "operator"))
    assert r.status_code == 204


# -- deliveries --------------------------------------------------------------------------
async def test_a_budget_alert_reaches_its_identitys_destinations_signed(stack: AlertStack) -> None:
    alice, bob = unique("alice"), unique("bob")
    plain = await stack.webhook(alice, "/ok/alice-json", "budget.soft", "budget.hard")
    await stack.webhook(alice, "/ok/alice-slack", "budget.soft", format="slack")
    await stack.webhook(bob, "/ok/bob-json", "budget.soft")
    await stack.emit(budget_event(alice))
    [got] = await received(stack.receiver, "/ok/alice-json")
    [chat] = await received(stack.receiver, "/ok/alice-slack")
    assert got.json["kind"] == "budget.soft"
    assert got.json["identity"] == alice
    assert got.json["delivery_id"] == got.headers["Nova-Delivery-Id"]
    assert payloads.verify(plain["secret"], got.headers["Nova-Signature"], got.body)
    assert not payloads.verify("another secret" * 3, got.headers["Nova-Signature"], got.body)
    assert set(chat.json) == {"text"}
    assert "spent 4.2 of soft limit 4 USD" in chat.json["text"]
    # the same soft limit again (the next request past it): no second alert today
    await stack.emit(budget_event(alice), budget_event(alice, "BUDGET_EXCEEDED"))
    [hard] = [r for r in await received(stack.receiver, "/ok/alice-json", 2)][1:]
    assert hard.json["kind"] == "budget.hard"
    await asyncio.sleep(1)
    assert len(stack.receiver.at("/ok/alice-json")) == 2
    assert stack.receiver.at("/ok/bob-json") == []  # never another identity's


async def test_a_failing_destination_is_retried_then_dead_lettered(stack: AlertStack) -> None:
    alice = unique("alice")
    await stack.webhook(alice, "/flaky/2/a", "budget.soft")
    await stack.webhook(alice, "/down/a", "budget.soft")
    await stack.webhook(alice, "/gone/a", "budget.soft")
    await stack.emit(budget_event(alice))
    flaky = await received(stack.receiver, "/flaky/2/a", 3)
    assert len({r.headers["Nova-Delivery-Id"] for r in flaky}) == 1  # one delivery, 3 tries
    await received(stack.receiver, "/down/a", 3)
    await received(stack.receiver, "/gone/a", 1)

    async def dead() -> list[DeadLetter]:
        letters = await read_records(stack.settings, "deadletter", DeadLetter)
        return [d for d in letters if d.lane == "alerts" and alice.encode() in (d.value or b"")]

    letters = await eventually(lambda: _at_least(dead, 2), 30, message="two dead letters")
    reasons = sorted(d.reason for d in letters)
    assert reasons == ["HTTP 404 (not retried) after 1 attempts", "HTTP 500 after 3 attempts"]
    assert all(json.loads(d.value or b"{}")["kind"] == "budget.soft" for d in letters)
    await asyncio.sleep(0.5)
    assert len(stack.receiver.at("/down/a")) == 3  # no attempt after the last
    assert len(stack.receiver.at("/flaky/2/a")) == 3
    outcomes = {d.webhook_id: d.outcome for d in await read_records(
        stack.settings, "deliveries", Delivery) if d.alert_id.startswith("budget.soft/" + alice)}
    assert sorted(outcomes.values()) == ["dead", "dead", "delivered"]


async def _at_least(check: Any, n: int) -> Any:
    got = await check()
    return got if len(got) >= n else None


async def test_provider_down_then_recovered(stack: AlertStack) -> None:
    alice, ops = unique("alice"), unique("ops")
    provider = f"prov-{uuid.uuid4().hex[:6]}"
    await stack.webhook(ops, "/ok/ops-providers", "provider.down", "provider.recovered",
                        roles=("operator",), scope="global")
    await stack.webhook(alice, "/ok/alice-providers", "provider.down")
    await stack.emit(health_event(provider, "healthy"), health_event(provider, "down"),
                     health_event(provider, "healthy"))
    down, back = await received(stack.receiver, "/ok/ops-providers", 2)
    assert (down.json["kind"], back.json["kind"]) == ("provider.down", "provider.recovered")
    assert down.json["subject"] == provider
    [told] = await received(stack.receiver, "/ok/alice-providers")
    assert told.json["kind"] == "provider.down"


async def test_error_rate_and_latency_spikes(stack: AlertStack) -> None:
    alice = unique("alice")
    await stack.webhook(alice, "/ok/spikes", "error_rate", "latency")

    def llm(status: str, latency: float) -> tuple[str, str, Event]:
        rid = f"r-{uuid.uuid4().hex}"
        return ("events", rid, Event(
            event_id=f"{rid}/llm/1", kind="llm", request_id=rid, identity_id=alice,
            ts=now_ms(), llm=LlmCall(provider="openai", model="gpt", tokens_in=1, tokens_out=1,
                                     cost_usd=0.0, latency_ms=latency, attempt=1,
                                     status=status)))

    await stack.emit(*(llm("error", 10.0) for _ in range(3)))
    [spike] = await received(stack.receiver, "/ok/spikes")
    assert spike.json["kind"] == "error_rate"
    assert spike.json["details"]["errors"] == 3
    await stack.emit(*(llm("ok", 5000.0) for _ in range(3)))
    _, slow = await received(stack.receiver, "/ok/spikes", 2)
    assert slow.json["kind"] == "latency"
    assert slow.json["details"]["p95_ms"] == 5000.0


async def test_a_checkpoint_waiting_too_long_is_told_to_its_identity(stack: AlertStack) -> None:
    alice = unique("alice")
    await stack.webhook(alice, "/ok/waiting", "checkpoint.waiting", format="slack")
    await stack.webhook(alice, "/ok/waiting-json", "checkpoint.waiting")
    rid, created = f"r-{uuid.uuid4().hex}", now_ms()
    await stack.emit(("pending", rid, PipelineRecord(
        request_id=rid, identity_id=alice, user_id="user-alice", submitted_at=created,
        prompt="Pay the invoice", status="held", checkpoint=CheckpointState(
            checkpoint_id=f"cp-{rid}", reason="PAYMENT requires approval", status="pending",
            created_at=created, expires_at=created + 3_600_000))))
    [told] = await received(stack.receiver, "/ok/waiting")
    [data] = await received(stack.receiver, "/ok/waiting-json")
    assert "for an approver" in told.json["text"]
    assert "/console" in told.json["text"]
    assert data.json["details"]["checkpoint_id"] == f"cp-{rid}"
    assert "Pay the invoice" not in told.body.decode()  # no prompt in an alert
    await asyncio.sleep(1.5)  # several sweeps later: still one
    assert len(stack.receiver.at("/ok/waiting")) == 1


async def test_the_report_goes_out_on_its_schedule_once_per_period(stack: AlertStack) -> None:
    ops = unique("ops")
    await stack.webhook(ops, "/ok/report", "report", roles=("operator",), scope="global")
    reports = await received(stack.receiver, "/ok/report", 2, timeout_s=60)
    first, second = reports[0].json, reports[1].json
    assert first["kind"] == "report"
    assert first["alert_id"] != second["alert_id"]  # one per period
    assert "Nova cost and latency report" in first["details"]["text"]
    assert len({r.json["alert_id"] for r in stack.receiver.at("/ok/report")}) == len(
        stack.receiver.at("/ok/report"))
    folder = stack.settings.report_dir
    assert isinstance(folder, Path)
    assert sorted(p.suffix for p in folder.glob("nova-report-*"))[:2] == [".html", ".html"]


async def test_nothing_is_delivered_twice_after_a_restart(stack: AlertStack) -> None:
    """Last in the module: it restarts the gateway."""
    alice, bob = unique("alice"), unique("bob")
    await stack.webhook(alice, "/ok/restart-alice", "budget.soft")
    await stack.webhook(bob, "/ok/restart-bob", "budget.soft")
    rid = f"r-{uuid.uuid4().hex}"  # one key: both records on one partition, in order
    await stack.emit(budget_event(alice, rid=rid))
    await received(stack.receiver, "/ok/restart-alice")
    behind = await _uncommitted(stack.settings)
    assert behind, "the dispatcher committed past the alert: the restart would prove nothing"
    await stack.stop()
    await stack.start()
    await stack.emit(budget_event(bob, rid=rid))
    await received(stack.receiver, "/ok/restart-bob")  # read after alice's record, again
    assert len(stack.receiver.at("/ok/restart-alice")) == 1


async def _uncommitted(settings: Settings) -> dict[str, int]:
    """Partitions of events where the alerts group's committed offset is behind the end."""
    admin = kafka_admin(settings)
    consumer = kafka_consumer(settings, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(alerts_group(settings))
        ends = await consumer.end_offsets(list(committed))
        return {f"{tp.topic}[{tp.partition}]": ends[tp] - meta.offset
                for tp, meta in committed.items() if meta.offset < ends[tp]}
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        await admin.close()
