"""The identity boundary on the real broker: identity B's token on identity A's ids.

Every resource endpoint, read and write, must answer 403 problem+json carrying nothing of the
resource, change nothing, and leave an IDENTITY_BOUNDARY fact on the events topic. One gateway
serves the whole module; each test builds its own pair of identities, so tests stay
independent and can run in any order.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import TopicPartition

from nova.kafka.clients import kafka_consumer
from nova.records import AuditFact, EntityEvent, Event
from schemas import TOPICS
from tests.integration.conftest import RESPOND_ASYNC
from tests.integration.pipeline_checks import read_records

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@dataclass
class World:
    """Identity A's resources, and the headers of A, B (another user) and A's sibling."""

    tag: str
    a: str
    b: str
    a_headers: dict[str, str]
    b_headers: dict[str, str]
    thread: str
    dataspace: str
    meeting: str
    rule: str
    budget: str
    request: str
    key: str
    secrets: tuple[str, ...]
    alert: str = ""


async def admin_headers(gw: Any) -> dict[str, str]:
    """An operator's: provisioning identities is platform-wide administration."""
    headers: dict[str, str] = gw.auth(f"ops-{uuid.uuid4().hex[:8]}", "operator")
    return headers


async def make_world(gw: Any) -> World:
    tag = uuid.uuid4().hex[:10]
    http, admin = gw.http, await admin_headers(gw)
    a, b = f"a-{tag}", f"b-{tag}"
    for ident, user in ((a, f"alice-{tag}"), (b, f"bob-{tag}")):
        r = await http.post("/api/v2/identities", headers=admin, json={
            "id": ident, "user_id": user, "display_name": f"{ident} name", "sphere_id": "personal"})
        assert r.status_code == 201, r.text
    ah, bh = gw.auth(a), gw.auth(b)
    secrets = (f"title-{tag}", f"message-{tag}", f"dsname-{tag}", f"item-{tag}",
               f"pattern{tag}", f"alice-{tag}", f"budget-{tag}", f"prompt-{tag}",
               f"laneerror-{tag}", f"meeting-{tag}", f"agenda-{tag}", f"note-{tag}",
               f"decision-{tag}", f"guest-{tag}")
    r = await http.post("/api/v2/threads", headers=ah, json={"title": secrets[0]})
    assert r.status_code == 201, r.text
    thread = r.json()["id"]
    r = await http.post(f"/api/v2/threads/{thread}/messages", headers=ah,
                        json={"text": secrets[1]})
    assert r.status_code == 201, r.text
    r = await http.post("/api/v2/dataspaces", headers=ah, json={"name": secrets[2]})
    assert r.status_code == 201, r.text
    dataspace = r.json()["id"]
    r = await http.post(f"/api/v2/dataspaces/{dataspace}/items", headers=ah,
                        json={"title": "t", "text": secrets[3]})
    assert r.status_code == 201, r.text
    r = await http.post("/api/v2/governance/rules", headers=gw.auth(a, "approver"), json={
        "effect": "deny", "priority": 3, "match": {"text_patterns": [secrets[4]]}})
    assert r.status_code == 201, r.text
    rule = r.json()["rule_id"]
    r = await http.post("/api/v2/meetings", headers=ah, json={
        "title": secrets[9], "thread_id": thread, "participants": [secrets[13]],
        "starts_at": "2026-12-01T09:30:00+01:00"})
    assert r.status_code == 201, r.text
    meeting = r.json()["id"]
    for segment, text in (("agenda", secrets[10]), ("notes", secrets[11]),
                          ("decisions", secrets[12])):
        r = await http.post(f"/api/v2/meetings/{meeting}/{segment}", headers=ah,
                            json={"text": text})
        assert r.status_code == 201, r.text
    r = await http.post("/api/v2/llm/monitoring/budgets", headers=ah,
                        json={"name": secrets[6], "soft_usd": 1, "hard_usd": 2})
    assert r.status_code == 201, r.text
    budget = r.json()["id"]
    # Accepted is enough: the gateway's tracker knows the request and its owner (no worker).
    r = await http.post("/api/v2/nova/requests", headers={**ah, **RESPOND_ASYNC},
                        json={"prompt": secrets[7]})
    assert r.status_code == 202, r.text
    request = r.json()["request_id"]
    r = await http.post("/api/v2/auth/keys", headers=gw.auth(a, "admin"),
                        json={"roles": ["member"]})
    assert r.status_code == 201, r.text
    key = r.json()["key_id"]
    # The request's trail as the sink would have written it (this gateway runs no sink).
    now = datetime.now(UTC)
    gw.clickhouse.insert("lane_events", [[request, a, "A", "ok", now, 1.5, "w", secrets[8], now,
                                          now, 1]],
                         ["request_id", "identity_id", "lane", "status", "started_at",
                          "duration_ms", "worker", "error", "request_ts", "ts", "version"])
    # One alert of A's, as the sink would have written it (a budget warning).
    alert = f"budget.soft/{a}/{budget}/{now.date().isoformat()}"
    gw.clickhouse.insert("alerts", [[alert, request, a, "BUDGET_SOFT_LIMIT", budget,
                                     secrets[6], "warning", now, 1]],
                         ["event_id", "request_id", "identity_id", "alert_type", "subject",
                          "message", "severity", "ts", "version"])
    return World(tag, a, b, ah, bh, thread, dataspace, meeting, rule, budget, request, key,
                 secrets, alert)


