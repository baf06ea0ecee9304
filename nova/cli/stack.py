"""The whole stack in one foreground process tree: broker, worker, gateway (with the sink).

``nova up`` and ``nova demo`` share this. The broker and worker are child processes, each in a
session of its own (a terminal's Ctrl-C reaches only us) that the kernel terminates if we die
(PR_SET_PDEATHSIG); ``nova up`` supervises them (:mod:`nova.supervisor`: a dead one is reaped
and restarted) and, on Ctrl-C or SIGTERM, stops the gateway and the worker together, then the
broker, so every client leaves before the broker goes and no process is left behind.

A stop has one budget, :data:`STOP_S` from the signal to the last child gone, so that ``nova
up`` has exited within 10 s: the gateway answers its waiting requests at once and gives any
other request :data:`~gateway.app.GRACE_S`; the worker is killed if it has not stopped
:data:`BROKER_SHARE_S` before the end (a killed worker loses nothing: what it had not committed
is read again); the broker gets the rest, and is killed after (its log is recovered at the next
start; what it acknowledged was written with acks=all before it was). The gateway
runs in this process because it owns the embedded ClickHouse (one process per chdb path) and
serves read-only queries to everyone else; when its server ends on its own, the supervisor
restarts it here, its services rebuilt (:class:`InProcessGateway`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI

from gateway.app import GatewayServer, create_app, server_config
from gateway.services import Services, start_services, stop_services
from nova.errors import ConfigError
from nova.kafka import quiet_kafka_client
from nova.kafka.admin import provision
from nova.kafka.launcher import Broker, _die_with_parent, port_open
from nova.llm.fake_server import FakeServerThread
from nova.settings import Settings
from nova.signing import public_key_text
from nova.supervisor import BrokerChild, Child, FakeProvidersChild, WorkerChild, supervise

log = logging.getLogger(__name__)

# From Ctrl-C or SIGTERM to the last child gone; ``nova up`` exits right after (it skips the
# interpreter's teardown, nova.cli.serve.up), within 10 s.
STOP_S = 7.5
GATEWAY_STOP_S = 4.0  # the gateway's share: its grace for requests, then its clients
BROKER_SHARE_S = 2.0  # what the broker is left at least, for a clean shutdown


def spawn(
    module_args: list[str],
    settings: Settings,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``python -m nova <args>`` in its own session, as a child that dies with us."""
    env = {**os.environ, **settings.to_env(), **(extra_env or {})}
    env.pop("NOVA_WORKER_NAME", None)  # each child names itself after its own pid
    env.pop("NOVA_SIGNING_KEY", None)  # the gateway's signing key stays in the gateway
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "nova", *module_args],
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C is ours to handle: we stop it after the gateway
        preexec_fn=_die_with_parent,
    )


class InProcessGateway:
    """The gateway as a task of this process, restarted here by the supervisor (it owns the
    embedded ClickHouse, which one process opens at a time): :meth:`start` releases what an
    ended server held (its listening socket, its services) and builds everything again."""

    name = "gateway"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: Services | None = None
        self.app: FastAPI | None = None
        self.server: GatewayServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None]:
        assert self._task is not None, "the gateway was never started"
        return self._task

    async def start(self, services: Services | None = None) -> None:
        """Serve with ``services`` (already started), or with new ones; returns once serving."""
        await self._release(keep=services)
        self.services = services if services is not None else await start_services(self.settings)
        self.app = create_app(self.settings, services=self.services)
        # SIGINT and SIGTERM are ours (serve_forever) to stop everything in order.
        self.server = GatewayServer(server_config(self.app, self.settings), self.services,
                                    handle_signals=False)
        self._task = asyncio.create_task(self.server.serve(), name="gateway")
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise ConfigError("the gateway stopped during start-up")
            await asyncio.sleep(0.05)

    async def stop(self, timeout_s: float) -> None:
        """Stop serving (cancelled beyond ``timeout_s``) and release everything."""
        if self.server is not None and self._task is not None and not self._task.done():
            self.server.should_exit = True
            with contextlib.suppress(Exception):  # the server's own failure was reported
                await asyncio.wait_for(self._task, timeout_s)
        await self._release()

    async def _release(self, keep: Services | None = None) -> None:
        if self.server is not None:
            for listener in self.server.servers:  # a server that crashed left them open
                listener.close()
        if self.services is not None and self.services is not keep:
            await stop_services(self.services)  # the lifespan did, unless the server crashed


