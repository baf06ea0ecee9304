"""The gateway app's own routes, in the order the router tries them, without serving it.

``create_app`` builds the app without connecting anything (Kafka and ClickHouse are the
lifespan's), so unit tests can walk what it serves. FastAPI keeps an included router as one
entry of ``app.router.routes`` that points at the router it includes (``original_router``);
the gateway includes its routers without a prefix of their own (each route module's
``APIRouter`` carries its full prefix), so a route's ``path`` is the path the app serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute

from gateway.app import create_app
from nova.settings import load_settings


def build_app() -> FastAPI:
    return create_app(load_settings(environment="test"))


def _walk(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _walk(included.routes)
        else:
            yield route


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every HTTP route of the gateway's own routers (not FastAPI's /docs and /openapi.json)."""
    return [r for r in _walk(app.router.routes) if isinstance(r, APIRoute)]


def websocket_routes(app: FastAPI) -> list[APIWebSocketRoute]:
    return [r for r in _walk(app.router.routes) if isinstance(r, APIWebSocketRoute)]


def query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route reads, its dependencies' included (``?identity=`` of the
    monitoring scope is a dependency's)."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= query_names(sub)
    return names