async def snapshot(gw: Any, w: World) -> dict[str, Any]:
    """Everything A can see of its own resources (the 'nothing changed' baseline)."""
    http, h = gw.http, w.a_headers
    out: dict[str, Any] = {}
    for name, path in (("thread", f"/api/v2/threads/{w.thread}"),
                       ("dataspace", f"/api/v2/dataspaces/{w.dataspace}"),
                       ("meeting", f"/api/v2/meetings/{w.meeting}"),
                       ("meetings", "/api/v2/meetings"),
                       ("rule", f"/api/v2/governance/rules/{w.rule}"),
                       ("threads", "/api/v2/threads"), ("dataspaces", "/api/v2/dataspaces"),
                       ("rules", "/api/v2/governance/rules"),
                       ("identity", f"/api/v2/identities/{w.a}"),
                       ("budget", f"/api/v2/llm/monitoring/budgets/{w.budget}"),
                       ("request", f"/api/v2/nova/requests/{w.request}"),
                       ("pipeline", f"/api/v2/nova/monitoring/pipelines/{w.request}"),
                       ("timeline", f"/api/v2/nova/monitoring/pipelines/{w.request}/timeline"),
                       ("alerts", "/api/v2/llm/monitoring/alerts"),
                       ("pipelines", "/api/v2/nova/monitoring/pipelines")):
        r = await http.get(path, headers=h)
        assert r.status_code == 200, (path, r.text)
        out[name] = r.json()
    r = await http.get("/api/v2/auth/keys", headers=gw.auth(w.a, "admin"))  # an admin's list
    assert r.status_code == 200, r.text
    out["keys"] = r.json()
    return out


async def boundary_facts(gw: Any, identity: str) -> list[Event]:
    """IDENTITY_BOUNDARY alerts on the events topic raised by ``identity``."""
    settings = gw.settings
    topic = settings.topic("events")
    codec = gw.services.schemas[TOPICS["events"].value_schema]
    consumer = kafka_consumer(settings, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_max_wait_ms=50)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        facts: list[Event] = []
        async def behind() -> bool:
            return any([await consumer.position(tp) < end for tp, end in ends.items()])

        while await behind():
            batch = await consumer.getmany(timeout_ms=1000)
            for messages in batch.values():
                for msg in messages:
                    event = Event.from_avro(codec.decode(msg.value, msg.headers))
                    if (event.alert is not None and event.identity_id == identity
                            and event.alert.alert_type == "IDENTITY_BOUNDARY"):
                        facts.append(event)
        return facts
    finally:
        await consumer.stop()


