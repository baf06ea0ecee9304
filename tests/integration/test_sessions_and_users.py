"""Sessions, API keys over the API, users and spheres, on the real broker with two gateways.

The module's gateway (in this process) and a ``nova gateway`` process share one topic prefix
and nothing else: a session opened at one is refreshed at the other, and one logged out (or
whose API key is revoked) at one is refused by the other, through Kafka alone. One pair serves
the module; each test makes its own identities and keys.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from nova.cli.keys import create_key
from nova.kafka.launcher import free_port
from tests.integration.conftest import REPO, Gateway, eventually

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@dataclass
class OtherGateway:
    """A ``nova gateway`` process: only its HTTP API is shared with the test."""

    http: httpx.AsyncClient


@pytest.fixture(scope="module")
async def other_gateway(module_gateway: Gateway) -> AsyncIterator[OtherGateway]:
    port = free_port()
    env = {**os.environ, **module_gateway.settings.to_env(), "NOVA_GATEWAY_PORT": str(port),
           "NOVA_RUN_SINK": "false", "NOVA_RUN_ALERTS": "false"}
    log = module_gateway.settings.data_dir / "other-gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "nova", "gateway"], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            async def ready() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"nova gateway exited: {log.read_text()}")
                try:
                    return (await http.get("/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, 90, 0.2, message="the second gateway to be ready")
            yield OtherGateway(http)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


async def exchange(gw: Gateway | OtherGateway, api_key: str) -> dict[str, Any]:
    r = await gw.http.post("/api/v2/auth/token", json={"api_key": api_key})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def me_status(gw: Gateway | OtherGateway, access: str) -> int:
    return (await gw.http.get("/api/v2/auth/me", headers=bearer(access))).status_code


async def test_a_session_refreshes_anywhere_and_logout_ends_it_everywhere(
    module_gateway: Gateway, other_gateway: OtherGateway,
) -> None:
    a, b = module_gateway, other_gateway
    api_key, _ = await create_key(a.settings, unique("s"), ["member"], user=unique("u"))
    first = await exchange(a, api_key)
    assert first["refresh_token"].startswith("nova_rt_")
    assert 0 < first["refresh_expires_in"] <= a.settings.refresh_ttl_s
    assert await me_status(b, first["access_token"]) == 200  # opened at A, known at B

    r = await b.http.post("/api/v2/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    r = await a.http.post("/api/v2/auth/token", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 200, r.text  # /token takes a refresh token too, at the other gateway
    third = r.json()
    assert await me_status(a, third["access_token"]) == 200

    r = await a.http.post("/api/v2/auth/logout", headers=bearer(third["access_token"]))
    assert r.status_code == 204, r.text
    assert await me_status(a, third["access_token"]) == 401

    async def refused_at_b() -> bool:
        return await me_status(b, third["access_token"]) == 401

    await eventually(refused_at_b, 30, 0.05, message="B to refuse a token logged out at A")
    r = await b.http.get("/api/v2/threads", headers=bearer(third["access_token"]))
    assert problem(r, 401)["detail"] == "token revoked"
    assert await me_status(b, first["access_token"]) == 401  # every token of the session
    for gw in (b, a):  # its refresh token: refused at once, at both gateways
        r = await gw.http.post("/api/v2/auth/refresh",
                               json={"refresh_token": third["refresh_token"]})
        assert problem(r, 401)["detail"] == "invalid refresh token"
    r = await a.http.post("/api/v2/auth/logout", headers=bearer(third["access_token"]))
    problem(r, 401)
    assert await me_status(a, (await exchange(b, api_key))["access_token"]) == 200  # a new one


async def test_a_spent_refresh_token_presented_again_ends_the_session(
    module_gateway: Gateway, other_gateway: OtherGateway,
) -> None:
    a, b = module_gateway, other_gateway
    api_key, _ = await create_key(a.settings, unique("r"), ["member"])
    first = await exchange(a, api_key)
    r = await a.http.post("/api/v2/auth/refresh", json={"refresh_token": first["refresh_token"]})
    second = r.json()
    r = await b.http.post("/api/v2/auth/refresh", json={"refresh_token": first["refresh_token"]})
    problem(r, 401)  # a thief's replay, or the client's: nobody can tell, the session ends
    r = await a.http.post("/api/v2/auth/refresh", json={"refresh_token": second["refresh_token"]})
    problem(r, 401)
    assert await me_status(b, second["access_token"]) == 401


async def test_bad_credentials_are_401_and_bad_bodies_422(module_gateway: Gateway) -> None:
    gw = module_gateway
    api_key, _ = await create_key(gw.settings, unique("b"), ["member"])
    pair = await exchange(gw, api_key)
    rt = pair["refresh_token"]
    tampered = rt[:-2] + ("AA" if not rt.endswith("AA") else "BB")
    unknown = f"nova_rt_{uuid.uuid4()}_{rt.rsplit('_', 1)[1]}"
    for presented in (tampered, unknown, "nova_rt_nope", api_key):
        r = await gw.http.post("/api/v2/auth/refresh", json={"refresh_token": presented})
        assert problem(r, 401)["detail"] == "invalid refresh token"
    assert await me_status(gw, pair["access_token"]) == 200  # a guess revokes nothing
    for body in ({}, {"api_key": api_key, "refresh_token": rt}, {"api_key": None},
                 {"refresh_token": 5}, {"api_key": api_key, "extra": 1}):
        problem(await gw.http.post("/api/v2/auth/token", json=body), 422)
    problem(await gw.http.post("/api/v2/auth/refresh", json={}), 422)
    # A token whose session claim was changed no longer verifies; one of another session
    # signed with the key (nobody else can) is refused by its session check.
    head, _, sig = pair["access_token"].split(".")
    forged = jwt.decode(pair["access_token"], options={"verify_signature": False})
    forged["sid"] = str(uuid.uuid4())
    resigned = jwt.encode(forged, gw.settings.jwt_secret.get_secret_value(), algorithm="HS256")
    assert problem(await gw.http.get("/api/v2/auth/me", headers=bearer(resigned)),
                   401)["detail"] == "session unknown or ended"
    relabelled = ".".join((head, resigned.split(".")[1], sig))
    problem(await gw.http.get("/api/v2/auth/me", headers=bearer(relabelled)), 401)
    # Logging out a token of no session (``nova token``) is a conflict, not a revocation.
    problem(await gw.http.post("/api/v2/auth/logout", headers=gw.auth(unique("cli"))), 409)


async def test_keys_over_the_api_are_shown_once_and_revoked_everywhere(
    module_gateway: Gateway, other_gateway: OtherGateway,
) -> None:
    a, b = module_gateway, other_gateway
    ident = unique("k")
    admin = a.auth(ident, "admin")
    r = await a.http.post("/api/v2/auth/keys", headers=admin, json={"roles": ["approver"]})
    assert r.status_code == 201, r.text
    created = r.json()
    plaintext, key_id = created["api_key"], created["key_id"]
    assert plaintext.startswith(f"nova_{key_id}_")
    listed = (await a.http.get("/api/v2/auth/keys", headers=admin)).json()
    assert [k["key_id"] for k in listed] == [key_id]
    assert plaintext not in str(listed)
    assert "hash" not in listed[0]
    session = await exchange(b, plaintext)  # written at A, exchanged at B
    assert await me_status(b, session["access_token"]) == 200

    # Roles: members create, list and revoke no key; nobody grants what they may not.
    member = a.auth(ident, "member")
    problem(await a.http.post("/api/v2/auth/keys", headers=member,
                              json={"roles": ["member"]}), 403)
    problem(await a.http.get("/api/v2/auth/keys", headers=member), 403)
    problem(await a.http.delete(f"/api/v2/auth/keys/{key_id}", headers=member), 403)
    problem(await a.http.post("/api/v2/auth/keys", headers=admin,
                              json={"roles": ["operator"]}), 403)
    bad: list[dict[str, Any]] = [{"roles": []}, {"roles": ["root"]}, {"roles": "member"},
                                 {"roles": ["member"], "identity_id": "bad id"},
                                 {"roles": ["member"], "x": 1}]
    for body in bad:
        problem(await a.http.post("/api/v2/auth/keys", headers=admin, json=body), 422)
    assert [k["key_id"] for k in (await a.http.get("/api/v2/auth/keys", headers=admin)).json()
            ] == [key_id]  # none of those made a key

    r = await a.http.delete(f"/api/v2/auth/keys/{key_id}", headers=admin)
    assert r.status_code == 204, r.text
    r = await b.http.post("/api/v2/auth/token", json={"api_key": plaintext})
    assert problem(r, 401)["detail"] == "invalid api key"  # at once, at the other gateway
    r = await b.http.post("/api/v2/auth/refresh",
                          json={"refresh_token": session["refresh_token"]})
    problem(r, 401)

    async def ended_at_b() -> bool:
        return await me_status(b, session["access_token"]) == 401

    await eventually(ended_at_b, 30, 0.05, message="the revoked key's session to end at B")
    problem(await a.http.delete(f"/api/v2/auth/keys/{key_id}", headers=admin), 404)
    assert (await a.http.get("/api/v2/auth/keys", headers=admin)).json() == []


async def test_operators_provision_users_spheres_and_identities_to_switch_between(
    module_gateway: Gateway,
) -> None:
    gw = module_gateway
    http, tag = gw.http, uuid.uuid4().hex[:8]
    ops = gw.auth(f"ops-{tag}", "operator")
    user, personal, work = f"alice {tag}", f"p-{tag}", f"w-{tag}"
    sphere = f"club-{tag}"
    creations = (
        ("/api/v2/users", {"id": user, "display_name": "Alice"}),
        ("/api/v2/spheres", {"id": sphere, "name": "Club", "description": "evenings"}),
        ("/api/v2/identities", {"id": personal, "user_id": user, "display_name": "home",
                                "sphere_id": "personal", "roles": ["member", "approver"]}),
        ("/api/v2/identities", {"id": work, "user_id": user, "display_name": "work",
                                "sphere_id": sphere, "roles": ["member", "admin"]}),
    )
    for role in ("member", "approver", "analyst", "admin"):  # only operators provision
        for path, body in creations:
            problem(await http.post(path, headers=gw.auth(f"x-{tag}", role), json=body), 403)
    assert (await http.get(f"/api/v2/users/{user}", headers=ops)).status_code == 404
    assert (await http.get(f"/api/v2/spheres/{sphere}", headers=ops)).status_code == 404
    for path, body in creations:
        r = await http.post(path, headers=ops, json=body)
        assert r.status_code == 201, r.text
        problem(await http.post(path, headers=ops, json=body), 409)
    for path, body in (("/api/v2/users", {"id": " padded", "display_name": "x"}),
                       ("/api/v2/users", {"id": "nul\u0000", "display_name": "x"}),
                       ("/api/v2/spheres", {"id": "no spaces", "name": "x"}),
                       ("/api/v2/spheres", {"id": f"s-{tag}", "name": ""}),
                       ("/api/v2/identities", {"id": f"i-{tag}", "user_id": user,
                                               "display_name": "x", "roles": ["root"]})):
        problem(await http.post(path, headers=ops, json=body), 422)

    home = gw.auth(personal, "member", "approver", sub=user)
    r = await http.get("/api/v2/auth/identities", headers=home)
    listed = {i["id"]: i for i in r.json()}
    assert set(listed) == {personal, work}
    assert listed[personal]["current"]
    assert (listed[work]["sphere_id"], listed[work]["implicit"]) == (sphere, False)
    r = await http.get(f"/api/v2/users/{user}", headers=home)
    assert (r.json()["display_name"], sorted(r.json()["identities"])) == (
        "Alice", sorted([personal, work]))
    spheres = {s["id"]: s for s in (await http.get("/api/v2/spheres", headers=home)).json()}
    assert spheres[sphere]["name"] == "Club"
    assert spheres["personal"]["implicit"]

    # A switch holds what the target grants and the token holds: never a role more.
    r = await http.post(f"/api/v2/auth/identities/{work}/token", headers=home)
    assert r.status_code == 200, r.text
    switched = r.json()
    me = (await http.get("/api/v2/auth/me", headers=bearer(switched["access_token"]))).json()
    assert (me["identity"], me["sub"], me["roles"], me["sphere"]) == (
        work, user, ["member"], sphere)
    r = await http.post("/api/v2/auth/refresh", json={"refresh_token": switched["refresh_token"]})
    assert r.status_code == 200, r.text
    problem(await http.post(f"/api/v2/auth/identities/{work}/token",
                            headers=gw.auth(personal, "analyst", sub=user)), 403)


async def test_bare_identity_strings_are_implicit_records(module_gateway: Gateway) -> None:
    gw = module_gateway
    ident, someone = unique("bare"), unique("someone")
    headers = gw.auth(ident, "member", sub=someone)
    r = await gw.http.get("/api/v2/auth/identities", headers=headers)
    assert r.json() == [{"id": ident, "user_id": someone, "display_name": ident,
                         "sphere_id": None, "roles": ["member"], "current": True,
                         "implicit": True}]
    r = await gw.http.get(f"/api/v2/users/{someone}", headers=headers)
    assert (r.status_code, r.json()["implicit"], r.json()["identities"]) == (200, True, [])
    problem(await gw.http.post(f"/api/v2/auth/identities/{ident}/token", headers=headers), 404)
    # A CLI key's identity record (no roles then) is a switch target granting member.
    api_key, _ = await create_key(gw.settings, unique("cli"), ["approver"], user=someone)
    pair = await exchange(gw, api_key)
    r = await gw.http.get("/api/v2/auth/identities", headers=bearer(pair["access_token"]))
    assert [(i["implicit"], i["roles"]) for i in r.json()] == [(False, ["member"])]
