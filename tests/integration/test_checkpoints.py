"""Checkpoints: destructive or external actions wait for a person, and resume exactly once."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from tests.integration.conftest import Gateway, eventually, serve_gateway

pytestmark = pytest.mark.integration

ALICE = "identity-alice"
CAROL = "user-carol"  # another person of identity-alice: the approver (the submitter never is)


async def submit_held(gw: Gateway, prompt: str, **extra: Any) -> dict[str, Any]:
    r = await gw.http.post("/api/v2/nova/requests", headers=gw.auth(ALICE, "member", "approver"),
                           json={"prompt": prompt, "wait_ms": 60_000, **extra})
    assert r.status_code == 423, r.text
    body: dict[str, Any] = r.json()
    assert body["checkpoint_id"]
    assert body["reason"]
    return body


async def final_status(gw: Gateway, request_id: str, *statuses: str) -> dict[str, Any]:
    seen: list[Any] = []

    async def check() -> dict[str, Any] | None:
        r = await gw.http.get(f"/api/v2/nova/requests/{request_id}",
                              headers=gw.auth(ALICE, "member"))
        body = r.json()
        seen[:] = [body]
        return body if r.status_code == 200 and body["status"] in statuses else None

    try:
        result: dict[str, Any] = await eventually(check, 60, message=f"{request_id} in {statuses}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen}") from None
    return result


def llm_calls(fake_llm: Any, request_id: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = fake_llm.state.calls_for(request_id)
    return calls


async def test_payment_is_held_then_approved_and_completes_with_one_llm_call(
    gateway: Gateway, worker_factory: Any, fake_llm: Any
) -> None:
    worker_factory()
    held = await submit_held(gateway, "Pay invoice INV-7 of 300 EUR to ACME")
    approver = gateway.auth(ALICE, "member", "approver", sub=CAROL)
    listed = await gateway.http.get("/api/v2/governance/checkpoints?status=pending",
                                    headers=approver)
    assert held["checkpoint_id"] in [c["checkpoint_id"] for c in listed.json()["checkpoints"]]
    assert llm_calls(fake_llm, held["request_id"]) == []

    url = f"/api/v2/governance/checkpoints/{held['checkpoint_id']}"
    first = await gateway.http.post(f"{url}/approve", headers=approver, json={"reason": "ok"})
    assert first.status_code == 200
    assert first.json()["status"] == "approved"
    again = await gateway.http.post(f"{url}/approve", headers=approver)
    assert again.status_code == 200, "approving twice is harmless"
    opposite = await gateway.http.post(f"{url}/reject", headers=approver)
    assert opposite.status_code == 409
    assert opposite.headers["content-type"].startswith("application/problem+json")

    done = await final_status(gateway, held["request_id"], "completed")
    assert done["execution"]["attempts"] == 1
    assert len(llm_calls(fake_llm, held["request_id"])) == 1


async def test_rejected_request_completes_without_any_llm_call(
    gateway: Gateway, worker_factory: Any, fake_llm: Any
) -> None:
    worker_factory()
    held = await submit_held(gateway, "Delete the file draft.docx")
    r = await gateway.http.post(
        f"/api/v2/governance/checkpoints/{held['checkpoint_id']}/reject",
        headers=gateway.auth(ALICE, "approver", sub=CAROL), json={"reason": "keep it"})
    assert r.status_code == 200
    assert r.json()["status"] == "rejected"
    done = await final_status(gateway, held["request_id"], "rejected")
    assert "rejected" in done["error"]
    assert [lane["lane"] for lane in done["lanes"]] == list("ABCDEFG")
    assert llm_calls(fake_llm, held["request_id"]) == []


async def test_unapproved_checkpoint_expires_and_never_runs(
    settings: Any, clickhouse: Any, worker_factory: Any, fake_llm: Any
) -> None:
    short = settings.model_copy(update={"checkpoint_ttl_s": 1})
    worker_factory(s=short)
    async with serve_gateway(short, clickhouse.with_database(short.clickhouse_database)) as gw:
        held = await submit_held(gw, "Send this email to the whole company")
        done = await final_status(gw, held["request_id"], "expired")
        assert done["status"] == "expired"
        late = await gw.http.post(
            f"/api/v2/governance/checkpoints/{held['checkpoint_id']}/approve",
            headers=gw.auth(ALICE, "approver", sub=CAROL))
        assert late.status_code == 409
        assert llm_calls(fake_llm, held["request_id"]) == []


async def test_held_requests_survive_a_killed_worker_and_approval_still_works(
    gateway: Gateway, worker_factory: Any, fake_llm: Any
) -> None:
    first = worker_factory()
    held = [await submit_held(gateway, f"Transfer {n}00 EUR to savings") for n in range(1, 4)]
    first.kill(signal.SIGKILL)
    worker_factory()
    approver = gateway.auth(ALICE, "approver", sub=CAROL)
    listed = await gateway.http.get("/api/v2/governance/checkpoints?status=pending",
                                    headers=approver)
    pending = {c["checkpoint_id"] for c in listed.json()["checkpoints"]}
    assert {h["checkpoint_id"] for h in held} <= pending
    for h in held:
        r = await gateway.http.post(
            f"/api/v2/governance/checkpoints/{h['checkpoint_id']}/approve", headers=approver)
        assert r.status_code == 200
    for h in held:
        await final_status(gateway, h["request_id"], "completed")
        assert len(llm_calls(fake_llm, h["request_id"])) == 1


async def test_only_an_approver_of_the_owning_identity_may_decide(
    gateway: Gateway, worker_factory: Any, fake_llm: Any
) -> None:
    worker_factory()
    held = await submit_held(gateway, "Pay the rent")
    url = f"/api/v2/governance/checkpoints/{held['checkpoint_id']}"
    other = gateway.auth("identity-mallory", "approver", "admin")
    for verb in ("approve", "reject"):
        r = await gateway.http.post(f"{url}/{verb}", headers=other)
        assert r.status_code == 403
        assert held["request_id"] not in r.text
        assert "rent" not in r.text
    seen = await gateway.http.get(url, headers=other)
    assert seen.status_code == 403
    listed = await gateway.http.get("/api/v2/governance/checkpoints", headers=other)
    assert listed.json()["checkpoints"] == []
    member = await gateway.http.post(f"{url}/approve",
                                     headers=gateway.auth(ALICE, "member"))
    assert member.status_code == 403, "a member of the identity is not an approver"
    still = await gateway.http.get(url, headers=gateway.auth(ALICE, "approver", sub=CAROL))
    assert still.json()["status"] == "pending"
    assert llm_calls(fake_llm, held["request_id"]) == []


async def test_racing_approve_and_reject_give_one_winner_and_one_conflict(
    gateway: Gateway, worker_factory: Any, fake_llm: Any
) -> None:
    worker_factory()
    held = await submit_held(gateway, "Pay supplier invoice 99")
    url = f"/api/v2/governance/checkpoints/{held['checkpoint_id']}"
    approver = gateway.auth(ALICE, "approver", sub=CAROL)
    approve, reject = await asyncio.gather(
        gateway.http.post(f"{url}/approve", headers=approver),
        gateway.http.post(f"{url}/reject", headers=approver),
    )
    assert sorted([approve.status_code, reject.status_code]) == [200, 409]
    winner = "completed" if approve.status_code == 200 else "rejected"
    await final_status(gateway, held["request_id"], winner)
    assert len(llm_calls(fake_llm, held["request_id"])) == (1 if winner == "completed" else 0)