# (method, path template, json body, subject of the expected fact)
MATRIX: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/api/v2/identities/{a}", None, "identity:{a}"),
    ("GET", "/api/v2/threads?identity={a}", None, "thread:list:{a}"),
    ("GET", "/api/v2/threads/{thread}", None, "thread:{thread}"),
    ("POST", "/api/v2/threads/{thread}/messages", {"text": "from B"}, "thread:{thread}"),
    ("PATCH", "/api/v2/threads/{thread}", {"title": "from B"}, "thread:{thread}"),
    ("DELETE", "/api/v2/threads/{thread}", None, "thread:{thread}"),
    ("GET", "/api/v2/dataspaces?identity={a}", None, "dataspace:list:{a}"),
    ("GET", "/api/v2/dataspaces/{dataspace}", None, "dataspace:{dataspace}"),
    ("POST", "/api/v2/dataspaces/{dataspace}/items", {"text": "from B"},
     "dataspace:{dataspace}"),
    ("PATCH", "/api/v2/dataspaces/{dataspace}", {"name": "from B"}, "dataspace:{dataspace}"),
    ("DELETE", "/api/v2/dataspaces/{dataspace}", None, "dataspace:{dataspace}"),
    ("GET", "/api/v2/meetings?identity={a}", None, "meeting:list:{a}"),
    ("GET", "/api/v2/meetings/{meeting}", None, "meeting:{meeting}"),
    ("PATCH", "/api/v2/meetings/{meeting}", {"title": "from B"}, "meeting:{meeting}"),
    ("DELETE", "/api/v2/meetings/{meeting}", None, "meeting:{meeting}"),
    ("POST", "/api/v2/meetings/{meeting}/agenda", {"text": "from B"}, "meeting:{meeting}"),
    ("POST", "/api/v2/meetings/{meeting}/notes", {"text": "from B"}, "meeting:{meeting}"),
    ("POST", "/api/v2/meetings/{meeting}/decisions", {"text": "from B"}, "meeting:{meeting}"),
    ("POST", "/api/v2/meetings/{meeting}/participants", {"identity_id": "{b}"},
     "meeting:{meeting}"),
    ("POST", "/api/v2/meetings", {"title": "b's", "thread_id": "{thread}"}, "thread:{thread}"),
    ("GET", "/api/v2/governance/rules?identity={a}", None, "rule:list:{a}"),
    ("GET", "/api/v2/governance/rules/{rule}", None, "rule:{rule}"),
    ("PUT", "/api/v2/governance/rules/{rule}", {"effect": "allow"}, "rule:{rule}"),
    ("DELETE", "/api/v2/governance/rules/{rule}", None, "rule:{rule}"),
    ("POST", "/api/v2/nova/requests", {"prompt": "summarise", "thread_id": "{thread}"},
     "thread:{thread}"),
    ("POST", "/api/v2/nova/requests", {"prompt": "summarise", "dataspace_ids": ["{dataspace}"]},
     "dataspace:{dataspace}"),
    ("POST", "/api/v2/nova/requests", {"prompt": "summarise", "meeting_id": "{meeting}"},
     "meeting:{meeting}"),
    ("GET", "/api/v2/nova/requests/{request}", None, "request:{request}"),
    ("GET", "/api/v2/nova/monitoring/pipelines/{request}", None, "request:{request}"),
    ("GET", "/api/v2/llm/monitoring/budgets/{budget}", None, "budget:{budget}"),
    ("PUT", "/api/v2/llm/monitoring/budgets/{budget}",
     {"name": "from B", "soft_usd": 0, "hard_usd": 0}, "budget:{budget}"),
    ("DELETE", "/api/v2/llm/monitoring/budgets/{budget}", None, "budget:{budget}"),
    ("GET", "/api/v2/llm/monitoring/costs?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/nova/monitoring/dashboard?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/auth/keys?identity={a}", None, "api_key:list:{a}"),
    ("POST", "/api/v2/auth/keys", {"roles": ["member"], "identity_id": "{a}"}, "api_key:new"),
    ("DELETE", "/api/v2/auth/keys/{key}", None, "api_key:{key}"),
    ("POST", "/api/v2/auth/identities/{a}/token", None, "identity:{a}"),
    ("GET", "/api/v2/users/alice-{tag}", None, "user:alice-{tag}"),
    ("GET", "/api/v2/nova/monitoring/pipelines/{request}/timeline", None, "request:{request}"),
    ("GET", "/api/v2/nova/monitoring/pipelines?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/nova/monitoring/stats/lanes?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/nova/monitoring/costs/by-identity?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/llm/monitoring/costs/by-identity?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/llm/monitoring/dashboard?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/llm/monitoring/costs/summary?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/llm/monitoring/costs/by-provider?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/llm/monitoring/costs/by-model?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/llm/monitoring/fallback/stats?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/llm/monitoring/alerts?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/nova/monitoring/stats?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/nova/monitoring/stats/task-types?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/nova/monitoring/stats/actions?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/nova/monitoring/costs?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/nova/monitoring/costs/by-sphere?identity={a}", None, "monitoring:{a}"),
    ("GET", "/api/v2/nova/monitoring/costs/by-task-type?identity={a}", None, "monitoring:{a}"),
    ("POST", "/api/v2/llm/monitoring/alerts/acknowledge", {"event_id": "{alert}"},
     "alert:{alert}"),
    ("POST", "/api/v2/nova/monitoring/maintenance/retention?identity={a}",
     {"older_than_days": 1}, "monitoring:{a}"),
]


