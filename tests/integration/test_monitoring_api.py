"""The monitoring API of the report, complete, on the real broker, a worker and ClickHouse.

One stack for the module (gateway with the sink, one worker, the fake providers): requests go
through the seven lanes and every figure is read back over HTTP: stats by lane, task type and
action, the pipeline list and a request's timeline, costs by provider, model, identity,
sphere and task type, healthy providers and a provider's history, the fallback a provider
resolves to. Then what changes shared state: provider limits (a worker enforces them; a reset
refills its buckets), probe settings, alert thresholds, an on-demand check and alert
acknowledgements, each an operator's (or the alert owner's) and audited, seen by a second
gateway started afterwards (shared, and surviving a restart); and retention, which deletes old
rows, an admin its identity's and an operator everyone's, after its audit fact.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics.client import ClickHouse
from nova.kafka.launcher import free_port
from nova.llm.fake_server import FakeServerThread
from tests.integration.conftest import (
    Gateway,
    SessionBroker,
    WorkerProcess,
    eventually,
    finished,
    llm_rows,
    serve_gateway,
    submit,
)
from tests.integration.live_helpers import live_stack, unique

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
LLM = "/api/v2/llm/monitoring"
NOVA = "/api/v2/nova/monitoring"
TO_ANTHROPIC = "Write a short poem about the sea"  # creative: Anthropic first, then OpenAI


@pytest.fixture(scope="module")
async def stack(broker: SessionBroker, clickhouse: ClickHouse, fake_llm: FakeServerThread,
                tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[tuple[Gateway, WorkerProcess]]:
    async with live_stack(broker, clickhouse, tmp_path_factory.mktemp("monitoring") / "data",
                          fake_llm, run_sink=True, sink_flush_interval_s=0.2) as running:
        yield running


@pytest.fixture
def gw(stack: tuple[Gateway, WorkerProcess]) -> Gateway:
    return stack[0]


async def ok(gw: Gateway, path: str, headers: dict[str, str]) -> dict[str, Any]:
    r = await gw.http.get(path, headers=headers)
    assert r.status_code == 200, (path, r.text)
    body: dict[str, Any] = r.json()
    return body


def refused(r: Any, status: int = 403) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers


async def landed(gw: Gateway, ids: list[str]) -> None:
    """Every request's row and its seven lanes' rows are in ClickHouse (they come from two
    topics, flushed by the sink in any order)."""
    ch = gw.clickhouse

    def count(table: str) -> int:
        return int(ch.scalar(f"SELECT count() FROM {ch.database}.{table} FINAL "  # noqa: S608
                             "WHERE request_id IN %(ids)s", {"ids": ids}))

    async def all_in() -> bool:
        return await asyncio.to_thread(
            lambda: (count("requests"), count("lane_events")) == (len(ids), 7 * len(ids)))

    await eventually(all_in, 60, 0.2, message=f"{len(ids)} requests' rows")


async def calls_of(gw: Gateway, rid: str) -> list[dict[str, Any]]:
    """The request's ``llm_calls`` rows once its successful call has landed, by attempt."""

    async def served() -> list[dict[str, Any]] | None:
        rows = await asyncio.to_thread(llm_rows, gw.clickhouse, [rid])
        return rows if rows and rows[-1]["status"] == "ok" else None

    rows: list[dict[str, Any]] = await eventually(served, 60, 0.2, message=f"{rid}'s calls")
    return rows


async def alerts_of(gw: Gateway, headers: dict[str, str], kind: str) -> list[dict[str, Any]]:
    body = await ok(gw, f"{LLM}/alerts?type={kind}", headers)
    rows: list[dict[str, Any]] = body["alerts"]
    return rows


