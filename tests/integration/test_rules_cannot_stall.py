"""Rules cannot stall the pipeline (issue 14, item 3), end to end on the real broker.

The attack: an approver of identity X gives X rules with the patterns that made Python's
``re`` backtrack for minutes (``.*.*.*x``, ``(a|a)*b``, ``(a|aa)*b``), then X submits a
100,000-character prompt none of them matches (the worst input for each). Before, another
identity's one-line request waited over 60 s behind it. Now RE2 reads the prompt in linear
time: X's request completes, Y's request completes, and the rules still fire on a prompt they
match. Patterns RE2 cannot match in linear time are refused at creation with a 422 that says
why. (How little work X's rules do, and that Y's request does none of it, is counted in
``tests/unit/domain/test_user_patterns.py``; no timing is asserted here.)
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.conftest import RESPOND_ASYNC, Gateway, eventually

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
ISSUE_PATTERNS = (".*.*.*x", "(a|a)*b", "(a|aa)*b")


async def final_status(gw: Gateway, identity: str, request_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        r = await gw.http.get(f"/api/v2/nova/requests/{request_id}",
                              headers=gw.auth(identity, "member"))
        body: dict[str, Any] = r.json()
        done = r.status_code == 200 and body["status"] not in ("accepted", "in_flight")
        return body if done else None

    result: dict[str, Any] = await eventually(check, 120, message=f"{request_id} to finish")
    return result


async def submit(gw: Gateway, identity: str, prompt: str, **extra: Any) -> Any:
    """Answered 202 at once unless ``extra`` has a ``wait_ms`` (which wins over Prefer); the
    client waits longer than any ``wait_ms`` (the first request also waits for the worker's
    start, which a loaded machine makes longer than the client's default 30 s)."""
    return await gw.http.post("/api/v2/nova/requests",
                              headers={**gw.auth(identity, "member"), **RESPOND_ASYNC},
                              json={"prompt": prompt, **extra}, timeout=90)


async def test_the_issues_patterns_and_a_100k_prompt_stall_nobody(
    gateway: Gateway, worker_factory: Any
) -> None:
    gw = gateway
    x, y = f"identity-x-{uuid.uuid4().hex[:6]}", f"identity-y-{uuid.uuid4().hex[:6]}"
    approver = gw.auth(x, "approver")
    for pattern in ISSUE_PATTERNS:
        r = await gw.http.post("/api/v2/governance/rules", headers=approver,
                               json={"effect": "deny", "match": {"text_patterns": [pattern]}})
        assert r.status_code == 201, r.text
    worker_factory()

    worst = "a" * 100_000  # no x, no b: every pattern must read all of it and fail
    r = await submit(gw, x, worst)
    assert r.status_code == 202, r.text
    x_request = r.json()["request_id"]
    r = await submit(gw, y, "Summarise this thread", wait_ms=60_000)
    assert r.status_code == 200, r.text  # another identity's request completes
    assert r.json()["status"] == "completed"

    x_view = await final_status(gw, x, x_request)
    assert x_view["status"] == "completed", x_view
    assert [f for f in x_view["governance"]["fired_rules"] if not f.startswith("builtin:")] == []

    # The rules still work: a prompt one of them matches is denied, naming that rule.
    r = await submit(gw, x, "a" * 99_999 + "b", wait_ms=60_000)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "denied"
    assert any(not f.startswith("builtin:") for f in r.json()["governance"]["fired_rules"])


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(a)\1", "back-reference"),
        ("(?=pay)p", "lookaround"),
        ("(?<!un)paid", "lookaround"),
        ("x{1001}", "more than 1000 times"),
    ],
)
async def test_patterns_re2_cannot_match_are_refused_with_a_reason(
    module_gateway: Gateway, pattern: str, why: str
) -> None:
    gw = module_gateway
    r = await gw.http.post("/api/v2/governance/rules",
                           headers=gw.auth(f"identity-{uuid.uuid4().hex[:6]}", "approver"),
                           json={"effect": "deny", "match": {"text_patterns": [pattern]}})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert why in r.text


async def test_one_identitys_patterns_have_a_budget(module_gateway: Gateway) -> None:
    gw = module_gateway
    approver = gw.auth(f"identity-{uuid.uuid4().hex[:6]}", "approver")
    created = []
    for letter in "pq":  # 404 instructions each: two fit in the budget of 1000
        r = await gw.http.post("/api/v2/governance/rules", headers=approver,
                               json={"effect": "deny", "match": {"text_patterns": [
                                   f"{letter}{{400}}"]}})
        assert r.status_code == 201, r.text
        created.append(r.json()["rule_id"])
    r = await gw.http.post("/api/v2/governance/rules", headers=approver,
                           json={"effect": "deny", "match": {"text_patterns": ["r{300}"]}})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "at most 1000" in r.json()["detail"]
    # Replacing a rule counts its new patterns instead of its old ones.
    r = await gw.http.put(f"/api/v2/governance/rules/{created[0]}", headers=approver,
                          json={"effect": "deny", "match": {"text_patterns": ["r{300}"]}})
    assert r.status_code == 200, r.text
