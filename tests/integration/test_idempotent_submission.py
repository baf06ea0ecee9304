"""Idempotent submission (issue 14, item 9): two gateways sharing the real broker.

A retry with the same ``Idempotency-Key`` answers with the request the first attempt created
(same id, same outcome) at either gateway; the key with another body is 422; a request the
gateway knows is never produced twice; and a client whose POST timed out while the broker was
away learns on retrying that its request was accepted, and what became of it (the issue's
"2 of 300" lost answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from analytics.client import ClickHouse
from nova.kafka.launcher import free_port
from nova.records import PipelineRecord
from nova.settings import Settings
from tests.integration.conftest import Gateway, serve_gateway
from tests.integration.pipeline_checks import read_records

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
WAIT = 60_000


@pytest.fixture
async def second_gateway(settings: Settings, clickhouse: ClickHouse,
                         gateway: Gateway) -> AsyncIterator[Gateway]:
    """Another gateway process on the same topics (no sink of its own)."""
    other = settings.model_copy(update={"gateway_port": free_port(), "run_sink": False})
    async with serve_gateway(other, clickhouse.with_database(settings.clickhouse_database)) as gw:
        yield gw


def headers(gw: Gateway, identity: str, key: str, *roles: str) -> dict[str, str]:
    return {**gw.auth(identity, *(roles or ("member",))), "Idempotency-Key": key}


async def records_of(settings: Settings, request_id: str) -> list[PipelineRecord]:
    return [r for r in await read_records(settings, "requests", PipelineRecord)
            if r.request_id == request_id]


async def test_a_retry_at_another_gateway_answers_with_the_first_request(
    gateway: Gateway, second_gateway: Gateway, worker_factory: Any, llm_fake: Any
) -> None:
    a, b = gateway, second_gateway
    worker_factory()
    identity, key = f"idem-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    body = {"prompt": "Summarise this thread about the Q3 roadmap", "wait_ms": WAIT}

    first = await a.http.post("/api/v2/nova/requests", json=body, headers=headers(a, identity, key))
    assert first.status_code == 200, first.text
    request_id = first.json()["request_id"]
    assert first.json()["status"] == "completed"
    assert "idempotent-replayed" not in first.headers

    for gw in (b, a):  # the retry, at the other gateway and at the same one
        again = await gw.http.post("/api/v2/nova/requests", json=body,
                                   headers=headers(gw, identity, key))
        assert again.status_code == 200, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert (again.json()["request_id"], again.json()["status"], again.json()["result"]) == (
            request_id, "completed", first.json()["result"])
    # How long to wait for the answer is no part of the request: a retry may change it.
    again = await b.http.post("/api/v2/nova/requests", json={**body, "wait_ms": 0},
                              headers=headers(b, identity, key))
    assert (again.status_code, again.json()["request_id"]) == (200, request_id)

    reused = await b.http.post("/api/v2/nova/requests", json={**body, "prompt": "Pay Bob 5 EUR"},
                               headers=headers(b, identity, key))
    assert reused.status_code == 422, reused.text
    assert reused.headers["content-type"].startswith(PROBLEM)
    assert reused.json()["type"].endswith("/idempotency-key-reused")
    assert reused.json()["request_id"] == request_id

    other = await b.http.post("/api/v2/nova/requests", json=body,
                              headers=headers(b, f"{identity}-2", key))
    assert other.status_code == 200, other.text
    assert other.json()["request_id"] != request_id  # keys belong to one identity

    assert len(await records_of(a.settings, request_id)) == 1  # known: never produced again
    assert len(llm_fake.calls(request_id)) == 1


async def test_a_retried_payment_is_held_once_at_either_gateway(
    gateway: Gateway, second_gateway: Gateway, worker_factory: Any
) -> None:
    a, b = gateway, second_gateway
    worker_factory()
    identity, key = f"idem-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    body = {"prompt": "Pay the invoice of 500 EUR to Marie today", "wait_ms": WAIT}
    first = await a.http.post("/api/v2/nova/requests", json=body, headers=headers(a, identity, key))
    assert first.status_code == 423, first.text
    again = await b.http.post("/api/v2/nova/requests", json=body,
                              headers=headers(b, identity, key))
    assert again.status_code == 423, again.text
    assert (again.json()["request_id"], again.json()["checkpoint_id"]) == (
        first.json()["request_id"], first.json()["checkpoint_id"])
    assert len(await records_of(a.settings, first.json()["request_id"])) == 1


async def test_simultaneous_retries_at_two_gateways_name_one_request(
    gateway: Gateway, second_gateway: Gateway, worker_factory: Any, llm_fake: Any
) -> None:
    """Neither gateway knows of the other's attempt: both name the same derived id, so the
    request runs once even if both wrote it."""
    a, b = gateway, second_gateway
    worker_factory()
    identity, key = f"idem-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    body = {"prompt": "Translate 'good morning' into French"}
    answers = await asyncio.gather(*(
        gw.http.post("/api/v2/nova/requests", json=body, headers=headers(gw, identity, key))
        for gw in (a, b)))
    assert {r.status_code for r in answers} <= {200, 202}, [r.text for r in answers]
    ids = {r.json()["request_id"] for r in answers}
    assert len(ids) == 1
    (request_id,) = ids
    done = await a.http.post("/api/v2/nova/requests", json={**body, "wait_ms": WAIT},
                             headers=headers(a, identity, key))
    assert (done.status_code, done.json()["status"]) == (200, "completed"), done.text
    assert 1 <= len(await records_of(a.settings, request_id)) <= 2
    assert len(llm_fake.calls(request_id)) == 1  # written twice at most, run once


# -- a broker outage ------------------------------------------------------------------------
def _listening_pid(port: int) -> int | None:
    """The process listening on ``port`` on this machine, from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return int(proc.name)
    return None


