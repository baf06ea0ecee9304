"""API key → bearer token on the real broker, and the tokens a protected route must refuse.

Keys are created the way an operator creates them (``nova keys create``): in another process,
so the gateway only learns about the key from the entities topic. One gateway serves the
module; each test makes its own identity and key.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from nova.auth.tokens import issue_token
from nova.cli.keys import create_key

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def claims(gw: Any, identity: str, **overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    base = {"iss": gw.settings.jwt_issuer, "aud": gw.settings.jwt_audience, "sub": "u",
            "identity": identity, "roles": ["member"], "iat": now, "nbf": now,
            "exp": now + 600}
    return {**base, **overrides}


def assert_unauthorized(r: Any) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["status"] == 401
    assert r.headers["www-authenticate"].lower().startswith("bearer")


async def test_key_from_the_cli_becomes_a_working_token(module_gateway: Any) -> None:
    gw = module_gateway
    identity = unique("cli")
    env = {**os.environ, **gw.settings.to_env()}
    done = subprocess.run(
        [sys.executable, "-m", "nova", "keys", "create", "--identity", identity,
         "--role", "member", "--role", "approver", "--sphere", "business", "--user", "carol"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    api_key = done.stdout.strip()
    assert api_key.startswith("nova_")
    assert "\n" not in api_key
    assert api_key not in done.stderr

    r = await gw.http.post("/api/v2/auth/token", json={"api_key": api_key})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == gw.settings.jwt_ttl_s
    headers = {"Authorization": f"Bearer {body['access_token']}"}

    me = (await gw.http.get("/api/v2/auth/me", headers=headers)).json()
    assert me["identity"] == identity
    assert me["sub"] == "carol"
    assert me["roles"] == ["approver", "member"]
    assert me["sphere"] == "business"
    r = await gw.http.post("/api/v2/threads", headers=headers, json={"title": "hi"})
    assert r.status_code == 201
    assert r.json()["owner"] == identity


async def test_wrong_unknown_and_malformed_keys_are_the_same_401(module_gateway: Any) -> None:
    gw = module_gateway
    api_key, created = await create_key(gw.settings, unique("k"), ["member"])
    assert created
    key_id = api_key.split("_")[1]
    wrong_secret = api_key[:-4] + ("AAAA" if not api_key.endswith("AAAA") else "BBBB")
    unknown_id = f"nova_{'0' * 16}_{api_key.split('_', 2)[2]}"
    details = set()
    for presented in (wrong_secret, unknown_id, "nova_notakey", "x" * 200, f"nova_{key_id}_"):
        r = await gw.http.post("/api/v2/auth/token", json={"api_key": presented})
        assert r.status_code == 401, (presented, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        details.add(r.json()["detail"])
    assert details == {"invalid api key"}
    r = await gw.http.post("/api/v2/auth/token", json={})
    assert r.status_code == 422
    r = await gw.http.post("/api/v2/auth/token", json={"api_key": api_key})
    assert r.status_code == 200


async def test_a_second_key_for_the_same_identity_keeps_it(module_gateway: Any) -> None:
    gw = module_gateway
    identity = unique("k2")
    await create_key(gw.settings, identity, ["member"], sphere="business")
    second, created = await create_key(gw.settings, identity, ["analyst"], sphere="personal")
    assert not created
    r = await gw.http.post("/api/v2/auth/token", json={"api_key": second})
    token = r.json()["access_token"]
    me = (await gw.http.get("/api/v2/auth/me",
                            headers={"Authorization": f"Bearer {token}"})).json()
    assert (me["roles"], me["sphere"]) == (["analyst"], "business")


@pytest.mark.parametrize("kind", ["alg-none", "expired", "wrong-secret", "wrong-audience",
                                  "garbage", "no-token", "basic-scheme", "invented-role"])
async def test_protected_routes_refuse_bad_tokens(module_gateway: Any, kind: str) -> None:
    gw = module_gateway
    identity = unique("t")
    secret = gw.settings.jwt_secret.get_secret_value()
    token: str | None
    if kind == "alg-none":
        token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims(gw, identity))}."
    elif kind == "expired":
        token = issue_token(gw.settings, "u", identity, ["member"],
                            datetime.now(UTC) - timedelta(seconds=gw.settings.jwt_ttl_s + 5))
    elif kind == "wrong-secret":
        token = jwt.encode(claims(gw, identity), "another-secret-0123456789abcdef0123456789",
                           algorithm="HS256")
    elif kind == "wrong-audience":
        token = jwt.encode(claims(gw, identity, aud="someone-else"), secret, algorithm="HS256")
    elif kind == "invented-role":
        token = jwt.encode(claims(gw, identity, roles=["root"]), secret, algorithm="HS256")
    elif kind == "garbage":
        token = "not.a.token"
    else:
        token = None
    if kind == "basic-scheme":
        headers = {"Authorization": "Basic dXNlcjpwYXNz"}
    elif token is None:
        headers = {}
    else:
        headers = {"Authorization": f"Bearer {token}"}
    for method, path, body in (("GET", "/api/v2/auth/me", None),
                               ("GET", "/api/v2/threads", None),
                               ("POST", "/api/v2/threads", {"title": "x"}),
                               ("POST", "/api/v2/governance/rules", {"effect": "deny"}),
                               ("GET", "/api/v2/identities", None)):
        r = await gw.http.request(method, path, headers=headers, json=body)
        assert_unauthorized(r)
    good = {"Authorization": f"Bearer {gw.token(identity)}"}
    r = await gw.http.get("/api/v2/threads", headers=good)
    assert r.status_code == 200
    assert r.json() == []
