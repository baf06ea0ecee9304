"""Real components for integration tests, started by the project's own launcher.

- ``broker``: one real Kafka broker per session, started by the project's own launcher (free
  ports, temporary directory) exactly as ``nova up`` runs it: SASL/SCRAM-SHA-512 only, the
  StandardAuthorizer, ACLs per principal. Never skipped: if it cannot start, tests fail. (An
  external KAFKA_BOOTSTRAP_SERVERS is not used: the tests prove the broker's ACLs.)
- ``clickhouse``: one embedded ClickHouse (chdb) per session (a process may own one chdb path);
  each test gets its own database.
- ``settings``: unique topic prefix, data dir and database per test, so tests never see each
  other's records; LLM calls go to the session's fake provider server (``fake_llm``). The
  prefix is provisioned (topics and every principal's ACLs) before the test runs. The settings
  log in as ``nova-admin``: the test harness is the operator. The components under test log in
  as their own principals (the gateway as ``nova-gateway``, the worker subprocess as
  ``nova-worker``); ``settings.as_client(role)`` gives any principal's settings.
- ``worker_factory``: the lane worker as a real process (``nova worker``, forked from a server
  that has imported it once: ``worker_fork``) that tests can SIGKILL and restart.
- ``gateway``: the FastAPI gateway served by uvicorn in the test's event loop on a free port,
  sharing the session's ClickHouse (it runs the sink too).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from analytics.client import ClickHouse
from gateway.app import create_app, server_config
from nova.auth.tokens import issue_token
from nova.kafka.admin import provision
from nova.kafka.launcher import Broker, BrokerLayout, free_port
from nova.llm.fake_server import FakeServerThread
from nova.settings import KafkaClient, Settings, load_settings
from nova.signing import load_signer
from tests.integration.worker_fork import ForkedWorker, fork_worker, start_forkserver

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SessionBroker:
    """The session's SASL broker: where it listens and where its principals' passwords are."""

    bootstrap: str
    credentials: Path

    def settings(self, role: KafkaClient = "admin", **overrides: Any) -> Settings:
        """Settings of a client of this broker logging in as ``role``."""
        return load_settings(
            kafka_bootstrap_servers=self.bootstrap, kafka_credentials_dir=self.credentials,
            kafka_client=role, kafka_security_protocol=None, kafka_sasl_username=None,
            kafka_sasl_password=None, **overrides)


# The modules that take longest, longest first. `make test` hands whole modules to its two
# processes in collection order (``--no-loadscope-reorder``: xdist would otherwise order them by
# their number of tests, which put the one-test chaos and contract runs, two and one and a half
# minutes, last, and left one process idle for their length). Longest first, the short ones
# fill in behind them.
LONGEST_FIRST = ("test_chaos.py", "test_openapi_contract.py", "test_nova_up_operations.py",
                 "test_audit_fencing.py", "test_kafka_launcher.py", "test_second_opinion.py",
                 "test_worker_restart.py", "test_worker_scale_out.py", "test_audit_verify.py",
                 "test_llm_crash.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each module's tests, and the other modules, keep their order


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionBroker]:
    home = tmp_path_factory.mktemp("kafka")
    settings = load_settings(data_dir=home)
    layout = BrokerLayout(home=home / "kafka", port=free_port(), controller_port=free_port())
    b = Broker(settings, layout)
    start_forkserver()  # the workers' imports, done while the broker starts
    b.start(attached=True)
    try:
        yield SessionBroker(layout.bootstrap, layout.credentials)
    finally:
        b.stop()


_PROVISIONED: set[str] = set()  # topic prefixes whose topics and ACLs exist on the broker


def provisioned(settings: Settings) -> Settings:
    """``settings`` after its prefix's topics and ACLs exist (from a thread: no running loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, provision(settings)).result()
    _PROVISIONED.add(settings.topic_prefix)
    return settings


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouse]:
    path = tmp_path_factory.mktemp("chdb")
    ch = ClickHouse(f"chdb://{path}", database="nova_session")
    yield ch
    ch.close()


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeServerThread]:
    """Nova's fake provider server (Anthropic and OpenAI-compatible APIs) on loopback."""
    server = FakeServerThread().start()
    yield server
    server.stop()


