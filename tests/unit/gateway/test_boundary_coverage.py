"""Every route that can reach another identity's data is in the cross-identity matrix.

A route reaches another identity's data when it takes an id in its path or the identity scope
(``?identity=``, the monitoring scope dependency's or a list's). Each such route is either a row
of ``MATRIX`` (``tests/integration/test_identity_boundary.py``: another identity's token is a
403, no data, nothing changed, one boundary fact) or on :data:`EXEMPT` below with the reason,
so a route added later fails here until someone decides which. Walks the app's routes without
serving it (nothing connects).
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from tests.app_routes import api_routes, build_app, query_names
from tests.integration.test_identity_boundary import MATRIX

Key = tuple[str, str]  # (method, the route's path template)

OWN_MATRIX_AGENTS = "own matrix: tests/integration/test_agents.py::" \
    "test_other_identities_cannot_see_private_agents_or_change_any"
OWN_MATRIX_WEBHOOKS = "own matrix: tests/integration/test_alert_webhooks.py::" \
    "test_destinations_belong_to_their_identity_and_need_the_right_role"
OWN_MATRIX_CHECKPOINTS = "own matrix (a held request needs a worker): " \
    "tests/integration/test_checkpoints.py::test_only_an_approver_of_the_owning_identity_may_decide"
PROVIDER_WIDE = "provider-wide: a provider's health and limits are the same for every identity"
OPERATOR_ONLY = "operator-only and provider-wide: anyone else is a role refusal, no identity's data"

EXEMPT: dict[Key, str] = {
    # Agents and alert destinations are owned resources with a matrix of their own.
    ("GET", "/api/v2/agents/{agent_id}"): OWN_MATRIX_AGENTS,
    ("PATCH", "/api/v2/agents/{agent_id}"): OWN_MATRIX_AGENTS,
    ("DELETE", "/api/v2/agents/{agent_id}"): OWN_MATRIX_AGENTS,
    ("POST", "/api/v2/agents/{agent_id}/ratings"): OWN_MATRIX_AGENTS,
    ("GET", "/api/v2/alerts/webhooks/{webhook_id}"): OWN_MATRIX_WEBHOOKS,
    ("DELETE", "/api/v2/alerts/webhooks/{webhook_id}"): OWN_MATRIX_WEBHOOKS,
    ("GET", "/api/v2/governance/checkpoints/{checkpoint_id}"): OWN_MATRIX_CHECKPOINTS,
    ("POST", "/api/v2/governance/checkpoints/{checkpoint_id}/approve"): OWN_MATRIX_CHECKPOINTS,
    ("POST", "/api/v2/governance/checkpoints/{checkpoint_id}/reject"): OWN_MATRIX_CHECKPOINTS,
    # Spheres are a shared vocabulary, like providers (gateway/routes/spheres.py).
    ("GET", "/api/v2/spheres/{sphere_id}"): "shared vocabulary: nothing in a sphere belongs "
    "to an identity",
    ("GET", "/api/v2/llm/monitoring/health/{provider}"): PROVIDER_WIDE,
    ("GET", "/api/v2/llm/monitoring/health/{provider}/history"): PROVIDER_WIDE,
    ("GET", "/api/v2/llm/monitoring/rate-limits/{provider}"): PROVIDER_WIDE,
    ("PUT", "/api/v2/llm/monitoring/rate-limits/{provider}"): OPERATOR_ONLY,
    ("POST", "/api/v2/llm/monitoring/rate-limits/{provider}/reset"): OPERATOR_ONLY,
    ("POST", "/api/v2/llm/monitoring/health/{provider}/check"): OPERATOR_ONLY,
    # The console's static files: the {name} is a file of the bundle, no identity's.
    ("GET", "/console/{name}"): "static console assets, the same for everyone",
}


@pytest.fixture(scope="module")
def routes() -> list[APIRoute]:
    return api_routes(build_app())


def reaching(routes: list[APIRoute]) -> set[Key]:
    """The routes taking a path id or the identity scope."""
    return {(m, r.path) for r in routes for m in r.methods or ()
            if r.dependant.path_params or "identity" in query_names(r.dependant)}


def resolve(routes: list[APIRoute], method: str, path: str) -> Key | None:
    """The route the router would pick for a MATRIX row (its placeholders, ``{thread}``,
    stand in for ids), the first in the app's order, as Starlette's routing does."""
    bare = path.split("?")[0]
    for route in routes:
        if method in (route.methods or ()) and route.path_regex.match(bare):
            return method, route.path
    return None


def matrix_keys(routes: list[APIRoute]) -> dict[tuple[str, str], Key | None]:
    return {(m, p): resolve(routes, m, p) for m, p, _, _ in MATRIX}


def test_every_matrix_row_is_a_route(routes: list[APIRoute]) -> None:
    stale = [row for row, key in matrix_keys(routes).items() if key is None]
    assert not stale, f"MATRIX rows no route answers: {stale}"


def test_every_route_reaching_an_identity_is_in_the_matrix_or_exempt(
    routes: list[APIRoute],
) -> None:
    covered = {k for k in matrix_keys(routes).values() if k is not None}
    missing = sorted(reaching(routes) - covered - set(EXEMPT))
    assert not missing, (
        "routes taking a path id or ?identity= in neither the cross-identity MATRIX "
        f"(tests/integration/test_identity_boundary.py) nor EXEMPT: {missing}")


def test_the_exempt_list_names_real_routes_outside_the_matrix(routes: list[APIRoute]) -> None:
    covered = {k for k in matrix_keys(routes).values() if k is not None}
    assert sorted(set(EXEMPT) - reaching(routes)) == [], "exempt but no such route"
    assert sorted(set(EXEMPT) & covered) == [], "exempt and in the matrix"
    assert all(re.search(r"\w", reason) for reason in EXEMPT.values())


def test_the_walk_sees_the_monitoring_scope(routes: list[APIRoute]) -> None:
    """The scope is a dependency's query parameter: the walk must look into dependencies."""
    assert ("GET", "/api/v2/nova/monitoring/stats") in reaching(routes)