async def test_every_figure_comes_from_real_requests_and_a_member_sees_only_its_own(
    gw: Gateway,
) -> None:
    alice, bob = unique("alice"), unique("bob")
    mine = [await submit(gw, alice), await submit(gw, alice, TO_ANTHROPIC)]
    theirs = [await submit(gw, bob)]
    views = await finished(gw, mine + theirs)
    assert {v.status for v in views.values()} == {"completed"}
    await landed(gw, mine + theirs)
    a, _b, ops = gw.auth(alice), gw.auth(bob), gw.auth(unique("ops"), "operator")

    stats = await ok(gw, f"{NOVA}/stats", a)
    assert stats["identity"] == alice
    assert (stats["overall"]["requests"], stats["overall"]["completed"]) == (2, 2)
    assert stats["overall"]["success_rate"] == 1.0
    lanes = await ok(gw, f"{NOVA}/stats/lanes", a)
    assert {r["lane"] for r in lanes["by_lane"]} == set("ABCDEFG")
    assert all(r["events"] == 2 for r in lanes["by_lane"])
    tasks = await ok(gw, f"{NOVA}/stats/task-types", a)
    assert sum(r["requests"] for r in tasks["by_task_type"]) == 2
    actions = await ok(gw, f"{NOVA}/stats/actions", a)
    assert sum(r["requests"] for r in actions["by_action"]) == 2

    # The pipeline list: a member's own, filtered and paged; an operator's every identity's.
    page = await ok(gw, f"{NOVA}/pipelines?limit=1", a)
    assert (page["total"], page["next_offset"], len(page["pipelines"])) == (2, 1, 1)
    rest = await ok(gw, f"{NOVA}/pipelines?limit=1&offset=1", a)
    assert rest["next_offset"] is None
    assert {p["request_id"] for p in page["pipelines"] + rest["pipelines"]} == set(mine)
    assert "result" not in page["pipelines"][0]
    assert "prompt" not in page["pipelines"][0]
    none = await ok(gw, f"{NOVA}/pipelines?status=failed", a)
    assert (none["total"], none["pipelines"]) == (0, [])
    seen = await ok(gw, f"{NOVA}/pipelines?limit=500", ops)
    assert set(mine + theirs) <= {p["request_id"] for p in seen["pipelines"]}
    assert {p["identity_id"] for p in seen["pipelines"]} >= {alice, bob}
    only_bob = await ok(gw, f"{NOVA}/pipelines?identity={bob}", ops)
    assert [p["request_id"] for p in only_bob["pipelines"]] == theirs

    # A request's timeline, in the report's event types: its owner's, and an operator's.
    timeline = await ok(gw, f"{NOVA}/pipelines/{mine[0]}/timeline", a)
    kinds = [e["event_type"] for e in timeline["events"]]
    assert (kinds[0], kinds[-1]) == ("PIPELINE_START", "PIPELINE_COMPLETE"), kinds
    assert (kinds.count("LANE_COMPLETE"), "LLM_CALL_COMPLETE" in kinds) == (7, True), kinds
    assert (await ok(gw, f"{NOVA}/pipelines/{mine[0]}/timeline", ops)) == timeline
    refused(await gw.http.get(f"{NOVA}/pipelines/{theirs[0]}/timeline", headers=a))
    refused(await gw.http.get(f"{NOVA}/pipelines/nope/timeline", headers=a), 404)

    # Costs, Nova's (requests) and the LLM's (calls): the member's own identity only.
    calls = [row for rid in mine for row in await calls_of(gw, rid)]
    spent = round(sum(r["cost_usd"] for r in calls), 9)
    assert spent > 0
    by_identity = await ok(gw, f"{NOVA}/costs/by-identity", a)
    assert [(r["identity_id"], r["requests"]) for r in by_identity["by_identity"]] == [(alice, 2)]
    assert by_identity["total_usd"] == pytest.approx(spent)
    for path, key in ((f"{NOVA}/costs/by-sphere", "by_sphere"),
                      (f"{NOVA}/costs/by-task-type", "by_task_type"),
                      (f"{LLM}/costs/by-provider", "by_provider"),
                      (f"{LLM}/costs/by-model", "by_model")):
        body = await ok(gw, path, a)
        assert body["total_usd"] == pytest.approx(spent), path
        assert body[key], path
    served = {(r["provider"], r["model"]) for r in calls if r["status"] == "ok"}
    by_model = await ok(gw, f"{LLM}/costs/by-model", a)
    assert {(r["provider"], r["model"]) for r in by_model["by_model"]} >= served
    periods = await ok(gw, f"{LLM}/costs/by-identity?period=month", a)
    assert [r["identity_id"] for r in periods["by_identity"]] == [alice]
    assert periods["by_identity"][0]["period_start"] == datetime.now(UTC).strftime("%Y-%m-01")
    everyone = await ok(gw, f"{LLM}/costs/by-identity?period=day", ops)
    assert {alice, bob} <= {r["identity_id"] for r in everyone["by_identity"]}

    # Another identity's figures are a boundary crossing for a member; bad input is a 422.
    for path in (f"{NOVA}/pipelines?identity={bob}", f"{LLM}/costs/by-identity?identity={bob}",
                 f"{NOVA}/stats/lanes?identity={bob}", f"{NOVA}/costs/by-sphere?identity={bob}"):
        r = await gw.http.get(path, headers=a)
        refused(r)
        assert bob not in r.text
        assert theirs[0] not in r.text
    for path in (f"{NOVA}/pipelines?limit=0", f"{NOVA}/pipelines?offset=-1",
                 f"{NOVA}/pipelines?status=a%20b", f"{LLM}/costs/by-identity?period=year",
                 f"{NOVA}/stats/actions?hours=0", f"{LLM}/fallback/resolve"):
        refused(await gw.http.get(path, headers=a), 422)

    # Provider health: the healthy ones, a provider's history, the fallback it resolves to.
    healthy = await ok(gw, f"{LLM}/health/healthy", a)
    assert "anthropic" in healthy["providers"]
    assert "openai" in healthy["providers"]
    resolved = await ok(gw, f"{LLM}/fallback/resolve?provider=anthropic", a)
    assert (resolved["resolved"], resolved["fell_back"]) == ("anthropic", False)
    assert resolved["chain"][0]["status"] == "healthy"
    refused(await gw.http.get(f"{LLM}/fallback/resolve?provider=nowhere", headers=a), 404)
    refused(await gw.http.get(f"{LLM}/health/nowhere/history", headers=a), 404)


