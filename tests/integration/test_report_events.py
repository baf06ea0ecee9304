"""The report's event types (PipelineEventType) are in ClickHouse, derived from what the lanes
recorded: ``v_pipeline_events``, scoped to the analyst's identity like every named view.

Budget and rate-limit events are checked where those situations are made: the budget test
(``test_llm_budgets``) and the 429 storm (``test_llm_fallbacks``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.integration.conftest import Gateway, eventually

pytestmark = pytest.mark.integration

ALICE = "identity-events-alice"
BOB = "identity-events-bob"
CAROL = "user-events-carol"  # another person of ALICE's identity: the approver


async def post(gw: Gateway, identity: str, prompt: str) -> dict[str, Any]:
    r = await gw.http.post("/api/v2/nova/requests", headers=gw.auth(identity, "member"),
                           json={"prompt": prompt, "wait_ms": 60_000})
    assert r.status_code in (200, 423), r.text
    body: dict[str, Any] = r.json()
    return body


async def events_of(gw: Gateway, identity: str, request_ids: list[str]) -> list[dict[str, Any]]:
    """``v_pipeline_events`` as ``identity``'s analyst sees it, for ``request_ids``."""
    ids = ", ".join(f"'{rid}'" for rid in request_ids)
    statement = ("SELECT event_type, request_id, lane, ts, detail "  # noqa: S608
                 f"FROM v_pipeline_events WHERE request_id IN ({ids}) ORDER BY ts, seq, event_type")
    r = await gw.http.post("/api/v2/analytics/sql", headers=gw.auth(identity, "analyst"),
                           json={"sql": statement})
    assert r.status_code == 200, r.text
    answer = r.json()
    return [dict(zip(answer["columns"], row, strict=True)) for row in answer["rows"]]


def types(events: list[dict[str, Any]], request_id: str) -> list[str]:
    return [e["event_type"] for e in events if e["request_id"] == request_id]


async def test_each_request_tells_its_story_in_the_reports_event_types(
    gateway: Gateway, worker_factory: Any,
) -> None:
    worker_factory()
    plain = (await post(gateway, ALICE, "Summarise this thread"))["request_id"]
    paid = await post(gateway, ALICE, "Pay invoice INV-7 of 120 EUR to ACME")
    dropped = await post(gateway, ALICE, "Delete the file draft.docx")
    approver = gateway.auth(ALICE, "approver", sub=CAROL)
    for held, verb in ((paid, "approve"), (dropped, "reject")):
        r = await gateway.http.post(
            f"/api/v2/governance/checkpoints/{held['checkpoint_id']}/{verb}",
            headers=approver, json={"reason": "checked"})
        assert r.status_code == 200, r.text
    ids = [plain, paid["request_id"], dropped["request_id"]]

    async def complete() -> list[dict[str, Any]] | None:
        seen = await events_of(gateway, ALICE, ids)
        ended = {e["request_id"] for e in seen if e["event_type"].startswith("PIPELINE_")
                 and e["event_type"] not in ("PIPELINE_START", "PIPELINE_BLOCKED")}
        decided = {e["request_id"] for e in seen if e["event_type"] in
                   ("CHECKPOINT_APPROVED", "CHECKPOINT_REJECTED")}
        lanes = sum(e["event_type"] == "LANE_COMPLETE" for e in seen)
        return seen if ended == set(ids) and len(decided) == 2 and lanes == 21 else None

    events = await eventually(complete, 90, 0.5, message="every request's events in ClickHouse")

    story = types(events, plain)
    assert story[0] == "PIPELINE_START", story
    assert story[-1] == "PIPELINE_COMPLETE", story
    assert story.count("LANE_START") == story.count("LANE_COMPLETE") == 7
    assert "LANE_ERROR" not in story
    assert "PIPELINE_BLOCKED" not in story
    assert story.count("LLM_CALL_START") == story.count("LLM_CALL_COMPLETE") == 1
    lanes_in_order = [e["lane"] for e in events
                      if e["request_id"] == plain and e["event_type"] == "LANE_START"]
    assert lanes_in_order == list("ABCDEFG")
    stamps = [datetime.fromisoformat(str(e["ts"])) for e in events if e["request_id"] == plain]
    assert stamps == sorted(stamps)

    approved = types(events, paid["request_id"])
    assert approved[0] == "PIPELINE_START", approved
    assert approved[-1] == "PIPELINE_COMPLETE", approved
    for kind in ("PIPELINE_BLOCKED", "CHECKPOINT_CREATED", "CHECKPOINT_APPROVED",
                 "LLM_CALL_COMPLETE"):
        assert approved.count(kind) == 1, (kind, approved)
    order = [approved.index(k) for k in ("CHECKPOINT_CREATED", "CHECKPOINT_APPROVED",
                                         "LLM_CALL_START", "PIPELINE_COMPLETE")]
    assert order == sorted(order), approved

    rejected = types(events, dropped["request_id"])
    assert "CHECKPOINT_REJECTED" in rejected
    assert "LLM_CALL_START" not in rejected
    final = [e for e in events if e["request_id"] == dropped["request_id"]
             and e["event_type"] == "PIPELINE_COMPLETE"]
    assert [e["detail"] for e in final] == ["rejected"]
    assert not any("draft.docx" in str(e["detail"]) or "INV-7" in str(e["detail"])
                   for e in events)  # statuses and codes, never the request's content

    # Another identity's analyst sees none of it: the view is scoped like every named view.
    assert await events_of(gateway, BOB, ids) == []
