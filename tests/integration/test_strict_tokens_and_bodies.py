"""Strict tokens and bodies (issue 14, item 8), over HTTP against the gateway on the broker.

The attacks of the issue: tokens signed with the real secret but carrying absurd claims (an
``exp`` of 1e300, an identity with a NUL, ``iat`` a year ahead, empty roles) gave 500 or were
accepted; they are a clean 401 problem+json now. A body whose ``wait_ms`` is "5000" or
5000.5 is a 422 instead of being coerced.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
YEAR = 365 * 86400


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def signed(gw: Any, claims_json: str) -> str:
    """A HS256 token over exactly this JSON, signed with the gateway's own secret."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(claims_json.encode())
    secret = gw.settings.jwt_secret.get_secret_value().encode()
    mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(mac)}"


def claims(gw: Any, **overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    base = {"iss": gw.settings.jwt_issuer, "aud": gw.settings.jwt_audience,
            "sub": f"user-{uuid.uuid4().hex[:6]}", "identity": f"id-{uuid.uuid4().hex[:6]}",
            "roles": ["member"], "iat": now, "exp": now + 600}
    return {**base, **overrides}


NOW = int(datetime.now(UTC).timestamp())
ATTACKS: dict[str, dict[str, Any]] = {
    "exp 1e300": {"exp": 1e300},
    "exp a 400-digit integer": {"exp": 10**400},
    "exp a string": {"exp": str(NOW + 600)},
    "exp negative": {"exp": -5},
    "identity with a NUL": {"identity": "alice\x00admin"},
    "identity with a newline": {"identity": "alice\nadmin"},
    "identity of 10,000 characters": {"identity": "a" * 10_000},
    "subject with a NUL": {"sub": "bob\x00"},
    "iat a year ahead": {"iat": NOW + YEAR, "exp": NOW + YEAR + 600},
    "lifetime of a century": {"exp": NOW + 100 * YEAR},
    "empty roles": {"roles": []},
    "roles not a list": {"roles": "admin"},
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_signed_tokens_with_absurd_claims_are_a_clean_401(
    module_gateway: Any, attack: str
) -> None:
    gw = module_gateway
    payload = json.dumps(claims(gw, **ATTACKS[attack]))
    token = signed(gw, payload)
    for method, path in (("GET", "/api/v2/auth/me"), ("GET", "/api/v2/threads"),
                         ("POST", "/api/v2/nova/requests")):
        r = await gw.http.request(method, path, headers={"Authorization": f"Bearer {token}"},
                                  json={"prompt": "hi"} if method == "POST" else None)
        assert r.status_code == 401, (attack, path, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
async def test_non_finite_exp_is_a_clean_401(module_gateway: Any, value: str) -> None:
    gw = module_gateway
    fields = json.dumps({k: v for k, v in claims(gw).items() if k != "exp"})[1:-1]
    token = signed(gw, f'{{{fields}, "exp": {value}}}')
    r = await gw.http.get("/api/v2/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text


async def test_a_sane_token_still_works(module_gateway: Any) -> None:
    gw = module_gateway
    now = int(datetime.now(UTC).timestamp())  # not the module's NOW: the suite may be long
    token = signed(gw, json.dumps(claims(gw, iat=now + 30, exp=now + 630)))  # 30 s skew: fine
    r = await gw.http.get("/api/v2/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "hi", "wait_ms": "5000"},
        {"prompt": "hi", "wait_ms": 5000.5},
        {"prompt": "hi", "wait_ms": True},
        {"prompt": "hi", "dataspace_ids": "ds"},
        {"prompt": 5},
    ],
)
async def test_bodies_are_not_coerced(module_gateway: Any, body: dict[str, Any]) -> None:
    gw = module_gateway
    r = await gw.http.post("/api/v2/nova/requests", json=body,
                           headers=gw.auth(f"id-{uuid.uuid4().hex[:6]}", "member"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"]


async def test_nan_in_a_body_is_a_422(module_gateway: Any) -> None:
    gw = module_gateway
    r = await gw.http.post("/api/v2/llm/monitoring/budgets",
                           content=b'{"name": "b", "soft_usd": NaN, "hard_usd": 1}',
                           headers={**gw.auth(f"id-{uuid.uuid4().hex[:6]}", "admin"),
                                    "content-type": "application/json"})
    assert r.status_code == 422, r.text
