"""Scoped roles on the real broker: ``admin`` administers its own identity, ``operator`` all.

The attack (issue 14): an ``admin`` of one identity read, replaced and deleted another
identity's budgets and set a hard limit of 0 on ``*``, blocking everyone, and none of it was
audited. Now every role but ``operator`` acts within its token's identity: another identity's
objects are a 403 boundary crossing with no side effect, a budget on ``*`` (or a sphere, a
provider, another identity) is an operator's act, and each change an operator makes to objects
not its identity's own is an ``OPERATOR_ACTION`` audit fact, in the audit chain and in the
target identity's alerts.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from aiokafka import TopicPartition

from nova.kafka.clients import kafka_consumer
from nova.records import Event
from schemas import TOPICS
from tests.integration.conftest import eventually
from tests.integration.test_identity_boundary import (
    MATRIX,
    boundary_facts,
    fill,
    make_world,
    snapshot,
)

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
EVERY_IDENTITY_ROLE = ("member", "approver", "admin", "analyst")
BUDGETS = "/api/v2/llm/monitoring/budgets"


async def alerts_of_kind(gw: Any, kind: str) -> list[Event]:
    """Every alert of ``kind`` on the events topic so far (as the sink would land them)."""
    settings = gw.settings
    topic = settings.topic("events")
    codec = gw.services.schemas[TOPICS["events"].value_schema]
    consumer = kafka_consumer(settings, group_id=None, enable_auto_commit=False,
                              auto_offset_reset="earliest", fetch_max_wait_ms=50)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        found: list[Event] = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                for msg in messages:
                    event = Event.from_avro(codec.decode(msg.value, msg.headers))
                    if event.alert is not None and event.alert.alert_type == kind:
                        found.append(event)
        return found
    finally:
        await consumer.stop()


def operator_facts(events: list[Event], actor: str) -> list[tuple[str, str, str, str]]:
    """(filed under, subject, operation, owner identity) of ``actor``'s operator actions."""
    out = []
    for e in events:
        assert e.alert is not None
        message = json.loads(e.alert.message)
        if message["actor"] == actor:
            out.append((e.identity_id, e.alert.subject, message["operation"],
                        message["owner_identity"]))
    return out


async def every_budget(gw: Any) -> list[dict[str, Any]]:
    r = await gw.http.get(f"{BUDGETS}?all=true", headers=gw.auth("ops-lister", "operator"))
    assert r.status_code == 200, r.text
    return sorted(r.json()["budgets"], key=lambda b: b["id"])


@pytest.mark.parametrize(("method", "path", "body", "subject"), MATRIX,
                         ids=[f"{m} {p.split('?')[0]}{'?list' if '?' in p else ''}"
                              f"{'' if b is None else ' ' + '+'.join(sorted(b))}"
                              for m, p, b, _ in MATRIX])
async def test_every_role_of_an_identity_stops_at_its_boundary(
    module_gateway: Any, method: str, path: str, body: dict[str, Any] | None, subject: str
) -> None:
    """B holding every role an identity can hold, admin included, is still B: the identity
    boundary matrix answers it exactly as it answers a member."""
    gw = module_gateway
    w = await make_world(gw)
    before = await snapshot(gw, w)
    r = await gw.http.request(method, fill(path, w), json=fill(body, w),
                              headers=gw.auth(w.b, *EVERY_IDENTITY_ROLE))
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    for secret in (*w.secrets, w.a):
        assert secret not in r.text
    assert await snapshot(gw, w) == before
    facts = await boundary_facts(gw, w.b)
    assert [f.alert.subject for f in facts if f.alert] == [fill(subject, w)]