def _descends_from_us(pid: int) -> bool:
    me = os.getpid()
    while pid > 1:
        if pid == me:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


@contextlib.contextmanager
def broker_paused(bootstrap: str) -> Iterator[None]:
    """SIGSTOP this test run's own broker (SIGCONT on leaving, whatever happens)."""
    pid = _listening_pid(int(bootstrap.split(",")[0].rsplit(":", 1)[1]))
    # The session broker is always this run's own (conftest starts it; no external cluster),
    # so not finding it is a failure of the harness, never a reason to skip.
    assert pid is not None, f"no process listens on the session broker's port ({bootstrap})"
    assert _descends_from_us(pid), f"the broker on {bootstrap} is not this test run's"
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_a_post_that_timed_out_in_a_broker_outage_learns_its_fate_on_retry(
    gateway: Gateway, second_gateway: Gateway, worker_factory: Any, llm_fake: Any,
) -> None:
    a, b = gateway, second_gateway
    worker_factory()
    identity, key = f"idem-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    body = {"prompt": "Write a short poem about the sea"}
    warm = await a.http.post("/api/v2/nova/requests", json={**body, "wait_ms": WAIT},
                             headers=a.auth(identity, "member"))
    assert warm.status_code == 200, warm.text  # the pipeline runs before the outage

    with broker_paused(a.settings.bootstrap_servers):
        async with httpx.AsyncClient(base_url=a.url, timeout=3) as impatient:
            with pytest.raises(httpx.TimeoutException):
                await impatient.post("/api/v2/nova/requests", json=body,
                                     headers=headers(a, identity, key))
        await asyncio.sleep(1)  # the outage goes on a little after the client gave up

    # The retry waits for the first attempt's write, which the producer finishes once the
    # broker answers again (it may first time out a request sent into the pause).
    retry = await a.http.post("/api/v2/nova/requests", json={**body, "wait_ms": WAIT},
                              headers=headers(a, identity, key), timeout=150)
    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "completed"
    assert retry.headers["idempotent-replayed"] == "true"  # the first attempt was accepted
    request_id = retry.json()["request_id"]
    assert len(await records_of(a.settings, request_id)) == 1
    assert len(llm_fake.calls(request_id)) == 1
    at_b = await b.http.post("/api/v2/nova/requests", json=body,
                             headers=headers(b, identity, key))
    assert (at_b.status_code, at_b.json()["request_id"]) == (200, request_id), at_b.text
