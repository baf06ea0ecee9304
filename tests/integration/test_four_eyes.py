"""Four eyes on the broker: the submitter never decides; a rule may ask for two approvers.

Every person here acts for identity-alice except mallory (another identity, with every role):
alice submits, bob and carol approve. Tokens differ by subject (the person), not by identity.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from nova.records import AuditRecord
from tests.integration.conftest import Gateway, eventually
from tests.integration.pipeline_checks import read_records

pytestmark = pytest.mark.integration

ALICE = "identity-alice"
SUBMITTER = "user-alice"
BOB = "user-bob"
CAROL = "user-carol"
MALLORY = "identity-mallory"


def as_(gw: Gateway, sub: str, *roles: str, identity: str = ALICE) -> dict[str, str]:
    return gw.auth(identity, *(roles or ("member",)), sub=sub)


async def hold(gw: Gateway, prompt: str) -> dict[str, Any]:
    r = await gw.http.post("/api/v2/nova/requests",
                           headers=as_(gw, SUBMITTER, "member", "approver"),
                           json={"prompt": prompt, "wait_ms": 60_000})
    assert r.status_code == 423, r.text
    held = dict(r.json())

    async def in_the_book() -> bool:  # the gateway's checkpoint book tails another topic
        seen = await gw.http.get(f"/api/v2/governance/checkpoints/{held['checkpoint_id']}",
                                 headers=as_(gw, CAROL, "approver"))
        return seen.status_code == 200

    await eventually(in_the_book, 30, 0.1, message="the checkpoint in the gateway's book")
    return held


async def decide(gw: Gateway, held: dict[str, Any], headers: dict[str, str],
                 verb: str = "approve") -> Any:
    return await gw.http.post(
        f"/api/v2/governance/checkpoints/{held['checkpoint_id']}/{verb}", headers=headers,
        json={"reason": f"{verb} by test"})


async def status(gw: Gateway, held: dict[str, Any]) -> str:
    r = await gw.http.get(f"/api/v2/nova/requests/{held['request_id']}",
                          headers=as_(gw, SUBMITTER))
    return str(r.json()["status"])


async def ends(gw: Gateway, held: dict[str, Any], final: str) -> None:
    async def done() -> bool:
        return await status(gw, held) == final

    await eventually(done, 60, message=f"{held['request_id']} {final}")


async def audited(settings: Any, kind: str, n: int) -> list[AuditRecord]:
    async def found() -> list[AuditRecord] | None:
        records = [r for r in await read_records(settings, "audit", AuditRecord)
                   if r.kind == kind]
        return records if len(records) >= n else None

    result: list[AuditRecord] = await eventually(found, 60, message=f"{n} {kind} audits")
    return result


async def test_the_submitter_never_decides_their_own_checkpoint_even_as_approver(
    gateway: Gateway, worker_factory: Any, fake_llm: Any, settings: Any,
) -> None:
    worker_factory()
    held = await hold(gateway, "Pay invoice INV-3 of 250 EUR to ACME")
    own = as_(gateway, SUBMITTER, "member", "approver", "admin")
    for verb in ("approve", "reject"):
        r = await decide(gateway, held, own, verb)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "ACME" not in r.text
    denials = await audited(settings, "CHECKPOINT_DENIED", 2)
    assert {json.loads(d.detail)["why"] for d in denials} == {"submitter"}
    assert {d.actor for d in denials} == {SUBMITTER}
    seen = await gateway.http.get(f"/api/v2/governance/checkpoints/{held['checkpoint_id']}",
                                  headers=own)
    assert seen.status_code == 200, "the submitter still sees their own checkpoint"
    assert seen.json()["status"] == "pending"
    assert await status(gateway, held) == "held"
    assert fake_llm.state.calls_for(held["request_id"]) == []

    r = await decide(gateway, held, as_(gateway, CAROL, "approver"))
    assert r.status_code == 200, r.text
    assert r.json()["decided_by"] == CAROL
    await ends(gateway, held, "completed")
    assert len(fake_llm.state.calls_for(held["request_id"])) == 1


async def test_two_distinct_approvers_above_an_amount(
    gateway: Gateway, worker_factory: Any, fake_llm: Any, settings: Any,
) -> None:
    worker_factory()
    rule = await gateway.http.post("/api/v2/governance/rules",
                                   headers=as_(gateway, CAROL, "approver"), json={
        "effect": "require_approval", "approvals_required": 2,
        "match": {"actions": ["PAYMENT", "TRANSFER"], "amount_above": 1000}})
    assert rule.status_code == 201, rule.text
    assert rule.json()["approvals_required"] == 2
    assert rule.json()["match"]["amount_above"] == 1000

    big = await hold(gateway, "Pay invoice INV-2041 of 1,200 EUR to ACME Corp")
    first = await decide(gateway, big, as_(gateway, BOB, "approver"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["status"], body["approved_by"], body["approvals_missing"]) == (
        "pending", [BOB], 1)
    again = await decide(gateway, big, as_(gateway, BOB, "approver"))
    assert again.status_code == 200
    assert again.json()["approved_by"] == [BOB], "the same approver twice counts once"
    listed = await gateway.http.get("/api/v2/governance/checkpoints?status=pending",
                                    headers=as_(gateway, CAROL, "approver"))
    [shown] = [c for c in listed.json()["checkpoints"]
               if c["checkpoint_id"] == big["checkpoint_id"]]
    assert (shown["approvals_required"], shown["approved_by"]) == (2, [BOB])
    assert await status(gateway, big) == "held"
    assert fake_llm.state.calls_for(big["request_id"]) == []

    async def first_approval_audited() -> list[AuditRecord]:
        return [r for r in await read_records(settings, "audit", AuditRecord)
                if r.request_id == big["request_id"] and r.audit_id.endswith(f"approval:{BOB}")]

    [partial] = await eventually(first_approval_audited, 60, message="lane E audits approval 1")
    assert json.loads(partial.detail)["approvals"] == [BOB]

    second = await decide(gateway, big, as_(gateway, CAROL, "approver"))
    assert second.status_code == 200, second.text
    assert (second.json()["status"], second.json()["approved_by"]) == ("approved", [BOB, CAROL])
    await ends(gateway, big, "completed")
    assert len(fake_llm.state.calls_for(big["request_id"])) == 1

    small = await hold(gateway, "Pay invoice INV-2042 of 300 EUR to ACME Corp")
    one = await decide(gateway, small, as_(gateway, BOB, "approver"))
    assert one.json()["status"] == "approved", "below the amount, one approver suffices"
    await ends(gateway, small, "completed")


async def test_another_identity_cannot_approve_read_or_loosen_a_four_eyes_checkpoint(
    gateway: Gateway, worker_factory: Any, fake_llm: Any,
) -> None:
    worker_factory()
    rule = await gateway.http.post("/api/v2/governance/rules",
                                   headers=as_(gateway, CAROL, "approver"), json={
        "effect": "require_approval", "approvals_required": 2,
        "match": {"actions": ["PAYMENT"], "amount_above": 100}})
    rule_id = rule.json()["rule_id"]
    held = await hold(gateway, "Pay invoice INV-77 of 5,000 EUR to ACME Corp")
    assert (await decide(gateway, held, as_(gateway, BOB, "approver"))).status_code == 200

    mallory = as_(gateway, "user-mallory", "member", "approver", "admin", identity=MALLORY)
    url = f"/api/v2/governance/checkpoints/{held['checkpoint_id']}"
    for verb in ("approve", "reject"):
        r = await decide(gateway, held, mallory, verb)
        assert r.status_code == 403
        assert held["request_id"] not in r.text
        assert "ACME" not in r.text
        assert BOB not in r.text
    seen = await gateway.http.get(url, headers=mallory)
    assert seen.status_code == 403
    assert BOB not in seen.text
    listed = await gateway.http.get("/api/v2/governance/checkpoints", headers=mallory)
    assert listed.json()["checkpoints"] == []
    for method, body in (("GET", None), ("PUT", {"effect": "allow"}), ("DELETE", None)):
        r = await gateway.http.request(method, f"/api/v2/governance/rules/{rule_id}",
                                       headers=mallory, json=body)
        assert r.status_code == 403, (method, r.text)
        assert "amount_above" not in r.text

    still = await gateway.http.get(url, headers=as_(gateway, CAROL, "approver"))
    assert (still.json()["status"], still.json()["approved_by"]) == ("pending", [BOB])
    mine = await gateway.http.get(f"/api/v2/governance/rules/{rule_id}",
                                  headers=as_(gateway, CAROL, "approver"))
    assert mine.json()["approvals_required"] == 2, "the rule was not loosened"
    assert await status(gateway, held) == "held"
    assert fake_llm.state.calls_for(held["request_id"]) == []
