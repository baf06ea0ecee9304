"""Budgets end to end: stored as entities, enforced by workers against spend that survives a
restart (read back from the events topic), refusing before any call and alerting at soft limits.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.integration.analytics_helpers import report_events
from tests.integration.conftest import eventually, finished, llm_rows, submit

pytestmark = pytest.mark.integration

PROMPT = "Write a short poem about the sea"


async def test_hard_budget_blocks_after_restart_and_soft_budget_alerts(
    gateway: Any, worker_factory: Any, llm_fake: Any,
):
    ch = gateway.clickhouse
    alice, carol = f"alice-{uuid.uuid4().hex[:8]}", f"carol-{uuid.uuid4().hex[:8]}"
    first = worker_factory(llm_fake.env())
    r1 = await submit(gateway, alice, PROMPT)
    assert (await finished(gateway, [r1]))[r1].status == "completed"

    async def r1_cost() -> float | None:
        rows = await asyncio.to_thread(llm_rows, ch, [r1])
        return rows[0]["cost_usd"] if rows else None

    spent = await eventually(r1_cost, 30, 0.2, message="r1's llm_calls row")
    assert spent > 0

    # A new worker process knows r1's spend only from the events topic (the spend tracker).
    first.stop()
    worker_factory(llm_fake.env())
    r = await gateway.http.post(
        "/api/v2/llm/monitoring/budgets", headers=gateway.auth(alice),
        json={"name": "alice monthly", "period": "month", "soft_usd": spent / 2,
              "hard_usd": spent})
    assert r.status_code == 201, r.text
    budget = r.json()
    assert (budget["scope"], budget["subject"], budget["status"]) == ("identity", alice, "blocked")
    assert budget["spent_usd"] == pytest.approx(spent)

    r2 = await submit(gateway, alice, PROMPT)
    view = (await finished(gateway, [r2]))[r2]
    assert view.status == "budget_exceeded"
    assert budget["id"] in view.error
    assert "alice monthly" in view.error
    assert llm_fake.calls(r2) == []

    # Soft limit: the call goes through and an alert lands in the alerts table.
    r = await gateway.http.post(
        "/api/v2/llm/monitoring/budgets", headers=gateway.auth(carol),
        json={"name": "carol soft", "period": "day", "soft_usd": 1e-9, "hard_usd": 10})
    assert r.status_code == 201, r.text
    soft_id = r.json()["id"]
    r3 = await submit(gateway, carol, PROMPT)
    assert (await finished(gateway, [r3]))[r3].status == "completed"

    async def soft_alert() -> list[dict[str, Any]] | None:
        r = await gateway.http.get("/api/v2/llm/monitoring/alerts?type=BUDGET_SOFT_LIMIT",
                                   headers=gateway.auth(carol))
        found = [a for a in r.json()["alerts"] if a["request_id"] == r3]
        return found or None

    alerts = await eventually(soft_alert, 30, 0.2, message="the soft-limit alert")
    assert alerts[0]["subject"] == soft_id

    # In the report's event types: the hard limit stopped r2 before any call, r3 went through.
    wanted = {(r2, "BUDGET_EXCEEDED"), (r2, "PIPELINE_ERROR"), (r3, "BUDGET_WARNING"),
              (r3, "PIPELINE_COMPLETE")}

    async def budget_events() -> list[dict[str, Any]] | None:
        rows = await asyncio.to_thread(report_events, ch, [r2, r3])
        return rows if wanted <= {(e["request_id"], e["event_type"]) for e in rows} else None

    events = await eventually(budget_events, 30, 0.2, message="the budget events")
    assert not [e for e in events if e["request_id"] == r2 and e["event_type"].startswith("LLM")]
    assert [e["detail"] for e in events if e["event_type"] == "BUDGET_WARNING"] == [soft_id]

    # Scopes: a member may not budget a provider (it would restrict everyone); lists are own.
    r = await gateway.http.post(
        "/api/v2/llm/monitoring/budgets", headers=gateway.auth(carol),
        json={"name": "x", "scope": "provider", "subject": "openai", "soft_usd": 0,
              "hard_usd": 0})
    assert r.status_code == 403
    listed = (await gateway.http.get("/api/v2/llm/monitoring/budgets",
                                     headers=gateway.auth(carol))).json()["budgets"]
    assert [b["id"] for b in listed] == [soft_id]
    r = await gateway.http.delete(f"/api/v2/llm/monitoring/budgets/{budget['id']}",
                                  headers=gateway.auth(carol))
    assert r.status_code == 403
    r = await gateway.http.delete(f"/api/v2/llm/monitoring/budgets/{budget['id']}",
                                  headers=gateway.auth(alice))
    assert r.status_code == 204