async def test_platform_changes_are_an_operators_audited_and_shared(gw: Gateway) -> None:
    ops_id = unique("ops")
    ops, admin = gw.auth(ops_id, "operator"), gw.auth(unique("adm"), "admin")
    alice = unique("alice")
    member = gw.auth(alice)
    before = await ok(gw, f"{LLM}/rate-limits/anthropic", member)
    assert before["source"] == "registry"

    # Not an operator: refused, nothing written (an admin administers its identity only).
    for headers in (member, admin):
        for method, path, change in (
            ("PUT", f"{LLM}/rate-limits/anthropic", {"rpm": 1}),
            ("POST", f"{LLM}/rate-limits/anthropic/reset", None),
            ("PUT", f"{LLM}/health/probe-settings", {"interval_s": 5}),
            ("PUT", f"{LLM}/alerts/thresholds", {"min_calls": 2}),
            ("POST", f"{LLM}/health/openai/check", None),
        ):
            refused(await gw.http.request(method, path, headers=headers, json=change))
    assert await ok(gw, f"{LLM}/rate-limits/anthropic", member) == before
    assert (await ok(gw, f"{LLM}/health/probe-settings", member))["source"] == "settings"
    assert (await ok(gw, f"{LLM}/alerts/thresholds", member))["source"] == "settings"

    # Bad input: 422 problems, never a 500.
    for method, path, bad in (
        ("PUT", f"{LLM}/rate-limits/anthropic", {"rpm": 0}),
        ("PUT", f"{LLM}/rate-limits/anthropic", {"rpm": "5"}),
        ("PUT", f"{LLM}/rate-limits/anthropic", {"rpm": 5, "burst": 2}),
        ("PUT", f"{LLM}/health/probe-settings", {"degraded_failure_rate": 2}),
        ("PUT", f"{LLM}/health/probe-settings", {"interval_s": 0}),
        ("PUT", f"{LLM}/alerts/thresholds", {"error_rate": 0}),
        ("POST", f"{LLM}/alerts/acknowledge", {"event_id": ""}),
    ):
        refused(await gw.http.request(method, path, headers=ops, json=bad), 422)
    refused(await gw.http.put(f"{LLM}/rate-limits/nowhere", headers=ops, json={"rpm": 5}), 404)

    # An operator's limit binds the worker: at one request a minute Anthropic is passed over.
    async def served_by(provider: str) -> list[dict[str, Any]] | None:
        rid = await submit(gw, alice, TO_ANTHROPIC)
        assert (await finished(gw, [rid]))[rid].status == "completed"
        rows = await calls_of(gw, rid)
        return rows if rows[-1]["provider"] == provider else None

    assert await served_by("anthropic")  # before: the creative request's primary
    r = await gw.http.put(f"{LLM}/rate-limits/anthropic", headers=ops, json={"rpm": 1})
    assert r.status_code == 200, r.text
    assert (r.json()["rpm"], r.json()["tpm"], r.json()["source"]) == (
        1, before["tpm"], "operator")

    rows = await eventually(lambda: served_by("openai"), 120, 0,
                            message="a request past Anthropic's one-a-minute limit")
    # The router leaves a provider over its limit out of the chain (or a call skips it).
    assert all(r["status"] == "skipped" for r in rows if r["provider"] == "anthropic"), rows
    r = await gw.http.post(f"{LLM}/rate-limits/anthropic/reset", headers=ops)
    assert r.status_code == 200, r.text
    assert r.json()["reset_at"], r.text
    await eventually(lambda: served_by("anthropic"), 120, 0,
                     message="Anthropic's bucket refilled by the reset")

    r = await gw.http.put(f"{LLM}/health/probe-settings", headers=ops,
                          json={"window_min": 15, "interval_s": 20})
    assert r.status_code == 200, r.text
    probe = r.json()
    assert (probe["window_min"], probe["interval_s"], probe["source"]) == (15, 20, "operator")
    assert probe["degraded_failure_rate"] == before_rate(gw)
    assert gw.services.llm.health.judged_by() == (15, before_rate(gw))
    r = await gw.http.put(f"{LLM}/alerts/thresholds", headers=ops, json={"min_calls": 3})
    assert r.status_code == 200, r.text
    thresholds = r.json()
    assert (thresholds["min_calls"], thresholds["source"]) == (3, "operator")
    dispatcher = gw.services.alerts
    assert dispatcher is not None
    await eventually(lambda: _true(dispatcher.detector.t.min_calls == 3), 30, 0.2,
                     message="the dispatcher to adopt the thresholds")

    # Check now: the outcome, and a PROVIDER_CHECK row in the provider's history.
    r = await gw.http.post(f"{LLM}/health/openai/check", headers=ops)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "healthy"
    assert r.json()["error"] is None

    async def checked() -> list[dict[str, Any]] | None:
        history = await ok(gw, f"{LLM}/health/openai/history", member)
        rows = [h for h in history["history"] if h["source"] == "check"]
        return rows or None

    check = (await eventually(checked, 60, 0.2, message="the check in the history"))[0]
    assert check["status"] == "healthy"

    # Every change is an OPERATOR_ACTION fact with before and after, filed under the operator.
    async def audited() -> set[tuple[str, str]] | None:
        facts = await alerts_of(gw, ops, "OPERATOR_ACTION")
        mine = {(f["subject"], json.loads(f["message"])["operation"]) for f in facts
                if f["identity_id"] == ops_id}
        want = {("provider_limits:anthropic", "replace"), ("provider_limits:anthropic", "reset"),
                ("probe_settings:global", "replace"), ("alert_thresholds:global", "replace")}
        return mine if want <= mine else None

    await eventually(audited, 60, 0.2, message="the operator's four facts")

    # Shared and durable: a gateway started now reads every change from the entities topic.
    second = gw.settings.model_copy(update={"gateway_port": free_port(), "run_sink": False,
                                            "run_alerts": False})
    async with serve_gateway(second, gw.clickhouse) as other:
        limits = await ok(other, f"{LLM}/rate-limits/anthropic", other.auth(alice))
        assert (limits["rpm"], limits["source"]) == (1, "operator")
        assert (await ok(other, f"{LLM}/health/probe-settings", other.auth(alice)))[
            "window_min"] == 15
        assert (await ok(other, f"{LLM}/alerts/thresholds", other.auth(alice)))[
            "min_calls"] == 3

    # Back to the registry's limits for the other tests of the module.
    r = await gw.http.put(f"{LLM}/rate-limits/anthropic", headers=ops, json={})
    assert (r.status_code, r.json()["rpm"], r.json()["source"]) == (200, before["rpm"],
                                                                    "registry")


