"""The gateway's FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from analytics.client import ClickHouse
from gateway import problems
from gateway.routes import (
    analytics,
    auth,
    checkpoints,
    dataspaces,
    health,
    identities,
    llm,
    monitoring,
    requests,
    rules,
    threads,
)
from gateway.services import start_services, stop_services
from nova import __version__
from nova.settings import Settings


def create_app(settings: Settings, *, clickhouse: ClickHouse | None = None) -> FastAPI:
    """Build the app; Kafka and ClickHouse are connected in the lifespan, not here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await start_services(settings, clickhouse)
        if clickhouse is not None:
            services.extras["owns_clickhouse"] = False
        app.state.services = services
        try:
            yield
        finally:
            await stop_services(services)

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
    app.include_router(identities.router)
    app.include_router(threads.router)
    app.include_router(dataspaces.router)
    app.include_router(rules.router)
    app.include_router(llm.router)
    app.include_router(monitoring.router)
    return app