def fill(value: Any, w: World) -> Any:
    names = {"a": w.a, "b": w.b, "thread": w.thread, "dataspace": w.dataspace,
             "meeting": w.meeting, "rule": w.rule, "budget": w.budget, "request": w.request,
             "key": w.key, "tag": w.tag, "alert": w.alert}
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [fill(v, w) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, w) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("method", "path", "body", "subject"), MATRIX,
                         ids=[f"{m} {p.split('?')[0]}{'?list' if '?' in p else ''}"
                              f"{'' if b is None else ' ' + '+'.join(sorted(b))}"
                              for m, p, b, _ in MATRIX])
async def test_cross_identity_access_is_refused_recorded_and_harmless(
    module_gateway: Any, method: str, path: str, body: dict[str, Any] | None, subject: str
) -> None:
    gw = module_gateway
    w = await make_world(gw)
    before = await snapshot(gw, w)

    r = await gw.http.request(method, fill(path, w), headers=w.b_headers, json=fill(body, w))

    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    problem = r.json()
    assert problem["status"] == 403
    assert problem["type"].endswith("identity-boundary")
    text = r.text
    for secret in (*w.secrets, w.a):
        assert secret not in text, f"403 body leaks {secret!r}: {text}"
    assert await snapshot(gw, w) == before
    for own in ("/api/v2/threads", "/api/v2/dataspaces", "/api/v2/meetings"):
        assert (await gw.http.get(own, headers=w.b_headers)).json() == [], own  # nor for B
    facts = await boundary_facts(gw, w.b)
    assert [f.alert.subject for f in facts if f.alert] == [fill(subject, w)]


async def test_own_resources_work_and_lists_hold_only_own(module_gateway: Any) -> None:
    gw = module_gateway
    w = await make_world(gw)
    http = gw.http
    r = await http.get(f"/api/v2/threads/{w.thread}", headers=w.a_headers)
    body = r.json()
    assert body["title"] == w.secrets[0]
    assert [m["text"] for m in body["messages"]] == [w.secrets[1]]
    r = await http.get(f"/api/v2/dataspaces/{w.dataspace}", headers=w.a_headers)
    assert [i["text"] for i in r.json()["items"]] == [w.secrets[3]]
    r = await http.get(f"/api/v2/meetings/{w.meeting}", headers=w.a_headers)
    assert [(e["kind"], e["text"]) for e in r.json()["entries"]] == [
        ("agenda", w.secrets[10]), ("note", w.secrets[11]), ("decision", w.secrets[12])]
    for path in ("/api/v2/threads", "/api/v2/dataspaces", "/api/v2/meetings",
                 "/api/v2/governance/rules"):
        r = await http.get(path, headers=w.b_headers)
        assert (r.status_code, r.json()) == (200, []), path
    r = await http.get("/api/v2/identities", headers=w.b_headers)
    assert [i["id"] for i in r.json()] == [w.b]
    r = await http.post("/api/v2/nova/requests", headers={**w.a_headers, **RESPOND_ASYNC},
                        json={"prompt": "summarise", "thread_id": w.thread,
                              "dataspace_ids": [w.dataspace], "meeting_id": w.meeting})
    assert r.status_code == 202, r.text
    assert await boundary_facts(gw, w.a) == []


