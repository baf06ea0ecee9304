"""Credential guessing is throttled per source address and per key id, on the real broker.

The attack of issue 14 (300 wrong API keys, 150 of them in 0.8 s, never a 429) replayed against
a gateway with the default allowance (20 failures a minute). Each "source" is a loopback
address of its own (127.0.0.0/8 is all this machine), so one test can be several clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from gateway.auth_throttle import AUTH_FAILURES
from nova.auth.tokens import issue_token
from nova.cli.keys import create_key
from nova.records import AuditFact
from tests.integration.conftest import eventually
from tests.integration.pipeline_checks import read_records

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@asynccontextmanager
async def client_from(gw: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose requests leave from ``address`` (a loopback address)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=gw.url, transport=transport, timeout=30) as http:
        yield http


def fresh_source() -> str:
    a, b, c = (secrets.randbelow(250) + 1 for _ in range(3))
    return f"127.{a}.{b}.{c}"


def wrong_key() -> str:
    return f"nova_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


async def auth_facts(gw: Any, resource_id: str) -> list[dict[str, Any]]:
    facts = await read_records(gw.settings, "facts", AuditFact)
    return [json.loads(f.detail) | {"identity_id": f.identity_id, "actor": f.actor}
            for f in facts if f.kind == AUTH_FAILURES
            and json.loads(f.detail)["resource_id"] == resource_id]


def assert_throttled(r: httpx.Response, limit: str) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert (body["status"], body["limit"]) == (429, f"auth:{limit}")


async def test_a_flood_of_wrong_api_keys_gets_429_and_one_audit_fact(module_gateway: Any) -> None:
    gw = module_gateway
    allowance = gw.settings.auth_failures_per_minute
    identity = f"thr-{uuid.uuid4().hex[:8]}"
    good_key, _ = await create_key(gw.settings, identity, ["member"])
    attacker = fresh_source()
    async with client_from(gw, attacker) as http:
        answers = await asyncio.gather(*(
            http.post("/api/v2/auth/token", json={"api_key": wrong_key()}) for _ in range(150)))
        statuses = Counter(r.status_code for r in answers)
        assert set(statuses) == {401, 429}, statuses
        assert statuses[401] <= allowance + 1  # the burst, plus what refilled during the flood
        assert statuses[429] >= 150 - allowance - 1
        assert_throttled(next(r for r in answers if r.status_code == 429),
                         f"api_key:source:{attacker}")
        # Now even a valid key is refused from that source, before it is looked at.
        r = await http.post("/api/v2/auth/token", json={"api_key": good_key})
        assert_throttled(r, f"api_key:source:{attacker}")
    async with client_from(gw, fresh_source()) as http:  # another client is not affected
        r = await http.post("/api/v2/auth/token", json={"api_key": good_key})
        assert r.status_code == 200, r.text

    facts = await eventually(lambda: auth_facts(gw, f"api_key:source:{attacker}"), 30,
                             message="an AUTH_FAILURES fact for the source")
    await asyncio.sleep(1)
    facts = await auth_facts(gw, f"api_key:source:{attacker}")
    assert len(facts) == 1  # one fact for the burst, not one per refused attempt
    assert facts[0]["source"] == attacker
    assert facts[0]["credential"] == "api_key"
    assert facts[0]["actor"] == f"source:{attacker}"


async def test_a_key_id_guessed_at_from_many_sources_is_throttled(module_gateway: Any) -> None:
    gw = module_gateway
    allowance = int(gw.settings.auth_failures_per_minute)
    identity = f"thr-{uuid.uuid4().hex[:8]}"
    good_key, _ = await create_key(gw.settings, identity, ["member"])
    key_id, secret = good_key.split("_")[1], good_key.split("_", 2)[2]
    wrong_secret = f"nova_{key_id}_{secret[:-4]}{'AAAA' if not secret.endswith('AAAA') else 'BBBB'}"
    async with contextlib.AsyncExitStack() as stack:
        # One failure per source, all at once: no source runs out, the key id does.
        clients = [await stack.enter_async_context(client_from(gw, fresh_source()))
                   for _ in range(allowance + 1)]
        answers = await asyncio.gather(*(
            http.post("/api/v2/auth/token", json={"api_key": wrong_secret})
            for http in clients[:allowance]))
        assert [r.status_code for r in answers] == [401] * allowance
        r = await clients[-1].post("/api/v2/auth/token", json={"api_key": good_key})
    assert_throttled(r, f"api_key:key:{key_id}")
    facts = await eventually(lambda: auth_facts(gw, f"api_key:key:{key_id}"), 30,
                             message="an AUTH_FAILURES fact for the key id")
    assert facts[0]["identity_id"] == identity  # the fact is the key owner's to see
    assert facts[0]["key_id"] == key_id


async def test_bearer_guessing_is_throttled_and_expired_tokens_are_not(
    module_gateway: Any,
) -> None:
    gw = module_gateway
    allowance = int(gw.settings.auth_failures_per_minute)
    identity = f"thr-{uuid.uuid4().hex[:8]}"
    now = int(datetime.now(UTC).timestamp())
    forged = jwt.encode({"iss": gw.settings.jwt_issuer, "aud": gw.settings.jwt_audience,
                         "sub": "u", "identity": identity, "roles": ["admin"], "iat": now,
                         "exp": now + 600}, "guessed-secret-0123456789abcdef0123456789",
                        algorithm="HS256")
    good = {"Authorization": f"Bearer {gw.token(identity)}"}

    guesser = fresh_source()
    async with client_from(gw, guesser) as http:
        for _ in range(allowance):
            r = await http.get("/api/v2/threads", headers={"Authorization": f"Bearer {forged}"})
            assert r.status_code == 401, r.text
        r = await http.get("/api/v2/threads", headers={"Authorization": f"Bearer {forged}"})
        assert_throttled(r, f"bearer:source:{guesser}")
        r = await http.get("/api/v2/threads", headers=good)
        assert_throttled(r, f"bearer:source:{guesser}")

    expired = issue_token(gw.settings, "u", identity, ["member"],
                          datetime.now(UTC) - timedelta(seconds=gw.settings.jwt_ttl_s + 5))
    async with client_from(gw, fresh_source()) as http:
        for _ in range(allowance * 2):  # signed with the key: a stale client, not a guesser
            r = await http.get("/api/v2/threads", headers={"Authorization": f"Bearer {expired}"})
            assert r.status_code == 401, r.text
        r = await http.get("/api/v2/threads", headers=good)
        assert r.status_code == 200, r.text
    await eventually(lambda: auth_facts(gw, f"bearer:source:{guesser}"), 30,
                     message="an AUTH_FAILURES fact for the bearer guesser")
