"""A worker killed (SIGKILL) in the middle of LLM calls: after a restart every request
completes once. At most the interrupted call is repeated, never a completed one recorded twice.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from typing import Any

import pytest

from tests.integration.conftest import eventually, finished, llm_rows, submit

pytestmark = pytest.mark.integration

PROMPT = "Write a short poem about the sea"  # Anthropic first


async def test_sigkill_mid_call_then_restart_completes_each_request_once(
    gateway: Any, worker_factory: Any, llm_fake: Any,
):
    ch = gateway.clickhouse
    llm_fake.control("anthropic", latency_ms=3000)
    worker = worker_factory(llm_fake.env(NOVA_LLM_PROBE_INTERVAL_S="600"))
    alice = f"alice-{uuid.uuid4().hex[:8]}"
    ids = list(await asyncio.gather(*(submit(gateway, alice, PROMPT) for _ in range(5))))

    async def all_in_lane_f() -> bool:
        views = [gateway.services.tracker.get(rid) for rid in ids]
        return all(v is not None and "E" in v.lanes for v in views)

    await eventually(all_in_lane_f, 60, 0.05, message="every request past lane E")
    await asyncio.sleep(0.5)  # the calls are out, answers are 2.5 s away
    worker.kill(signal.SIGKILL)
    llm_fake.control("anthropic", latency_ms=200)
    worker.start()

    views = await finished(gateway, ids, timeout_s=150)
    assert {v.status for v in views.values()} == {"completed"}

    async def one_ok_each() -> list[dict[str, Any]] | None:
        rows = await asyncio.to_thread(llm_rows, ch, ids)
        ok = Counter(r["request_id"] for r in rows if r["status"] == "ok")
        return rows if set(ok) == set(ids) else None

    rows = await eventually(one_ok_each, 60, 0.2, message="an ok llm_calls row per request")
    ok = Counter(r["request_id"] for r in rows if r["status"] == "ok")
    assert ok == dict.fromkeys(ids, 1), rows
    per_request = llm_fake.summary()["by_request"]
    assert all(1 <= per_request.get(rid, 0) <= 2 for rid in ids), (
        per_request, [llm_fake.calls(rid) for rid in ids], rows)