@pytest.fixture
def settings(broker: SessionBroker, tmp_path: Path, fake_llm: FakeServerThread) -> Settings:
    tag = uuid.uuid4().hex[:10]
    return provisioned(broker.settings(
        environment="test",
        data_dir=tmp_path / "data",
        topic_prefix=f"t{tag}",
        topic_partitions=4,
        clickhouse_database=f"t_{tag}",
        gateway_port=free_port(),
        sink_flush_interval_s=0.2,
        log_level="warning",
        llm_fake_url=fake_llm.url,
        checkpoint_sweep_s=0.5,
    ))


@dataclass
class WorkerProcess:
    """A lane worker subprocess that tests may kill (SIGKILL) and restart."""

    settings: Settings
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: ForkedWorker | None = None
    log_path: Path | None = None

    def start(self) -> WorkerProcess:
        # The gateway's key pair must exist for the worker to verify decisions with its public
        # half (the harness is the operator that started the gateway once on this data dir).
        load_signer(self.settings)
        env = {**os.environ, **self.settings.to_env(), **self.extra_env}
        env.pop("NOVA_WORKER_NAME", None)
        self.log_path = self.settings.data_dir / f"worker-{time.monotonic_ns()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = fork_worker(env, REPO, self.log_path)  # `nova worker`, imports done once
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(30)

    def discard(self) -> None:
        """End it without the graceful stop (which takes some 2 s): for a test that is over."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


@pytest.fixture
def worker_factory(settings: Settings) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def make(extra_env: dict[str, str] | None = None, s: Settings | None = None) -> WorkerProcess:
        w = WorkerProcess(s or settings, dict(extra_env or {})).start()
        started.append(w)
        return w

    yield make
    for w in started:  # what a test checks happened before its end: no graceful stop needed
        w.discard()


@dataclass
class Gateway:
    settings: Settings
    url: str
    app: Any
    http: httpx.AsyncClient
    clickhouse: ClickHouse

    def token(self, identity: str, *roles: str, sub: str | None = None) -> str:
        return issue_token(self.settings, sub=sub or f"user-{identity}", identity=identity,
                           roles=roles or ("member",), now=datetime.now(UTC))

    def auth(self, identity: str, *roles: str, sub: str | None = None) -> dict[str, str]:
        """A bearer header; ``sub`` names another person of the identity (four eyes)."""
        return {"Authorization": f"Bearer {self.token(identity, *roles, sub=sub)}"}

    @property
    def services(self) -> Any:
        return self.app.state.services


@contextlib.asynccontextmanager
async def serve_gateway(settings: Settings, ch: ClickHouse) -> AsyncIterator[Gateway]:
    if settings.topic_prefix not in _PROVISIONED:
        await provision(settings)  # harness settings log in as nova-admin, the app as nova-gateway
        _PROVISIONED.add(settings.topic_prefix)
    app = create_app(settings, clickhouse=ch)
    config = server_config(app, settings)  # nova gateway's own (keep-alive, grace)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    url = f"http://127.0.0.1:{settings.gateway_port}"
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        try:
            yield Gateway(settings, url, app, http, ch)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 30)


@pytest.fixture
async def gateway(settings: Settings, clickhouse: ClickHouse) -> AsyncIterator[Gateway]:
    ch = clickhouse.with_database(settings.clickhouse_database)
    async with serve_gateway(settings, ch) as gw:
        yield gw


async def eventually(check: Callable[[], Awaitable[Any]], timeout_s: float = 60.0,
                     interval_s: float = 0.2, message: str = "condition") -> Any:
    """Poll ``check`` until it returns a truthy value; fail with ``message`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {message} (last: {last!r})")


# --------------------------------------------------------------------------------------------
# Added for the entity / identity boundary tests: one gateway shared by a whole test module.
# Tests using it stay independent by creating their own uniquely named identities.
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
async def module_gateway(
    broker: SessionBroker, clickhouse: ClickHouse, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    tag = uuid.uuid4().hex[:10]
    module_settings = broker.settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("gateway") / "data",
        topic_prefix=f"t{tag}",
        topic_partitions=4,
        clickhouse_database=f"t_{tag}",
        gateway_port=free_port(),
        run_sink=False,
        log_level="warning",
    )
    ch = clickhouse.with_database(module_settings.clickhouse_database)
    async with serve_gateway(module_settings, ch) as gw:
        yield gw


# ==== LLM routing (tests/integration/test_llm_*.py) ========================================
# Tests drive the session's fake provider server (``fake_llm``, already in every test's
# settings as ``llm_fake_url``) through its HTTP control API. ``llm_fake`` resets controls and
# the call log before and after each test; tests use fresh request ids, so they stay apart.


@dataclass
class FakeLlm:
    """The fake server's control API, as the LLM tests use it."""

    url: str

    def control(self, provider: str, **changes: Any) -> dict[str, Any]:
        r = httpx.post(f"{self.url}/_control/{provider}", json=changes, timeout=10)
        r.raise_for_status()
        return dict(r.json())

    def reset(self) -> None:
        httpx.post(f"{self.url}/_control/reset", timeout=10).raise_for_status()

    def calls(self, request_id: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/_calls/{request_id}", timeout=10)
        r.raise_for_status()
        return list(r.json())

    def summary(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/_calls", timeout=10).json())

    def received(self, request_id: str) -> list[dict[str, Any]]:
        """The completion requests for ``request_id`` the server has received (counted as
        they arrive, before any latency: a call cut off mid-way counts)."""
        r = httpx.get(f"{self.url}/_bodies/{request_id}", timeout=10)
        r.raise_for_status()
        return list(r.json())

    def env(self, **extra: str) -> dict[str, str]:
        """Worker environment pointing lane F at this server (plus ``extra`` settings)."""
        return {"NOVA_LLM_FAKE_URL": self.url, **extra}


@pytest.fixture
def llm_fake(fake_llm: FakeServerThread) -> Iterator[FakeLlm]:
    fake = FakeLlm(fake_llm.url)
    fake.reset()
    yield fake
    fake.reset()


# A submission answers with its outcome within a wait (gateway.prefer); tests that follow a
# request themselves ask for the receipt at once, as RFC 7240 says.
RESPOND_ASYNC = {"Prefer": "respond-async"}


async def submit(gw: Gateway, identity: str, prompt: str = "Summarise this thread",
                 **body: Any) -> str:
    """Submit one request as ``identity`` (a member), answered 202 at once; its request id."""
    r = await gw.http.post("/api/v2/nova/requests", json={"prompt": prompt, **body},
                           headers={**gw.auth(identity, "member"), **RESPOND_ASYNC})
    assert r.status_code == 202, r.text
    return str(r.json()["request_id"])


async def finished(gw: Gateway, request_ids: list[str], timeout_s: float = 90.0) -> dict[str, Any]:
    """Wait until every request is final (gateway tracker); request id → its view."""

    async def all_done() -> dict[str, Any] | None:
        views = {rid: gw.services.tracker.get(rid) for rid in request_ids}
        if all(v is not None and v.finished for v in views.values()):
            return views
        return None

    views: dict[str, Any] = await eventually(all_done, timeout_s, 0.1,
                                             message=f"{len(request_ids)} requests to finish")
    return views


def llm_rows(ch: ClickHouse, request_ids: list[str]) -> list[dict[str, Any]]:
    """``llm_calls`` rows (FINAL) of these requests, by request then attempt."""
    return ch.rows(
        "SELECT request_id, attempt, provider, model, status, error, fallback_from, cost_usd "  # noqa: S608
        f"FROM {ch.database}.llm_calls FINAL WHERE request_id IN %(ids)s "
        "ORDER BY request_id, attempt", {"ids": request_ids})
