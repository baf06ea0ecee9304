"""End to end on the real broker and embedded ClickHouse: HTTP in, seven lanes, rows out.

The gateway (in-process, running the sink) accepts requests over HTTP; the worker is a real
subprocess running the seven Faust lanes; what is asserted is what ClickHouse, the fake
providers and the ``completed`` topic recorded. One gateway and one worker serve the module;
tests stay apart by their own identities and request ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from analytics.client import ClickHouse
from nova.llm.fake_server import FakeServerThread
from nova.records import PipelineRecord
from tests.integration.conftest import (
    FakeLlm,
    Gateway,
    SessionBroker,
    WorkerProcess,
    eventually,
    llm_rows,
)
from tests.integration.live_helpers import live_stack, unique
from tests.integration.pipeline_checks import (
    DONE,
    LANES,
    lane_counts,
    lanes_per_request,
    post_requests,
    read_records,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def stack(broker: SessionBroker, clickhouse: ClickHouse, fake_llm: FakeServerThread,
                tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[tuple[Gateway, WorkerProcess]]:
    # The server's default wait is the setting's: a minute here, so that a loaded machine still
    # answers a plain POST with its outcome (the default is 10 s).
    async with live_stack(broker, clickhouse, tmp_path_factory.mktemp("e2e") / "data",
                          fake_llm, run_sink=True, sink_flush_interval_s=0.2,
                          default_wait_ms=60_000) as running:
        yield running


@pytest.fixture
def gateway(stack: tuple[Gateway, WorkerProcess]) -> Gateway:
    return stack[0]


async def test_one_request_over_http_shows_seven_lane_events(gateway: Gateway):
    headers = gateway.auth(unique("alice"), "member")
    r = await gateway.http.post("/api/v2/nova/requests", json={"prompt": "Summarise this thread"},
                                headers=headers)
    # A plain POST answers with the outcome, as the original system does (server default wait).
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed", r.json()
    assert r.json()["result"]
    assert "preference-applied" not in r.headers
    request_id = r.json()["request_id"]
    ch = gateway.clickhouse

    async def seven_rows() -> list[dict[str, Any]] | None:
        rows = await ch.arows(
            f"SELECT lane, status, worker FROM {ch.database}.lane_events FINAL "  # noqa: S608
            "WHERE request_id = %(rid)s ORDER BY lane", {"rid": request_id})
        return rows if len(rows) >= len(LANES) else None

    rows = await eventually(seven_rows, 60, message="seven lane rows in ClickHouse")
    assert [row["lane"] for row in rows] == list(LANES)
    assert all(row["status"] == "ok" for row in rows), rows
    assert len({row["worker"] for row in rows}) == 1  # one worker ran every lane

    async def final_view() -> dict[str, Any] | None:
        got = await gateway.http.get(f"/api/v2/nova/requests/{request_id}", headers=headers)
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body if len(body["lanes"]) == len(LANES) and body["status"] != "in_flight" else None

    body = await eventually(final_view, 30, message="the gateway to see all seven lanes")
    assert [lane["lane"] for lane in body["lanes"]] == list(LANES)
    assert body["status"] in DONE, body


async def test_hundred_requests_make_exactly_seven_hundred_lane_rows(gateway: Gateway):
    ids = await post_requests(gateway, 100, unique("alice"))
    assert len(set(ids)) == 100
    ch = gateway.clickhouse

    async def all_rows() -> dict[str, int] | None:
        counts = await asyncio.to_thread(lane_counts, ch, ids)
        return counts if counts["final"] >= 700 else None

    counts = await eventually(all_rows, 90, 0.5, message="700 lane rows for 100 requests")
    assert counts["final"] == 700
    assert counts["distinct"] == 700
    per_request = await asyncio.to_thread(lanes_per_request, ch, ids)
    assert per_request == {rid: "".join(LANES) for rid in ids}

    completed = {r.request_id: r
                 for r in await read_records(gateway.settings, "completed", PipelineRecord)}
    assert set(ids) <= set(completed)
    statuses = {completed[rid].status for rid in ids}
    assert statuses <= set(DONE), statuses
    assert all([t.lane for t in completed[rid].lanes] == list(LANES) for rid in ids)


async def test_a_seed_model_name_is_served_by_its_current_model_and_the_answer_says_so(
    gateway: Gateway, llm_fake: FakeLlm,
):
    headers = gateway.auth(unique("alice"), "member")

    async def served(prompt: str = "Summarise this thread", **body: Any) -> dict[str, Any]:
        r = await gateway.http.post("/api/v2/nova/requests", headers=headers, json={
            "prompt": prompt, "wait_ms": 60_000, **body})
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        assert answer["status"] == "completed", answer
        return answer

    # The seed's NovaLLM model id: served by its current Claude, and the answer says which.
    answer = await served(model="claude-3-haiku-20240307", role="nova")
    rid = answer["request_id"]
    execution = answer["execution"]
    assert (execution["provider"], execution["model"], execution["requested_model"]) == (
        "anthropic", "claude-haiku-4-5", "claude-3-haiku-20240307")
    assert [(c["provider"], c["model"]) for c in llm_fake.calls(rid)] == [
        ("anthropic", "claude-haiku-4-5")]  # what the provider was asked for
    ch = gateway.clickhouse

    async def row() -> list[dict[str, Any]]:
        return await asyncio.to_thread(llm_rows, ch, [rid])

    rows = await eventually(row, 30, message="the aliased call in llm_calls")
    assert [(r["provider"], r["model"], r["status"]) for r in rows] == [
        ("anthropic", "claude-haiku-4-5", "ok")]

    # Priority moves the routed provider's model: premium for high, the cheap one for low.
    high = (await served("Write a short poem about the sea", priority="high"))["execution"]
    assert (high["provider"], high["model"], high["priority"]) == (
        "anthropic", "claude-opus-4-6", "high")
    low = (await served(priority="low"))["execution"]  # an analysis: OpenAI's
    assert (low["provider"], low["model"], low["requested_model"]) == (
        "openai", "gpt-5-nano", None)

    # A name nobody serves, and another vendor's name for the Claude-locked role: 422, at once.
    for body, slug in (({"model": "gpt-0"}, "unknown-model"),
                       ({"model": "gpt-4o", "role": "nova"}, "locked-role"),
                       ({"model": "claude-3-haiku", "provider": "openai"}, "unknown-model"),
                       ({"priority": "urgent"}, "validation")):
        r = await gateway.http.post("/api/v2/nova/requests", headers=headers,
                                    json={"prompt": "Summarise this thread", **body})
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith(slug), r.json()
        assert "request_id" not in r.json()


async def test_prefer_asks_for_another_answer_than_the_outcome(
    gateway: Gateway, llm_fake: FakeLlm,
):
    headers = gateway.auth(unique("alice"), "member")

    async def post(prompt: str = "Summarise this thread", prefer: str | None = None,
                   **body: Any) -> Any:
        extra = {"Prefer": prefer} if prefer is not None else {}
        return await gateway.http.post("/api/v2/nova/requests", json={"prompt": prompt, **body},
                                       headers={**headers, **extra})

    # Held at a checkpoint: a plain POST is a 423 with the checkpoint, like the seed's.
    r = await post("Pay invoice INV-88 of 420 EUR to ACME")
    assert r.status_code == 423, r.text
    assert r.json()["status"] == "held"
    assert r.json()["checkpoint_id"]

    # respond-async: 202 at once, with where to follow it; the request still runs.
    r = await post(prefer="respond-async")
    assert r.status_code == 202, r.text
    assert r.headers["preference-applied"] == "respond-async"
    location = r.headers["location"]
    assert location == f"/api/v2/nova/requests/{r.json()['request_id']}"

    async def done() -> Any:
        got = (await gateway.http.get(location, headers=headers)).json()
        return got if got["status"] == "completed" else None

    await eventually(done, 60, message="the asynchronous request to complete")

    # wait=N bounds the wait: a provider slower than N seconds leaves the request in flight.
    llm_fake.control("openai", latency_ms=8_000)  # an analysis goes to OpenAI first
    r = await post(prefer="wait=1")
    assert r.status_code == 202, r.text
    assert r.headers["preference-applied"] == "wait=1"
    assert r.json()["status"] in ("accepted", "in_flight")
    llm_fake.control("openai", latency_ms=0)
    r = await post(prefer="wait=600")  # asked for more than the longest wait: capped, and said
    assert r.status_code == 200, r.text
    assert r.headers["preference-applied"] == "wait=120"

    # The body's wait_ms is the API's own and wins; unknown preferences are ignored.
    cases: list[tuple[dict[str, Any], str]] = [
        ({"wait_ms": 60_000}, "respond-async"), ({}, "return=minimal, handling=lenient")]
    for body, prefer in cases:
        r = await post(prefer=prefer, **body)
        assert r.status_code == 200, r.text
        assert "preference-applied" not in r.headers

    # A wait that is not a number of seconds is a 422 problem, and nothing was submitted.
    for bad in ("wait=soon", "wait=-1", "wait=1.5", "respond-async=yes"):
        r = await post(prefer=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/prefer")
        assert "request_id" not in r.json()
