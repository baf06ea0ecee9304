"""The agent registry on the real broker: an owner's agent from creation to deletion, public
agents found and rated by other identities, private ones invisible to them, who may write, and
what a body may say.

One gateway serves the module (no worker: the registry is the gateway's); the runs lane F
makes of an agent are in ``test_agent_runs.py``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from nova.records import AuditFact
from tests.integration.conftest import Gateway
from tests.integration.pipeline_checks import read_records
from tests.integration.test_identity_boundary import boundary_facts

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
BASE = "/api/v2/agents"


def identity() -> str:
    return f"ag-{uuid.uuid4().hex[:10]}"


def agent_body(**changes: Any) -> dict[str, Any]:
    return {"name": "Thread summariser", "description": "Reads a thread and sums it up",
            "role": "analyst", "system_prompt": "Be brief.", "tools": ["read_thread"],
            **changes}


async def create(gw: Gateway, owner: str, **changes: Any) -> dict[str, Any]:
    r = await gw.http.post(BASE, headers=gw.auth(owner), json=agent_body(**changes))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_an_owner_defines_changes_and_deletes_an_agent(module_gateway: Gateway) -> None:
    gw, me = module_gateway, identity()
    http, own = gw.http, gw.auth(me)
    agent = await create(gw, me, tools=["send_message", "read_thread", "read_thread"],
                         allowed_hosts=["api.example.com"], max_steps=4, max_cost_usd=0.5)
    assert (agent["owner"], agent["tools"], agent["visibility"]) == (
        me, ["read_thread", "send_message"], "private")
    assert (agent["max_steps"], agent["max_cost_usd"], agent["system_prompt"]) == (
        4, 0.5, "Be brief.")
    assert (agent["rating_count"], agent["rating_average"]) == (0, None)
    aid = agent["id"]
    assert (await http.get(f"{BASE}/{aid}", headers=own)).json() == agent

    r = await http.patch(f"{BASE}/{aid}", headers=own,
                         json={"visibility": "public", "system_prompt": "Be very brief."})
    assert r.status_code == 200, r.text
    assert (r.json()["visibility"], r.json()["system_prompt"], r.json()["name"]) == (
        "public", "Be very brief.", "Thread summariser")
    assert [a["id"] for a in (await http.get(f"{BASE}?mine=true", headers=own)).json()] == [aid]

    assert (await http.delete(f"{BASE}/{aid}", headers=own)).status_code == 204
    for method, path, body in (("GET", f"{BASE}/{aid}", None),
                               ("PATCH", f"{BASE}/{aid}", {"name": "x"}),
                               ("DELETE", f"{BASE}/{aid}", None)):
        r = await http.request(method, path, headers=own, json=body)
        assert r.status_code == 404, (method, path, r.text)
    assert (await http.get(f"{BASE}?mine=true", headers=own)).json() == []

    facts = [json.loads(f.detail) for f in await read_records(gw.settings, "facts", AuditFact)
             if f.kind == "RESOURCE_CHANGE" and f.identity_id == me]
    assert [(f["operation"], f.get("fields")) for f in facts] == [
        ("update", ["system_prompt", "visibility"]), ("delete", None)]
    assert not any("brief" in json.dumps(f) for f in facts)  # names of fields, never content
    assert await boundary_facts(gw, me) == []


async def test_public_agents_are_found_and_rated_once_per_identity(
    module_gateway: Gateway,
) -> None:
    gw, owner, rater, other = module_gateway, identity(), identity(), identity()
    http = gw.http
    tag = uuid.uuid4().hex[:8]
    mailer = await create(gw, owner, name=f"Mailer {tag}", role="orchestrator",
                          description="Sends the weekly digest", tools=["send_message"],
                          visibility="public")
    reader = await create(gw, owner, name=f"Reader {tag}", tools=["read_thread"],
                          description="Summarises threads", visibility="public")
    hidden = await create(gw, owner, name=f"Hidden {tag}", visibility="private")

    # A public agent is seen by others without its owner's prompt and allow list.
    seen = (await http.get(f"{BASE}/{mailer['id']}", headers=gw.auth(rater))).json()
    assert (seen["name"], seen["system_prompt"], seen["allowed_hosts"]) == (
        f"Mailer {tag}", None, None)

    async def names(token: str, query: str = "") -> list[str]:
        r = await http.get(f"{BASE}?q={tag}{query}", headers=gw.auth(token))
        assert r.status_code == 200, r.text
        return [a["name"] for a in r.json()]

    assert sorted(await names(rater)) == [f"Mailer {tag}", f"Reader {tag}"]
    assert sorted(await names(owner)) == [f"Hidden {tag}", f"Mailer {tag}", f"Reader {tag}"]
    assert await names(rater, "&role=orchestrator") == [f"Mailer {tag}"]
    assert await names(rater, "&tool=read_thread") == [f"Reader {tag}"]
    assert await names(rater, "&tool=http_call") == []
    r = await http.get(f"{BASE}?q=WEEKLY%20digest", headers=gw.auth(rater))
    assert f"Mailer {tag}" in [a["name"] for a in r.json()]

    # One rating per identity: rating again replaces it.
    r = await http.post(f"{BASE}/{reader['id']}/ratings", headers=gw.auth(rater),
                        json={"stars": 2})
    assert (r.status_code, r.json()["rating_count"], r.json()["rating_average"]) == (201, 1, 2)
    r = await http.post(f"{BASE}/{reader['id']}/ratings", headers=gw.auth(rater),
                        json={"stars": 5})
    assert (r.status_code, r.json()["rating_count"], r.json()["rating_average"]) == (200, 1, 5)
    r = await http.post(f"{BASE}/{reader['id']}/ratings", headers=gw.auth(other),
                        json={"stars": 4})
    assert (r.status_code, r.json()["rating_count"], r.json()["rating_average"]) == (201, 2, 4.5)
    r = await http.post(f"{BASE}/{mailer['id']}/ratings", headers=gw.auth(other),
                        json={"stars": 1})
    assert r.status_code == 201, r.text
    # The owner does not rate its own agent.
    r = await http.post(f"{BASE}/{reader['id']}/ratings", headers=gw.auth(owner),
                        json={"stars": 5})
    assert r.status_code == 409, r.text

    listed = (await http.get(f"{BASE}?q={tag}", headers=gw.auth(rater))).json()
    assert [(a["name"], a["rating_average"], a["rating_count"]) for a in listed] == [
        (f"Reader {tag}", 4.5, 2), (f"Mailer {tag}", 1.0, 1)]  # best rated first
    assert hidden["id"] not in json.dumps(listed)

    # A deleted agent's ratings go with it.
    assert (await http.delete(f"{BASE}/{reader['id']}", headers=gw.auth(owner))).status_code == (
        204)
    assert await names(rater) == [f"Mailer {tag}"]
    for who in (owner, rater, other):
        assert await boundary_facts(gw, who) == []


async def test_other_identities_cannot_see_private_agents_or_change_any(
    module_gateway: Gateway,
) -> None:
    """The cross-identity matrix: B's token on A's agents is a 403 problem carrying nothing of
    the agent, changing nothing, leaving an IDENTITY_BOUNDARY fact; on A's public agent B may
    read and rate but never change or delete."""
    gw, a, b = module_gateway, identity(), identity()
    http = gw.http
    secret = f"prompt-{uuid.uuid4().hex}"
    private = await create(gw, a, name=f"name-{secret}", system_prompt=secret)
    public = await create(gw, a, name="Open", system_prompt=secret, visibility="public")
    before = [(await http.get(f"{BASE}/{x['id']}", headers=gw.auth(a))).json()
              for x in (private, public)]
    p, q = private["id"], public["id"]
    matrix: list[tuple[str, str, dict[str, Any] | None, str]] = [
        ("GET", f"{BASE}/{p}", None, p),
        ("PATCH", f"{BASE}/{p}", {"name": "from B"}, p),
        ("DELETE", f"{BASE}/{p}", None, p),
        ("POST", f"{BASE}/{p}/ratings", {"stars": 1}, p),
        ("PATCH", f"{BASE}/{q}", {"visibility": "private"}, q),
        ("DELETE", f"{BASE}/{q}", None, q),
        ("POST", "/api/v2/nova/requests", {"prompt": "summarise", "agent_id": p}, p),
    ]
    for method, path, body, _ in matrix:
        for roles in (("member",), ("analyst",)):  # a reader is refused for the boundary too
            r = await http.request(method, path, headers=gw.auth(b, *roles), json=body)
            assert r.status_code == 403, (method, path, roles, r.text)
            assert r.headers["content-type"].startswith(PROBLEM)
            assert r.json()["type"].endswith("identity-boundary"), r.text
            assert secret not in r.text
            assert a not in r.text
    after = [(await http.get(f"{BASE}/{x['id']}", headers=gw.auth(a))).json()
             for x in (private, public)]
    assert after == before
    listed = (await http.get(BASE, headers=gw.auth(b))).json()
    assert p not in json.dumps(listed)
    assert secret not in json.dumps(listed)
    facts = await boundary_facts(gw, b)
    assert sorted(f.alert.subject for f in facts if f.alert) == sorted(
        f"agent:{rid}" for _, _, _, rid in matrix for _ in range(2))


async def test_only_writers_change_agents(module_gateway: Gateway) -> None:
    gw, me, other = module_gateway, identity(), identity()
    http = gw.http
    aid = (await create(gw, me))["id"]
    public = (await create(gw, other, visibility="public"))["id"]
    reader = gw.auth(me, "analyst")
    for method, path, body in (("POST", BASE, agent_body()),
                               ("PATCH", f"{BASE}/{aid}", {"name": "x"}),
                               ("DELETE", f"{BASE}/{aid}", None),
                               ("POST", f"{BASE}/{public}/ratings", {"stars": 3})):
        r = await http.request(method, path, headers=reader, json=body)
        assert r.status_code == 403, (method, path, r.text)
        assert "roles" in r.json()["detail"]
    assert (await http.get(f"{BASE}/{aid}", headers=reader)).json()["name"] == (
        "Thread summariser")
    assert (await http.get(f"{BASE}/{public}", headers=reader)).json()["rating_count"] == 0
    for role in ("approver", "admin"):
        r = await http.patch(f"{BASE}/{aid}", headers=gw.auth(me, role), json={"name": role})
        assert r.status_code == 200, (role, r.text)
    assert await boundary_facts(gw, me) == []


async def test_bad_bodies_are_422_problems_and_change_nothing(module_gateway: Gateway) -> None:
    gw, me = module_gateway, identity()
    http, own = gw.http, gw.auth(me)
    agent = await create(gw, me)
    aid = agent["id"]
    public = (await create(gw, identity(), visibility="public"))["id"]
    bad: list[tuple[str, str, Any]] = [
        ("POST", BASE, {}),
        ("POST", BASE, agent_body(name="")),
        ("POST", BASE, agent_body(role="janitor")),
        ("POST", BASE, agent_body(tools=["rm_rf"])),
        ("POST", BASE, agent_body(owner="someone")),
        ("POST", BASE, agent_body(max_steps=0)),
        ("POST", BASE, agent_body(max_steps=51)),
        ("POST", BASE, agent_body(max_cost_usd=0)),
        ("POST", BASE, agent_body(max_cost_usd="1")),
        ("POST", BASE, agent_body(visibility="friends")),
        ("POST", BASE, agent_body(allowed_hosts=["http://x.example/path"])),
        ("POST", BASE, agent_body(role="nova", provider="openai")),  # nova stays on Claude
        ("POST", BASE, agent_body(provider="nope")),
        ("PATCH", f"{BASE}/{aid}", {}),
        ("PATCH", f"{BASE}/{aid}", {"name": None}),
        ("PATCH", f"{BASE}/{aid}", {"owner": "x"}),
        ("PATCH", f"{BASE}/{aid}", {"role": "nova", "provider": "openai"}),
        ("POST", f"{BASE}/{public}/ratings", {"stars": 0}),
        ("POST", f"{BASE}/{public}/ratings", {"stars": 6}),
        ("POST", f"{BASE}/{public}/ratings", {"stars": "5"}),
        ("POST", f"{BASE}/{public}/ratings", {}),
        ("GET", f"{BASE}?role=janitor", None),
        ("GET", f"{BASE}?tool=rm_rf", None),
    ]
    for method, path, body in bad:
        r = await http.request(method, path, headers=own, json=body)
        assert r.status_code == 422, (method, path, body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert (await http.get(f"{BASE}/{aid}", headers=own)).json() == agent
    assert [a["id"] for a in (await http.get(f"{BASE}?mine=true", headers=own)).json()] == [aid]
    assert (await http.get(f"{BASE}/{public}", headers=own)).json()["rating_count"] == 0
    for method, path, body in (("GET", f"{BASE}/nope", None),
                               ("POST", f"{BASE}/nope/ratings", {"stars": 3}),
                               ("POST", "/api/v2/nova/requests",
                                {"prompt": "x", "agent_id": "nope"})):
        r = await http.request(method, path, headers=own, json=body)
        assert r.status_code == 404, (path, r.text)
    r = await http.post("/api/v2/nova/requests", headers=own,
                        json={"prompt": "x", "agent_id": "a" * 129})
    assert r.status_code == 422, r.text
