"""LLM routing on the real broker and the fake provider server: fallbacks, 429 storms, the
``nova`` role's lock, provider health from probes, the gateway's identity limit, and the
monitoring API reading it all back from ClickHouse."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.analytics_helpers import report_events
from tests.integration.conftest import eventually, finished, llm_rows, serve_gateway, submit

pytestmark = pytest.mark.integration

PROBE_RARELY = "600"  # probes would eat fail_times meant for live calls
TO_ANTHROPIC = "Write a short poem about the sea"  # creative: Anthropic first, then OpenAI
DOCS = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"


def documented_dashboards() -> dict[str, dict[str, Any]]:
    """The answers docs/monitoring.md shows for the report's two curl lines, by path."""
    text = DOCS.read_text()
    section = text[text.index("## The report's two curl lines"):]
    nova, llm = re.findall(r"```json\n(.*?)\n```", section, re.DOTALL)[:2]  # as the curls
    return {"/api/v2/nova/monitoring/dashboard": json.loads(nova),
            "/api/v2/llm/monitoring/dashboard": json.loads(llm)}


def ident(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def rows_when(ch: Any, ids: list[str], n: int) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        rows = await asyncio.to_thread(llm_rows, ch, ids)
        return rows if len(rows) >= n else None

    rows: list[dict[str, Any]] = await eventually(enough, 60, 0.2, message=f"{n} llm_calls rows")
    return rows


async def test_429_storm_then_fallback_and_monitoring(
    gateway: Any, worker_factory: Any, llm_fake: Any,
):
    ch = gateway.clickhouse
    worker_factory(llm_fake.env(NOVA_LLM_PROBE_INTERVAL_S=PROBE_RARELY))
    alice, bob = ident("alice"), ident("bob")

    # A 429 storm with Retry-After: 1 on the primary: every request waits as told, none is lost.
    llm_fake.control("anthropic", rate_limit_retry_after=1, fail_times=8)
    storm = await asyncio.gather(*(submit(gateway, alice, TO_ANTHROPIC) for _ in range(8)))
    views = await finished(gateway, storm)
    assert {v.status for v in views.values()} == {"completed"}
    rows = await rows_when(ch, storm, 8 + 8)  # each: at least one 429 call and one ok call
    assert sum(r["status"] == "ok" for r in rows) == 8
    assert {r["request_id"] for r in rows if r["status"] == "ok"} == set(storm)
    limited = {r["request_id"] for r in rows if "429" in (r["error"] or "")}
    assert limited, rows

    async def lane_f_rows() -> dict[str, int] | None:
        # The lane rows come with the request's one lanes event, after its llm_calls rows.
        found = dict(await asyncio.to_thread(lambda: ch.query(
            f"SELECT request_id, duration_ms FROM {ch.database}.lane_events FINAL "  # noqa: S608
            "WHERE lane = 'F' AND request_id IN %(ids)s", {"ids": list(limited)})[1]))
        return found if set(found) == limited else None

    lane_f = await eventually(lane_f_rows, 30, 0.2, message="lane F rows of the limited requests")

    # In the report's event types: each limited request hit the rate limit, then completed.
    events = await asyncio.to_thread(report_events, ch, list(limited))
    for rid in limited:
        told = [e["event_type"] for e in events if e["request_id"] == rid]
        assert "RATE_LIMIT_HIT" in told, told
        assert "LLM_CALL_ERROR" in told, told
        assert told.index("RATE_LIMIT_HIT") < told.index("PIPELINE_COMPLETE"), told
    assert all(lane_f[rid] >= 950 for rid in limited), lane_f  # waited the Retry-After second
    summary = llm_fake.summary()
    assert summary["by_provider"]["anthropic"] >= 8 + 8 - summary["by_provider"].get("openai", 0)

    # The primary now answers 503: the fallback serves, both attempts are in ClickHouse.
    llm_fake.control("anthropic", rate_limit_retry_after=None, fail_times=None, fail_status=503)
    rid = await submit(gateway, alice, TO_ANTHROPIC)
    assert (await finished(gateway, [rid]))[rid].status == "completed"
    assert [c["provider"] for c in llm_fake.calls(rid)] == ["anthropic", "openai"]
    rows = await rows_when(ch, [rid], 2)
    assert [(r["provider"], r["status"]) for r in rows] == [
        ("anthropic", "error"), ("openai", "ok")]
    assert rows[1]["fallback_from"] == "anthropic/claude-sonnet-4-6"

    # The pipeline's trail: its owner sees lanes and both attempts, another identity gets 403.
    async def trail() -> Any:
        r = await gateway.http.get(f"/api/v2/nova/monitoring/pipelines/{rid}",
                                   headers=gateway.auth(alice))
        body = r.json()
        return body if r.status_code == 200 and len(body["lanes"]) == 7 else None

    body = await eventually(trail, 30, 0.2, message="the pipeline's seven lanes")
    assert [c["provider"] for c in body["llm_calls"]] == ["anthropic", "openai"]
    r = await gateway.http.get(f"/api/v2/nova/monitoring/pipelines/{rid}",
                               headers=gateway.auth(bob))
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert "anthropic" not in r.text

    # Figures from ClickHouse, scoped to the caller.
    stats = (await gateway.http.get("/api/v2/llm/monitoring/fallback/stats",
                                    headers=gateway.auth(alice))).json()
    assert stats["served"] == 9
    assert stats["served_by_fallback"] >= 1
    assert any(m["fallback_from"] == "anthropic/claude-sonnet-4-6" and m["provider"] == "openai"
               for m in stats["moves"])
    costs = (await gateway.http.get("/api/v2/llm/monitoring/costs?hours=1",
                                    headers=gateway.auth(alice))).json()
    assert costs["total_usd"] > 0
    assert [r["identity_id"] for r in costs["by_identity"]] == [alice]
    assert (await gateway.http.get("/api/v2/llm/monitoring/costs",
                                   headers=gateway.auth(bob))).json()["total_usd"] == 0
    assert (await gateway.http.get(f"/api/v2/llm/monitoring/costs?identity={alice}",
                                   headers=gateway.auth(bob))).status_code == 403
    operator = (await gateway.http.get(f"/api/v2/llm/monitoring/costs?identity={alice}",
                                       headers=gateway.auth(bob, "operator"))).json()
    assert operator["total_usd"] == costs["total_usd"]
    answers: dict[str, Any] = {}
    for path in ("/api/v2/llm/providers", "/api/v2/llm/monitoring/dashboard",
                 "/api/v2/llm/monitoring/health", "/api/v2/llm/monitoring/health/openai",
                 "/api/v2/llm/monitoring/rate-limits", "/api/v2/llm/monitoring/rate-limits/openai",
                 "/api/v2/llm/monitoring/costs/summary", "/api/v2/llm/monitoring/fallback",
                 "/api/v2/llm/monitoring/alerts", "/api/v2/nova/monitoring/dashboard",
                 "/api/v2/nova/monitoring/stats", "/api/v2/nova/monitoring/costs",
                 "/api/v2/llm/monitoring/fallback/chains"):
        r = await gateway.http.get(path, headers=gateway.auth(alice))
        assert r.status_code == 200, (path, r.text)
        answers[path] = r.json()
    for path, shown in documented_dashboards().items():  # the docs show real answers' keys
        assert sorted(answers[path]) == sorted(shown), path
    assert answers["/api/v2/llm/monitoring/fallback/chains"] == answers[
        "/api/v2/llm/monitoring/fallback"]  # the report's path, an alias
    dash = (await gateway.http.get("/api/v2/nova/monitoring/dashboard",
                                   headers=gateway.auth(alice))).json()
    assert dash["requests"] == 9
    limits = (await gateway.http.get("/api/v2/llm/monitoring/rate-limits/anthropic",
                                     headers=gateway.auth(alice))).json()
    assert limits["http_429_last_hour"] >= 8


async def test_nova_s_own_provider_limit_passes_a_provider_over_as_rate_limit_exceeded(
    gateway: Any, worker_factory: Any, llm_fake: Any,
):
    """An operator's tokens per minute for Anthropic below one request's estimate (its prompt
    and ``NOVA_LLM_MAX_TOKENS``, 1,024): the bucket is never empty, so lane D still routes to
    Anthropic, and lane F's limiter, a fallback behind it, passes Anthropic over without a call.
    In the report's events that is RATE_LIMIT_EXCEEDED (``v_pipeline_events``: an ``llm_calls``
    row ``skipped`` for a rate limit), not RATE_LIMIT_HIT (a provider's own 429)."""
    ch = gateway.clickhouse
    worker_factory(llm_fake.env(NOVA_LLM_PROBE_INTERVAL_S=PROBE_RARELY))
    alice = ident("alice")
    r = await gateway.http.put("/api/v2/llm/monitoring/rate-limits/anthropic",
                               headers=gateway.auth(ident("ops"), "operator"), json={"tpm": 100})
    assert r.status_code == 200, r.text

    async def passed_over() -> str | None:
        # The worker adopts the limit once it has read it from the entities topic; until then
        # Anthropic serves the request.
        rid = await submit(gateway, alice, TO_ANTHROPIC)
        assert (await finished(gateway, [rid]))[rid].status == "completed"
        return rid if [c["provider"] for c in llm_fake.calls(rid)] == ["openai"] else None

    rid = await eventually(passed_over, 60, 0.2, message="a request passed over Anthropic")
    rows = await rows_when(ch, [rid], 2)
    assert [(r["provider"], r["status"]) for r in rows] == [
        ("anthropic", "skipped"), ("openai", "ok")]
    assert rows[0]["error"].startswith("rate limit provider:anthropic:tpm"), rows[0]

    async def told() -> list[dict[str, Any]] | None:
        events = await asyncio.to_thread(report_events, ch, [rid])
        return events if "PIPELINE_COMPLETE" in [e["event_type"] for e in events] else None

    events = await eventually(told, 30, 0.2, message="the request's report events")
    types = [e["event_type"] for e in events]
    assert types.count("RATE_LIMIT_EXCEEDED") == 1, types
    assert "RATE_LIMIT_HIT" not in types, types
    exceeded = next(e for e in events if e["event_type"] == "RATE_LIMIT_EXCEEDED")
    assert exceeded["lane"] == "F"
    assert exceeded["detail"] == f"anthropic/{rows[0]['model']}"
    assert types.index("RATE_LIMIT_EXCEEDED") < types.index("PIPELINE_COMPLETE"), types
    # no call was made to Anthropic, so it has no call events
    assert [e["detail"] for e in events if e["event_type"].startswith("LLM_CALL_")] == [
        f"openai/{rows[1]['model']}"] * 2
    limits = (await gateway.http.get("/api/v2/llm/monitoring/rate-limits/anthropic",
                                     headers=gateway.auth(alice))).json()
    assert (limits["tpm"], limits["source"]) == (100, "operator")
    assert limits["skipped_over_limit_last_hour"] >= 1


async def test_nova_role_is_refused_not_rerouted_when_anthropic_is_down(
    gateway: Any, worker_factory: Any, llm_fake: Any,
):
    llm_fake.control("anthropic", down=True)
    worker_factory(llm_fake.env(NOVA_LLM_PROBE_INTERVAL_S="0.5"))
    alice = ident("alice")
    headers = gateway.auth(alice)

    async def anthropic_down() -> Any:
        r = await gateway.http.get("/api/v2/llm/monitoring/health/anthropic", headers=headers)
        body = r.json()
        return body if body["probe_status"] == "down" else None

    health = await eventually(anthropic_down, 60, 0.5, message="anthropic announced down")
    assert health["status"] == "down"
    assert health["history"][0]["status"] == "down"

    r = await gateway.http.post("/api/v2/llm/routing/decide", json={"role": "nova"},
                                headers=headers)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "locked to anthropic" in r.json()["detail"]
    assert "health is down" in r.json()["detail"]
    r = await gateway.http.post("/api/v2/llm/routing/decide",
                                json={"task_type": "code", "estimated_tokens": 1000},
                                headers=headers)
    decision = r.json()
    assert r.status_code == 200, decision
    assert decision["provider"] == "openai"
    assert all(c["provider"] != "anthropic" for c in decision["chain"])
    assert any("anthropic" in reason and "down" in reason for reason in decision["reasons"])

    rid = await submit(gateway, alice, role="nova", task_type="code")
    view = (await finished(gateway, [rid]))[rid]
    assert view.status == "failed"
    assert "locked to anthropic" in view.error
    assert {c["provider"] for c in llm_fake.calls(rid)} <= {"anthropic"}

    alerts = (await gateway.http.get("/api/v2/llm/monitoring/alerts?type=PROVIDER_HEALTH",
                                     headers=headers)).json()["alerts"]
    assert any(a["subject"] == "anthropic" and a["message"] == "down" for a in alerts)


async def test_gateway_refuses_an_identity_over_its_rate_with_429(settings: Any, clickhouse: Any):
    limited = settings.model_copy(update={"gateway_rpm_per_identity": 2.0})
    async with serve_gateway(limited, clickhouse.with_database(limited.clickhouse_database)) as gw:
        alice, bob = ident("alice"), ident("bob")
        for _ in range(2):
            await submit(gw, alice)
        r = await gw.http.post("/api/v2/nova/requests", json={"prompt": "one more"},
                               headers=gw.auth(alice))
        assert r.status_code == 429
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["limit"] == f"identity:{alice}:rpm"
        await submit(gw, bob)  # another identity is not affected


async def test_a_fallback_the_identity_refuses_is_skipped_and_never_sees_the_prompt(
    gateway: Any, worker_factory: Any, llm_fake: Any,
):
    """Lane D judged the request with Anthropic; the rule against OpenAI must hold at lane F."""
    worker_factory(llm_fake.env(NOVA_LLM_PROBE_INTERVAL_S=PROBE_RARELY))
    alice, bob = ident("alice"), ident("bob")
    r = await gateway.http.post("/api/v2/governance/rules", headers=gateway.auth(alice, "approver"),
                                json={"effect": "deny", "match": {"providers": ["openai"]}})
    assert r.status_code == 201, r.text
    rule = r.json()["rule_id"]
    llm_fake.control("anthropic", fail_status=503)  # the primary fails: the chain is needed

    mine = await submit(gateway, alice, TO_ANTHROPIC)
    theirs = await submit(gateway, bob, TO_ANTHROPIC)  # Alice's rule is hers alone
    views = await finished(gateway, [mine, theirs])
    assert views[mine].status == views[theirs].status == "completed"
    assert [c["provider"] for c in llm_fake.calls(mine)] == ["anthropic", "google"]
    assert [c["provider"] for c in llm_fake.calls(theirs)] == ["anthropic", "openai"]

    # With every other provider refused too, the request ends denied, citing a rule, and no
    # refused provider sees the prompt (by now Anthropic's failures may have made the router pick
    # a refused primary, in which case lane D denies it before lane F).
    r = await gateway.http.post("/api/v2/governance/rules", headers=gateway.auth(alice, "approver"),
                                json={"effect": "deny",
                                      "match": {"providers": ["google", "mistral"]}})
    assert r.status_code == 201, r.text
    rules = {rule, r.json()["rule_id"]}
    denied = await submit(gateway, alice, TO_ANTHROPIC)
    view = (await finished(gateway, [denied]))[denied]
    assert view.status == "denied"
    assert any(f"RULE {rid}: deny" in view.error for rid in rules), view.error
    assert {c["provider"] for c in llm_fake.calls(denied)} <= {"anthropic"}