async def test_an_admin_budgets_only_its_own_identity(module_gateway: Any) -> None:
    gw = module_gateway
    w = await make_world(gw)
    admin = gw.auth(w.a, "admin")
    before = await every_budget(gw)
    for body in (
        {"subject": "*", "soft_usd": 0, "hard_usd": 0},  # the attack: every identity blocked
        {"subject": w.b, "soft_usd": 0, "hard_usd": 0},
        {"scope": "sphere", "subject": "personal", "soft_usd": 0, "hard_usd": 0},
        {"scope": "sphere", "soft_usd": 0, "hard_usd": 0},
        {"scope": "provider", "subject": "*", "soft_usd": 0, "hard_usd": 0},
    ):
        r = await gw.http.post(BUDGETS, headers=admin, json={"name": "block", **body})
        assert r.status_code == 403, (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        r = await gw.http.put(f"{BUDGETS}/{w.budget}", headers=admin,
                              json={"name": "block", **body})
        assert r.status_code == 403, (body, r.text)
    assert await every_budget(gw) == before

    # Its own identity's budget is its own to manage; ?all=true lists its own only.
    r = await gw.http.put(f"{BUDGETS}/{w.budget}", headers=admin,
                          json={"name": "tighter", "soft_usd": 0.5, "hard_usd": 1})
    assert (r.status_code, r.json()["hard_usd"], r.json()["owner"]) == (200, 1, w.a)
    r = await gw.http.get(f"{BUDGETS}?all=true", headers=admin)
    assert [b["id"] for b in r.json()["budgets"]] == [w.budget]
    assert operator_facts(await alerts_of_kind(gw, "OPERATOR_ACTION"), f"user-{w.a}") == []


async def test_an_operator_manages_every_budget_and_each_change_is_audited(
    module_gateway: Any,
) -> None:
    gw = module_gateway
    w = await make_world(gw)
    ops = f"ops-{w.tag}"
    operator = gw.auth(ops, "operator", sub=f"olivia-{w.tag}")

    r = await gw.http.get(f"{BUDGETS}/{w.budget}", headers=operator)
    assert (r.status_code, r.json()["owner"]) == (200, w.a)
    r = await gw.http.put(f"{BUDGETS}/{w.budget}", headers=operator,
                          json={"name": "lifted", "subject": w.a, "soft_usd": 5, "hard_usd": 10})
    assert (r.status_code, r.json()["hard_usd"], r.json()["owner"]) == (200, 10, w.a)
    r = await gw.http.post(BUDGETS, headers=operator,
                           json={"name": "for b", "subject": w.b, "soft_usd": 1, "hard_usd": 2})
    assert r.status_code == 201, r.text
    for_b = r.json()
    assert (for_b["owner"], for_b["subject"]) == (w.b, w.b)
    r = await gw.http.get(BUDGETS, headers=w.b_headers)  # B lists the budget set on it
    assert [b["id"] for b in r.json()["budgets"]] == [for_b["id"]]
    r = await gw.http.post(BUDGETS, headers=operator,
                           json={"name": "everyone", "subject": "*", "soft_usd": 100,
                                 "hard_usd": 1000})
    assert r.status_code == 201, r.text
    everyone = r.json()
    assert (everyone["owner"], everyone["subject"]) == (ops, "*")
    r = await gw.http.delete(f"{BUDGETS}/{w.budget}", headers=operator)
    assert r.status_code == 204
    r = await gw.http.get(f"{BUDGETS}/{w.budget}", headers=w.a_headers)
    assert r.status_code == 404
    r = await gw.http.delete(f"{BUDGETS}/{everyone['id']}", headers=operator)
    assert r.status_code == 204

    facts = operator_facts(await alerts_of_kind(gw, "OPERATOR_ACTION"), f"olivia-{w.tag}")
    assert sorted(facts) == sorted([  # partitions interleave: compare as sets of acts
        (w.a, f"budget:{w.budget}", "replace", w.a),
        (w.b, f"budget:{for_b['id']}", "create", w.b),
        (ops, f"budget:{everyone['id']}", "create", "*"),
        (w.a, f"budget:{w.budget}", "delete", w.a),
        (ops, f"budget:{everyone['id']}", "delete", "*"),
    ])


async def test_identities_are_provisioned_by_operators_and_audited(module_gateway: Any) -> None:
    gw = module_gateway
    tag = uuid.uuid4().hex[:10]
    new = {"id": f"n-{tag}", "user_id": f"nina-{tag}", "display_name": "Nina"}
    for roles in (("admin",), EVERY_IDENTITY_ROLE):
        r = await gw.http.post("/api/v2/identities", json=new,
                               headers=gw.auth(f"a-{tag}", *roles))
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
    assert gw.services.entities.identity(new["id"]) is None

    operator = gw.auth(f"ops-{tag}", "operator", sub=f"olivia-{tag}")
    r = await gw.http.post("/api/v2/identities", json=new, headers=operator)
    assert r.status_code == 201, r.text
    r = await gw.http.get(f"/api/v2/identities/{new['id']}", headers=operator)
    assert (r.status_code, r.json()["user_id"]) == (200, new["user_id"])
    r = await gw.http.get(f"/api/v2/identities/{new['id']}", headers=gw.auth(f"a-{tag}", "admin"))
    assert r.status_code == 403
    facts = operator_facts(await alerts_of_kind(gw, "OPERATOR_ACTION"), f"olivia-{tag}")
    assert facts == [(new["id"], f"identity:{new['id']}", "create", new["id"])]


async def test_monitoring_of_other_identities_is_an_operators(module_gateway: Any) -> None:
    gw = module_gateway
    w = await make_world(gw)
    for path in ("/api/v2/llm/monitoring/costs", "/api/v2/llm/monitoring/dashboard",
                 "/api/v2/nova/monitoring/stats", "/api/v2/llm/monitoring/alerts"):
        for roles in (("admin",), ("analyst",), EVERY_IDENTITY_ROLE):
            r = await gw.http.get(f"{path}?identity={w.a}", headers=gw.auth(w.b, *roles))
            assert r.status_code == 403, (path, roles, r.text)
            assert r.headers["content-type"].startswith(PROBLEM)
            r = await gw.http.get(path, headers=gw.auth(w.b, *roles))
            assert (r.status_code, r.json()["identity"]) == (200, w.b), (path, roles)
        r = await gw.http.get(f"{path}?identity={w.a}", headers=gw.auth("ops", "operator"))
        assert (r.status_code, r.json()["identity"]) == (200, w.a), path
        r = await gw.http.get(path, headers=gw.auth("ops", "operator"))
        assert (r.status_code, r.json()["identity"]) == (200, None), path


async def test_an_operators_change_is_in_the_audit_chain_and_the_owners_alerts(
    gateway: Any, worker_factory: Any,
) -> None:
    """Visible where audits are: lane G chains the fact (``audit_events``), the sink lands its
    alert, and the identity whose budget changed reads it among its own alerts."""
    gw = gateway
    worker_factory()
    tag = uuid.uuid4().hex[:10]
    alice, ops, olivia = f"alice-{tag}", f"ops-{tag}", f"olivia-{tag}"
    r = await gw.http.post(BUDGETS, headers=gw.auth(alice),
                           json={"name": "mine", "soft_usd": 1, "hard_usd": 2})
    assert r.status_code == 201, r.text
    budget = r.json()["id"]
    r = await gw.http.put(f"{BUDGETS}/{budget}", headers=gw.auth(ops, "operator", sub=olivia),
                          json={"name": "mine", "subject": alice, "soft_usd": 0, "hard_usd": 0})
    assert r.status_code == 200, r.text

    ch = gw.clickhouse

    async def chained() -> list[dict[str, Any]]:
        return await asyncio.to_thread(
            ch.rows, f"SELECT identity_id, actor, detail FROM {ch.database}.audit_events FINAL "  # noqa: S608
                     "WHERE kind = 'OPERATOR_ACTION'")

    [row] = await eventually(chained, 90, 0.3, message="the OPERATOR_ACTION audit record")
    detail = json.loads(row["detail"])
    assert (row["identity_id"], row["actor"]) == (alice, olivia)
    assert (detail["operator_identity"], detail["owner_identity"], detail["resource_id"]) == (
        ops, alice, budget)
    assert detail["change"]["before"]["hard_usd"] == 2
    assert detail["change"]["after"]["hard_usd"] == 0

    async def owners_alert() -> list[dict[str, Any]]:
        r = await gw.http.get("/api/v2/llm/monitoring/alerts?type=OPERATOR_ACTION",
                              headers=gw.auth(alice))
        return list(r.json()["alerts"])

    [alert] = await eventually(owners_alert, 60, 0.3, message="alice's OPERATOR_ACTION alert")
    assert alert["subject"] == f"budget:{budget}"
    r = await gw.http.get("/api/v2/llm/monitoring/alerts?type=OPERATOR_ACTION",
                          headers=gw.auth(f"bob-{tag}"))
    assert r.json()["alerts"] == []