async def test_unknown_ids_are_404_without_a_fact(module_gateway: Any) -> None:
    gw = module_gateway
    w = await make_world(gw)
    for method, path, body in (
        ("GET", "/api/v2/threads/nope", None),
        ("POST", "/api/v2/threads/nope/messages", {"text": "x"}),
        ("GET", "/api/v2/dataspaces/nope", None),
        ("PATCH", "/api/v2/threads/nope", {"title": "x"}),
        ("DELETE", "/api/v2/threads/nope", None),
        ("PATCH", "/api/v2/dataspaces/nope", {"name": "x"}),
        ("DELETE", "/api/v2/dataspaces/nope", None),
        ("GET", "/api/v2/meetings/nope", None),
        ("PATCH", "/api/v2/meetings/nope", {"title": "x"}),
        ("DELETE", "/api/v2/meetings/nope", None),
        ("POST", "/api/v2/meetings/nope/notes", {"text": "x"}),
        ("POST", "/api/v2/meetings/nope/participants", {"identity_id": "x"}),
        ("POST", "/api/v2/meetings", {"title": "x", "thread_id": "nope"}),
        ("GET", "/api/v2/governance/rules/nope", None),
        ("DELETE", "/api/v2/governance/rules/nope", None),
        ("GET", "/api/v2/identities/nope", None),
        ("POST", "/api/v2/nova/requests", {"prompt": "x", "thread_id": "nope"}),
        ("POST", "/api/v2/nova/requests", {"prompt": "x", "meeting_id": "nope"}),
        ("DELETE", "/api/v2/auth/keys/nope", None),
        ("POST", "/api/v2/auth/identities/nope/token", None),
        ("GET", "/api/v2/users/nope", None),
        ("GET", "/api/v2/spheres/nope", None),
    ):
        r = await gw.http.request(method, path, headers=w.b_headers, json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert await boundary_facts(gw, w.b) == []
    assert (await gw.http.get("/api/v2/meetings", headers=w.b_headers)).json() == []


async def test_a_request_naming_own_and_foreign_resources_is_refused(module_gateway: Any) -> None:
    gw = module_gateway
    w = await make_world(gw)
    r = await gw.http.post("/api/v2/threads", headers=w.b_headers, json={"title": "b's"})
    own = r.json()["id"]
    r = await gw.http.post("/api/v2/nova/requests", headers=w.b_headers,
                           json={"prompt": "x", "thread_id": own,
                                 "dataspace_ids": [w.dataspace]})
    assert r.status_code == 403
    assert [f.alert.subject for f in await boundary_facts(gw, w.b) if f.alert] == [
        f"dataspace:{w.dataspace}"]


async def test_identities_of_one_user_see_each_other_but_not_their_data(
    module_gateway: Any,
) -> None:
    gw = module_gateway
    w = await make_world(gw)
    sibling = f"a2-{w.tag}"
    r = await gw.http.post("/api/v2/identities", headers=await admin_headers(gw), json={
        "id": sibling, "user_id": f"alice-{w.tag}", "display_name": "work",
        "sphere_id": "business"})
    assert r.status_code == 201, r.text
    sh = gw.auth(sibling)
    r = await gw.http.get("/api/v2/identities", headers=sh)
    assert sorted(i["id"] for i in r.json()) == sorted([w.a, sibling])
    r = await gw.http.get(f"/api/v2/identities/{w.a}", headers=sh)
    assert r.status_code == 200
    assert r.json()["sphere_id"] == "personal"
    r = await gw.http.get(f"/api/v2/threads/{w.thread}", headers=sh)
    assert r.status_code == 403  # spheres do not share data
    r = await gw.http.get("/api/v2/auth/me", headers=sh)
    assert r.json()["sphere"] == "business"


async def test_identity_creation_is_admin_only_and_ids_are_unique(module_gateway: Any) -> None:
    gw = module_gateway
    w = await make_world(gw)
    new = {"id": f"x-{w.tag}", "user_id": f"bob-{w.tag}", "display_name": "x"}
    r = await gw.http.post("/api/v2/identities", headers=w.b_headers, json=new)
    assert r.status_code == 403
    r = await gw.http.post("/api/v2/identities", headers=await admin_headers(gw),
                           json={**new, "id": w.a})
    assert r.status_code == 409
    r = await gw.http.get(f"/api/v2/identities/{w.a}", headers=w.a_headers)
    assert r.json()["user_id"] == f"alice-{w.tag}"


async def test_rule_validation_and_crud(module_gateway: Any) -> None:
    gw = module_gateway
    w = await make_world(gw)
    http, h = gw.http, gw.auth(w.a, "approver")
    for bad in ({"effect": "deny", "match": {"text_patterns": ["(unclosed"]}},
                {"effect": "deny", "match": {"text_patterns": ["(?=a)b"]}},
                {"effect": "deny", "match": {"actions": ["LAUNCH"]}},
                {"effect": "maybe"},
                {"effect": "deny", "identity_id": w.b}):
        r = await http.post("/api/v2/governance/rules", headers=h, json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    path = f"/api/v2/governance/rules/{w.rule}"
    r = await http.put(path, headers=h, json={"effect": "require_approval", "priority": 7,
                                              "match": {"actions": ["SEND", "PAYMENT"]}})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert r.json()["match"]["actions"] == ["PAYMENT", "SEND"]
    r = await http.put(path, headers=h, json={"effect": "deny", "match": {"roles": ["boss"]}})
    assert r.status_code == 422
    store = gw.services.entities
    assert [(r.rule_id, r.effect) for r in store.rules_for(w.a)] == [
        (w.rule, "require_approval")]
    assert (await http.delete(path, headers=h)).status_code == 204
    assert (await http.get(path, headers=h)).status_code == 404
    assert store.rules_for(w.a) == []


async def test_only_approvers_and_admins_change_rules(module_gateway: Any) -> None:
    """A require_approval rule is what holds a request: a member must not be able to remove
    it (or write rules at all), only read their identity's rules."""
    gw = module_gateway
    w = await make_world(gw)
    http, member = gw.http, w.a_headers
    store = gw.services.entities
    before = [(r.rule_id, r.effect, r.priority) for r in store.rules_for(w.a)]
    path = f"/api/v2/governance/rules/{w.rule}"
    for method, url, body in (
        ("POST", "/api/v2/governance/rules", {"effect": "allow", "priority": 1000}),
        ("PUT", path, {"effect": "allow"}),
        ("DELETE", path, None),
    ):
        r = await http.request(method, url, headers=member, json=body)
        assert r.status_code == 403, (method, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert (await http.get(path, headers=member)).status_code == 200
    assert (await http.get("/api/v2/governance/rules", headers=member)).status_code == 200
    assert [(r.rule_id, r.effect, r.priority) for r in store.rules_for(w.a)] == before
    assert await boundary_facts(gw, w.a) == []  # a role refusal is not a boundary crossing

    approver = gw.auth(w.a, "approver")
    r = await http.post("/api/v2/governance/rules", headers=approver,
                        json={"effect": "require_approval", "match": {"actions": ["SEND"]}})
    assert r.status_code == 201, r.text
    created = r.json()["rule_id"]
    r = await http.put(path, headers=approver, json={"effect": "allow"})
    assert (r.status_code, r.json()["effect"]) == (200, "allow")
    assert (await http.delete(path, headers=approver)).status_code == 204
    admin = gw.auth(w.a, "admin")
    assert (await http.delete(f"/api/v2/governance/rules/{created}",
                              headers=admin)).status_code == 204
    assert store.rules_for(w.a) == []


# (noun, path, the field a PATCH changes, a children's path segment and a child's body, the
# detail's list of children, the request field naming one)
OWNED = [
    ("thread", "/api/v2/threads", "title", "messages", {"text": "hello"}, "messages",
     "thread_id"),
    ("dataspace", "/api/v2/dataspaces", "name", "items", {"title": "t", "text": "doc"}, "items",
     "dataspace_ids"),
    ("meeting", "/api/v2/meetings", "title", "notes", {"text": "minutes"}, "entries",
     "meeting_id"),
]


@pytest.mark.parametrize(("noun", "base", "field", "children", "child", "listed", "ref_field"),
                         OWNED, ids=[o[0] for o in OWNED])
async def test_an_owner_updates_then_deletes_its_own_as_an_audited_tombstone(
    module_gateway: Any, noun: str, base: str, field: str, children: str,
    child: dict[str, Any], listed: str, ref_field: str,
) -> None:
    gw = module_gateway
    w = await make_world(gw)
    http, own = gw.http, w.a_headers
    world = await snapshot(gw, w)
    r = await http.post(base, headers=own, json={field: "before"})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    r = await http.post(f"{base}/{rid}/{children}", headers=own, json=child)
    assert r.status_code == 201, r.text

    # Bad input and a role that may not write: problem+json, nothing changed, no fact.
    bad: list[dict[str, Any]] = [{}, {field: None}, {"owner": w.b}, {field: 5},
                                 {field: "x" * 201}]
    for body in bad:
        r = await http.patch(f"{base}/{rid}", headers=own, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    r = await http.patch(f"{base}/{rid}", headers={**own, "content-type": "application/json"},
                         content=b'{"title": ')
    assert r.status_code == 422, r.text  # a body that is not JSON
    reader = gw.auth(w.a, "analyst")
    writes: list[tuple[str, dict[str, Any] | None]] = [("PATCH", {field: "analyst"}),
                                                        ("DELETE", None)]
    for method, payload in writes:
        r = await http.request(method, f"{base}/{rid}", headers=reader, json=payload)
        assert r.status_code == 403, (method, r.text)
        assert "roles" in r.json()["detail"]
    assert (await http.get(f"{base}/{rid}", headers=own)).json()[field] == "before"

    # The owner's change: the answer and every read show it; the same change again is a no-op.
    r = await http.patch(f"{base}/{rid}", headers=own, json={field: "after"})
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()[field], r.json()["owner"]) == (rid, "after", w.a)
    r = await http.patch(f"{base}/{rid}", headers=own, json={field: "after"})
    assert r.status_code == 200, r.text
    detail = (await http.get(f"{base}/{rid}", headers=own)).json()
    assert (detail[field], len(detail[listed])) == ("after", 1)
    assert [x[field] for x in (await http.get(base, headers=own)).json() if x["id"] == rid] == [
        "after"]

    # The delete: 204, then the id is gone from every route, its children with it.
    r = await http.delete(f"{base}/{rid}", headers=own)
    assert r.status_code == 204, r.text
    assert r.content == b""
    gone: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"{base}/{rid}", None), ("PATCH", f"{base}/{rid}", {field: "again"}),
        ("DELETE", f"{base}/{rid}", None), ("POST", f"{base}/{rid}/{children}", child)]
    for method, path, payload in gone:
        r = await http.request(method, path, headers=own, json=payload)
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert rid not in [x["id"] for x in (await http.get(base, headers=own)).json()]
    ref = {ref_field: [rid] if ref_field == "dataspace_ids" else rid}
    r = await http.post("/api/v2/nova/requests", headers={**own, **RESPOND_ASYNC},
                        json={"prompt": "summarise", **ref})
    assert r.status_code == 404, r.text
    assert await snapshot(gw, w) == world  # as before it was created: nothing else changed

    # Event-sourced: signed records of every version, the last one a tombstone keeping the
    # last state; audited: one fact per change made (the no-op made none), content-free.
    records = [e for e in await read_records(gw.settings, "entities", EntityEvent)
               if (e.entity_type, e.entity_id) == (noun, rid)]
    assert [(e.version, e.deleted) for e in records] == [(1, False), (2, False), (3, True)]
    assert all(e.signature for e in records)
    assert json.loads(records[-1].body)[field] == "after"
    facts = [f for f in await read_records(gw.settings, "facts", AuditFact)
             if f.kind == "RESOURCE_CHANGE" and f.identity_id == w.a
             and json.loads(f.detail)["resource_kind"] != "api_key"]  # the world's key
    assert [(json.loads(f.detail)["operation"], f.actor) for f in facts] == [
        ("update", f"user-{w.a}"), ("delete", f"user-{w.a}")]
    assert json.loads(facts[0].detail)["fields"] == [field]
    assert json.loads(facts[1].detail)[listed] == 1
    assert all("after" not in f.detail and "before" not in f.detail for f in facts)
    assert await boundary_facts(gw, w.a) == []  # acting on its own is no crossing
