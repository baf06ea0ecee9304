"""Every monitoring route that counts an identity's data decides whose through one dependency.

``gateway.routes.monitoring.monitoring_scope`` is where a non-operator naming another identity
becomes a 403 and an IDENTITY_BOUNDARY fact; a route reading ``?identity=`` itself would skip
that. Walks the routes' dependency trees (nothing runs, nothing connects).
"""

from __future__ import annotations

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from gateway.routes import llm, monitoring, monitoring_changes
from gateway.routes.monitoring import monitoring_scope


def _takes_identity(dependant: Dependant) -> bool:
    return any(p.name == "identity" for p in dependant.query_params)


def _routes() -> list[APIRoute]:
    return [r for m in (monitoring, monitoring_changes) for r in m.router.routes
            if isinstance(r, APIRoute)]


def test_no_monitoring_route_reads_the_identity_parameter_itself() -> None:
    assert [r.path for r in _routes() if _takes_identity(r.dependant)] == []


def test_the_routes_over_identities_data_take_the_scope_dependency() -> None:
    scoped = {r.path for r in _routes()
              if any(d.call is monitoring_scope for d in r.dependant.dependencies)}
    assert scoped == {
        "/api/v2/llm/monitoring/dashboard", "/api/v2/llm/monitoring/costs",
        "/api/v2/llm/monitoring/costs/summary", "/api/v2/llm/monitoring/fallback/stats",
        "/api/v2/llm/monitoring/alerts", "/api/v2/nova/monitoring/dashboard",
        "/api/v2/nova/monitoring/stats", "/api/v2/nova/monitoring/costs",
        "/api/v2/llm/monitoring/costs/by-provider", "/api/v2/llm/monitoring/costs/by-model",
        "/api/v2/llm/monitoring/costs/by-identity", "/api/v2/nova/monitoring/stats/lanes",
        "/api/v2/nova/monitoring/stats/task-types", "/api/v2/nova/monitoring/stats/actions",
        "/api/v2/nova/monitoring/costs/by-identity", "/api/v2/nova/monitoring/costs/by-sphere",
        "/api/v2/nova/monitoring/costs/by-task-type", "/api/v2/nova/monitoring/pipelines",
        "/api/v2/nova/monitoring/maintenance/retention",
    }
    dependency = next(d for r in _routes() for d in r.dependant.dependencies
                      if d.call is monitoring_scope)
    assert _takes_identity(dependency)


def test_the_fallback_chains_alias_is_the_bare_route() -> None:
    """``/fallback/chains`` (the report's path) is ``/fallback``: one handler, so one answer and
    the same dependencies (a principal; no identity scope: chains are nobody's)."""
    by_path = {r.path: r for r in llm.router.routes if isinstance(r, APIRoute)}
    bare = by_path["/api/v2/llm/monitoring/fallback"]
    alias = by_path["/api/v2/llm/monitoring/fallback/chains"]
    assert alias.endpoint is bare.endpoint
    assert (alias.methods, alias.responses) == (bare.methods, bare.responses)
    assert [d.call for d in alias.dependant.dependencies] == [
        d.call for d in bare.dependant.dependencies]