def before_rate(gw: Gateway) -> float:
    return float(gw.services.llm.health.degraded_rate)


async def _true(value: bool) -> bool:
    return value


async def test_alerts_are_acknowledged_by_their_owner_or_an_operator(gw: Gateway) -> None:
    alice, bob, ops_id = unique("alice"), unique("bob"), unique("ops")
    a, b, ops = gw.auth(alice), gw.auth(bob), gw.auth(ops_id, "operator")
    # Alice's own alert: her refused attempt at Bob's figures (an IDENTITY_BOUNDARY fact).
    refused(await gw.http.get(f"{LLM}/costs?identity={bob}", headers=a))

    async def her_alert() -> list[dict[str, Any]] | None:
        rows = await alerts_of(gw, a, "IDENTITY_BOUNDARY")
        return [r for r in rows if r["identity_id"] == alice] or None

    alert = (await eventually(her_alert, 60, 0.2, message="alice's alert"))[0]
    assert alert["acknowledged"] is None

    # Bob may not acknowledge it: a boundary crossing, nothing written.
    r = await gw.http.post(f"{LLM}/alerts/acknowledge", headers=b,
                           json={"event_id": alert["event_id"]})
    refused(r)
    assert alice not in r.text
    assert (await her_alert() or [{}])[0]["acknowledged"] is None
    refused(await gw.http.post(f"{LLM}/alerts/acknowledge", headers=a,
                               json={"event_id": "no-such-alert"}), 404)

    r = await gw.http.post(f"{LLM}/alerts/acknowledge", headers=a,
                           json={"event_id": alert["event_id"], "note": "my mistake"})
    assert r.status_code == 200, r.text
    rows = await her_alert() or []
    assert rows[0]["acknowledged"]["by_identity"] == alice
    assert rows[0]["acknowledged"]["note"] == "my mistake"

    # A provider alert (system's) is an operator's to acknowledge, audited.
    r = await gw.http.post(f"{LLM}/health/anthropic/check", headers=ops)
    assert r.status_code == 200, r.text

    async def check_alert() -> list[dict[str, Any]] | None:
        rows = [x for x in await alerts_of(gw, a, "PROVIDER_CHECK") if x["subject"] == "anthropic"]
        return rows or None

    system = (await eventually(check_alert, 60, 0.2, message="the check's alert"))[0]
    assert system["identity_id"] == "system"
    refused(await gw.http.post(f"{LLM}/alerts/acknowledge", headers=gw.auth(alice, "admin"),
                               json={"event_id": system["event_id"]}))
    r = await gw.http.post(f"{LLM}/alerts/acknowledge", headers=ops,
                           json={"event_id": system["event_id"]})
    assert r.status_code == 200, r.text

    async def acked() -> dict[str, Any] | None:
        rows = await check_alert() or []
        mine = [x for x in rows if x["event_id"] == system["event_id"]]
        return mine[0]["acknowledged"] if mine else None

    assert (await eventually(acked, 10, 0.1, message="the ack"))["by_identity"] == ops_id

    async def audited() -> list[dict[str, Any]] | None:
        facts = await alerts_of(gw, ops, "OPERATOR_ACTION")
        return [f for f in facts if f["identity_id"] == ops_id
                and json.loads(f["message"])["operation"] == "acknowledge"] or None

    await eventually(audited, 60, 0.2, message="the operator's acknowledgement fact")


