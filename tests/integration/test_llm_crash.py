"""A worker killed (SIGKILL) in the middle of LLM calls: after a restart every request is
answered once, and no completed call is ever recorded twice.

By default (``NOVA_LLM_AFTER_CRASH=fail``) a provider is never called twice for one request:
the calls cut off by the kill are answered ``failed`` with an ``interrupted`` error. With
``retry`` they are called again and complete.
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


async def _kill_mid_call(gateway: Any, worker_factory: Any, llm_fake: Any,
                         **env: str) -> tuple[list[str], dict[str, Any]]:
    """Five requests whose calls are out when the worker is SIGKILLed, then restarted."""
    llm_fake.control("anthropic", latency_ms=3000)
    worker = worker_factory(llm_fake.env(NOVA_LLM_PROBE_INTERVAL_S="600", **env))
    alice = f"alice-{uuid.uuid4().hex[:8]}"
    ids = list(await asyncio.gather(*(submit(gateway, alice, PROMPT) for _ in range(5))))

    async def all_called() -> bool:
        return all(llm_fake.received(rid) for rid in ids)

    await eventually(all_called, 60, 0.05, message="every request's call at the provider")
    worker.kill(signal.SIGKILL)  # the answers are still seconds away
    llm_fake.control("anthropic", latency_ms=200)
    worker.start()
    return ids, await finished(gateway, ids, timeout_s=150)


async def test_a_call_cut_off_by_a_sigkill_is_answered_interrupted_and_never_made_twice(
    gateway: Any, worker_factory: Any, llm_fake: Any,
):
    ids, views = await _kill_mid_call(gateway, worker_factory, llm_fake)
    assert {v.status for v in views.values()} == {"failed"}, views
    for rid in ids:
        r = await gateway.http.get(f"/api/v2/nova/requests/{rid}",
                                   headers=gateway.auth(views[rid].identity_id, "member"))
        assert r.status_code == 200, r.text
        assert r.json()["error"].startswith("interrupted: "), r.text
        assert "Submit the request again" in r.json()["error"]
    assert {rid: len(llm_fake.received(rid)) for rid in ids} == dict.fromkeys(ids, 1)

    # the next request, on the restarted worker, is called once and completes
    after = await submit(gateway, f"alice-{uuid.uuid4().hex[:8]}", PROMPT)
    done = await finished(gateway, [after], timeout_s=60)
    assert done[after].status == "completed"
    assert len(llm_fake.received(after)) == 1


async def test_with_retry_a_call_cut_off_by_a_sigkill_is_made_again_and_completes_once(
    gateway: Any, worker_factory: Any, llm_fake: Any,
):
    ch = gateway.clickhouse
    ids, views = await _kill_mid_call(gateway, worker_factory, llm_fake,
                                      NOVA_LLM_AFTER_CRASH="retry")
    assert {v.status for v in views.values()} == {"completed"}

    async def one_ok_each() -> list[dict[str, Any]] | None:
        rows = await asyncio.to_thread(llm_rows, ch, ids)
        ok = Counter(r["request_id"] for r in rows if r["status"] == "ok")
        return rows if set(ok) == set(ids) else None

    rows = await eventually(one_ok_each, 60, 0.2, message="an ok llm_calls row per request")
    ok = Counter(r["request_id"] for r in rows if r["status"] == "ok")
    assert ok == dict.fromkeys(ids, 1), rows
    assert {rid: len(llm_fake.received(rid)) for rid in ids} == dict.fromkeys(ids, 2), rows