def worker_children(
    settings: Settings, spawn_worker: Callable[[dict[str, str]], subprocess.Popen[bytes]],
) -> list[WorkerChild]:
    """The ``NOVA_WORKERS`` lane workers, each started by ``spawn_worker(its extra env)``.

    They share one consumer group, so Kafka shares the partitions out among them; each has a
    static member id of its own (``NOVA_WORKER_INSTANCE``; the first keeps the configured one),
    or each would fence the others out of the group. One worker is named ``worker``, several
    ``worker 1``, ``worker 2``, … in the supervisor's lines."""
    count = settings.workers
    children = []
    for index in range(count):
        instance = settings.worker_instance if index == 0 else f"{settings.worker_instance}.{index}"
        env = {"NOVA_WORKER_INSTANCE": instance}
        children.append(WorkerChild(functools.partial(spawn_worker, env),
                                    "worker" if count == 1 else f"worker {index + 1}"))
    return children


@dataclass
class RunningStack:
    settings: Settings
    gateway: InProcessGateway
    workers: list[WorkerChild]
    broker: BrokerChild | None
    fake: FakeProvidersChild | None = None

    @property
    def app(self) -> FastAPI:
        """The gateway's app (a new one after the gateway was restarted)."""
        assert self.gateway.app is not None
        return self.gateway.app

    @property
    def children(self) -> list[Child]:
        """The processes (and server threads) the supervisor watches, in start order."""
        return [c for c in (self.fake, self.broker) if c is not None] + list(self.workers)


def has_real_providers(settings: Settings, env: Mapping[str, str] | None = None) -> bool:
    """True when a real provider can be called: an API key is set, or a provider's base URL is
    (a proxy or a self-hosted server, which may need no key)."""
    from nova.llm.registry import base_url_variable, load_registry

    source = os.environ if env is None else env
    return any(
        (spec.api_key_env and source.get(spec.api_key_env))
        or source.get(base_url_variable(spec.name))
        for spec in load_registry(settings.providers_file)
    )


@contextlib.asynccontextmanager
async def running_stack(settings: Settings) -> AsyncIterator[RunningStack]:
    """Start broker (unless external), topics, worker and gateway; stop them all on exit."""
    quiet_kafka_client(settings)
    if port_open(settings.gateway_port, settings.gateway_host):
        raise ConfigError(
            f"port {settings.gateway_port} is in use: set NOVA_GATEWAY_PORT to a free port"
        )
    fake: FakeProvidersChild | None = None
    if not settings.llm_fake_url and not has_real_providers(settings):
        fake = FakeProvidersChild(FakeServerThread().start())
        settings = settings.model_copy(update={"llm_fake_url": fake.server.url})
        print(
            "No LLM provider API key is set: using Nova's fake provider server at "
            f"{fake.server.url} "
            "(set ANTHROPIC_API_KEY, OPENAI_API_KEY, …, or a <PROVIDER>_BASE_URL, to call real "
            "providers).",
            flush=True,
        )
    broker: BrokerChild | None = None
    if not settings.external_kafka:
        broker = BrokerChild(Broker(settings))
        await asyncio.to_thread(broker.start)
        try:  # nova-admin creates the topics and the ACLs of every principal
            await provision(broker.broker.admin_settings)
        except BaseException:
            await asyncio.to_thread(broker.stop)
            raise
    workers: list[WorkerChild] = []
    gateway = InProcessGateway(settings)
    try:
        # Topics and the gateway's guards first: one that cannot be built stops us here, with
        # one line (StartupError), before a worker is spawned.
        services = await start_services(settings)
        gateway.services = services  # released by the gateway's stop, whatever happens next
        # The worker verifies with the gateway's public key and is never given the private one.
        public = {"NOVA_SIGNING_PUBLIC_KEY": public_key_text(services.signer.public)}
        extra = public if not settings.signing_public_key else {}
        workers = worker_children(settings, lambda env: spawn(["worker"], settings,
                                                              {**extra, **env}))
        for worker in workers:
            worker.start()
        await gateway.start(services)
        yield RunningStack(settings, gateway, workers, broker, fake)
    finally:
        deadline = time.monotonic() + STOP_S
        # Gateway and worker together, the broker after both: their Kafka clients say goodbye
        # to a broker that is still there.
        stopping = [asyncio.create_task(asyncio.to_thread(w.stop, STOP_S - BROKER_SHARE_S))
                    for w in workers]
        await gateway.stop(GATEWAY_STOP_S)
        if stopping:
            await asyncio.gather(*stopping)
        if broker is not None:
            await asyncio.to_thread(broker.stop, max(1.0, deadline - time.monotonic()))
        if fake is not None:
            fake.stop()


async def serve_forever(settings: Settings) -> int:
    """``nova up``: run and supervise until Ctrl-C or SIGTERM (0), or until a child cannot be
    kept alive (1, after one line saying which and why)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_stack(settings) as stack:
        print(
            f"Nova is up: gateway {settings.gateway_url} (docs at /docs), Kafka "
            f"{settings.bootstrap_servers}, ClickHouse {settings.clickhouse_url}. Ctrl-C stops.",
            flush=True,
        )
        code = await supervise(stack.children, stop, stack.gateway)
        print("Nova is stopping (gateway, worker, broker)…", flush=True)
    print("Nova stopped.", flush=True)
    return code