async def test_retention_deletes_old_rows_of_whom_it_may_after_its_audit_fact(
    gw: Gateway,
) -> None:
    ch = gw.clickhouse
    alice, bob, ops_id = unique("alice"), unique("bob"), unique("ops")
    fresh = await submit(gw, alice)
    await finished(gw, [fresh])
    await landed(gw, [fresh])
    # Rows of 40 days ago, as the sink would have written them then.
    old = datetime.now(UTC) - timedelta(days=40)
    olds = {alice: f"old-{alice}", bob: f"old-{bob}"}
    for ident, rid in olds.items():
        ch.insert("requests", [[rid, ident, "u", "completed", 0.5, old, old, 1]],
                  ["request_id", "identity_id", "user_id", "status", "cost_usd", "request_ts",
                   "completed_at", "version"])
        ch.insert("llm_calls", [[rid, ident, "openai", "m", 0.5, 1, "ok", old, old, 1]],
                  ["request_id", "identity_id", "provider", "model", "cost_usd", "attempt",
                   "status", "request_ts", "ts", "version"])

    def present() -> set[str]:
        _, rows = ch.query(f"SELECT request_id FROM {ch.database}.requests FINAL "  # noqa: S608
                           "WHERE request_id IN %(ids)s",
                           {"ids": [fresh, *olds.values()]})
        return {str(r[0]) for r in rows}

    everything = {fresh, *olds.values()}
    assert present() == everything
    body = {"older_than_days": 30}
    url = f"{NOVA}/maintenance/retention"
    # Members and analysts may not; nobody may name another identity but an operator.
    for roles in (("member",), ("analyst",), ("approver",)):
        refused(await gw.http.post(url, headers=gw.auth(alice, *roles), json=body))
    refused(await gw.http.post(f"{url}?identity={bob}", headers=gw.auth(alice, "admin"),
                               json=body))
    for bad in ({"older_than_days": 0}, {"older_than_days": "30"}, {"days": 30}, {}):
        refused(await gw.http.post(url, headers=gw.auth(alice, "admin"), json=bad), 422)
    assert present() == everything

    # A dry run counts; an admin then deletes its identity's old rows, nothing else.
    admin = gw.auth(alice, "admin")
    r = await gw.http.post(url, headers=admin, json={**body, "dry_run": True})
    assert r.status_code == 200, r.text
    assert (r.json()["deleted"]["requests"], r.json()["deleted"]["llm_calls"]) == (1, 1)
    assert present() == everything
    r = await gw.http.post(url, headers=admin, json=body)
    assert r.status_code == 200, r.text
    assert (r.json()["identity"], r.json()["deleted"]["requests"]) == (alice, 1)
    assert present() == {fresh, olds[bob]}
    assert ch.scalar(f"SELECT count() FROM {ch.database}.llm_calls "  # noqa: S608
                     "WHERE request_id = %(r)s", {"r": olds[alice]}) == 0

    # An operator deletes every identity's; each run left its fact in the audit chain first.
    r = await gw.http.post(url, headers=gw.auth(ops_id, "operator"), json=body)
    assert r.status_code == 200, r.text
    assert r.json()["identity"] is None
    assert r.json()["deleted"]["requests"] >= 1
    assert present() == {fresh}

    async def chained() -> set[str] | None:
        _, rows = await asyncio.to_thread(ch.query, f"SELECT kind, identity_id, detail FROM "  # noqa: S608
                                          f"{ch.database}.audit_events FINAL "
                                          "WHERE kind IN ('RESOURCE_CHANGE', 'OPERATOR_ACTION')",
                                          None)
        found = {f"{r[0]}:{r[1]}" for r in rows
                 if json.loads(r[2]).get("resource_kind") == "analytics"
                 and json.loads(r[2]).get("resource_id") == "retention"}
        want = {f"RESOURCE_CHANGE:{alice}", f"OPERATOR_ACTION:{ops_id}"}
        return found if want <= found else None

    await eventually(chained, 60, 0.3, message="both retention facts in audit_events")
