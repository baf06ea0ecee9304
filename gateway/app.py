"""The gateway's FastAPI application factory, and ``nova gateway``'s server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from fastapi import FastAPI

from analytics.client import ClickHouse
from gateway import problems
from gateway.live.messages import MAX_FRAME
from gateway.routes import (
    agents,
    alerts,
    analytics,
    auth,
    checkpoints,
    console,
    dataspaces,
    health,
    identities,
    keys,
    live,
    llm,
    meetings,
    monitoring,
    monitoring_changes,
    requests,
    rules,
    spheres,
    threads,
    users,
)
from gateway.services import Services, start_services, stop_services
from nova import __version__, heap
from nova.kafka import quiet_kafka_client
from nova.settings import Settings


def create_app(
    settings: Settings,
    *,
    clickhouse: ClickHouse | None = None,
    services: Services | None = None,
) -> FastAPI:
    """Build the app; Kafka and ClickHouse are connected in the lifespan, not here.

    With ``services`` already started (:func:`serve`, ``nova up``), the lifespan takes them
    over and stops them on shutdown instead of starting its own.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = services if services is not None else await start_services(settings, clickhouse)
        app.state.services = running
        try:
            yield
        finally:
            await stop_services(running)

    app = FastAPI(
        title="Nova gateway",
        version=__version__,
        description="Governance-first LLM request pipeline: submit requests, follow them, "
        "decide checkpoints, read costs and health.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(health.router)
    app.include_router(requests.router)
    app.include_router(analytics.router)
    app.include_router(checkpoints.router)
    app.include_router(auth.router)
    app.include_router(keys.router)
    app.include_router(identities.router)
    app.include_router(users.router)
    app.include_router(spheres.router)
    app.include_router(threads.router)
    app.include_router(dataspaces.router)
    app.include_router(meetings.router)
    app.include_router(agents.router)
    app.include_router(rules.router)
    app.include_router(llm.router)
    app.include_router(monitoring.router)
    app.include_router(monitoring_changes.router)
    app.include_router(live.router)
    app.include_router(console.router)
    app.include_router(alerts.router)
    return app


class GatewayServer(uvicorn.Server):
    """uvicorn for the gateway: when it starts shutting down, requests waiting for an outcome
    (``wait_ms``) answer at once with their request as it stands, so a stop is not held up by a
    client's wait; a request still running after :data:`GRACE_S` is cancelled.

    ``handle_signals=False`` leaves SIGINT and SIGTERM to the caller (``nova up`` decides when
    and in which order everything stops); uvicorn would otherwise stop serving at once and
    re-raise the signal afterwards.
    """

    def __init__(self, config: uvicorn.Config, services: Services, *,
                 handle_signals: bool = True) -> None:
        super().__init__(config)
        self.services = services
        self.handle_signals = handle_signals

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if not self.handle_signals:
            yield
            return
        with super().capture_signals():
            yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        heap.settle()  # the services and the app live as long as the server (nova.heap)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.services.tracker.release_waiters()
        await super().shutdown(sockets)


# How long a stopping gateway lets a request that is not waiting on wait_ms finish before it is
# cancelled: short, so that ``nova up`` stops within 10 s (nova.cli.stack.STOP_S); what such a
# request wrote before it was cancelled is on the broker, where its client can read it back.
GRACE_S = 2
# An idle keep-alive connection is closed by the client first: uvicorn's default 5 s equals
# httpx's pool expiry, and a request sent on a connection the server closes at that moment
# fails with a read error (the SIGKILL restart test met it). 75 s, as load balancers use.
KEEP_ALIVE_S = 75


def server_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(app, host=settings.gateway_host, port=settings.gateway_port,
                          log_level="warning", lifespan="on", timeout_graceful_shutdown=GRACE_S,
                          timeout_keep_alive=KEEP_ALIVE_S, ws_max_size=MAX_FRAME)


async def serve(settings: Settings) -> None:
    """``nova gateway``: start every collaborator, then serve HTTP until stopped.

    The services are started before the server, so a guard that cannot be built ends the
    process with a one-line :class:`~nova.errors.StartupError` instead of a server log with a
    traceback; the app's lifespan stops them on shutdown (before uvicorn re-raises a signal).
    """
    quiet_kafka_client(settings)  # as the worker and `nova up`: no aiokafka retry noise
    services = await start_services(settings)
    try:
        app = create_app(settings, services=services)
        await GatewayServer(server_config(app, settings), services).serve()
    finally:
        await stop_services(services)  # nothing left to do when the lifespan stopped them
