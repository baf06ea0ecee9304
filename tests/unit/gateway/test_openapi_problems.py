"""The OpenAPI document says what the gateway answers: every error is problem+json.

Walks ``app.openapi()`` (no server, nothing connects), so a route added later that forgets a
status, or documents an error as ``application/json``, fails here before schemathesis finds it
against a running gateway (``tests/integration/test_openapi_contract.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.bodies import StrictBody
from gateway.problems import MEDIA_TYPE, NOT_PROBLEMS, Problem
from gateway.routes.requests import SubmitRequest
from nova.settings import load_settings
from tests.app_routes import api_routes, websocket_routes

PROBLEM_REF = "#/components/schemas/Problem"


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(load_settings(environment="test"))


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


# What the app serves that is no API operation, so not in the document: the operator console's
# page and static files (include_in_schema=False) and the live feed's WebSocket (OpenAPI has no
# WebSocket operations; docs/live.md describes it).
NOT_DOCUMENTED = {("GET", "/console"), ("GET", "/console/"), ("GET", "/console/{name}"),
                  ("WS", "/api/v2/ws")}


def served(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route of the app's routers; the WebSocket as ``WS``."""
    http = {(m, r.path) for r in api_routes(app) for m in r.methods or ()}
    return http | {("WS", r.path) for r in websocket_routes(app)}


def test_the_document_has_exactly_the_gateway_s_operations(app: FastAPI,
                                                           spec: dict[str, Any]) -> None:
    documented = {(method.upper(), path) for path, method, _ in operations(spec)}
    routes = served(app)
    assert routes >= NOT_DOCUMENTED, "an exclusion that is no route any more"
    assert documented == routes - NOT_DOCUMENTED


def test_every_error_answer_is_a_problem(spec: dict[str, Any]) -> None:
    wrong = []
    for path, method, op in operations(spec):
        for status, answer in op["responses"].items():
            if not (status == "default" or status[0] in "45"):
                continue
            if (path, method, status) in NOT_PROBLEMS:
                continue
            content = answer.get("content", {})
            if list(content) != [MEDIA_TYPE] or content[MEDIA_TYPE]["schema"] != {
                "$ref": PROBLEM_REF
            }:
                wrong.append(f"{method.upper()} {path} {status}: {sorted(content)}")
    assert not wrong, "\n".join(wrong)


def test_fastapi_s_json_validation_error_is_gone(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert schemas["Problem"]["additionalProperties"] is True  # extension members
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status"}


def test_the_statuses_every_operation_of_a_kind_answers(spec: dict[str, Any]) -> None:
    missing = []
    for path, method, op in operations(spec):
        expected = set()
        if op.get("security"):
            expected |= {"401", "429"}
        if op.get("requestBody"):
            expected |= {"400", "422"}
        if op.get("parameters"):
            expected.add("422")
        if "{" in path:
            expected.add("404")  # an id that names nothing
        if absent := expected - set(op["responses"]):
            missing.append(f"{method.upper()} {path}: {sorted(absent)}")
    assert not missing, "\n".join(missing)


def test_every_api_route_is_behind_the_bearer_token_but_the_exchanges(
    spec: dict[str, Any],
) -> None:
    open_ = {f"{m.upper()} {p}" for p, m, op in operations(spec)
             if p.startswith("/api/") and not op.get("security")}
    assert open_ == {"POST /api/v2/auth/token", "POST /api/v2/auth/refresh"}


def test_request_bodies_are_closed(spec: dict[str, Any]) -> None:
    """StrictBody forbids unknown fields; the schema says so, or schemathesis' valid data with an
    extra field would be refused by a gateway that documents it as accepted."""
    schemas = spec["components"]["schemas"]
    for name, schema in schemas.items():
        if name.endswith(("Body", "Create", "Request", "Query")) and name != "Problem":
            assert schema.get("additionalProperties") is False, name


def test_the_held_outcome_keeps_its_own_body(spec: dict[str, Any]) -> None:
    held = spec["paths"]["/api/v2/nova/requests"]["post"]["responses"]["423"]
    assert MEDIA_TYPE not in held.get("content", {})


@pytest.mark.parametrize(("content", "status"), [(b'{"api_key": ', 422), (b'"\xff"', 400)])
def test_an_answered_error_matches_the_problem_schema(
    app: FastAPI, content: bytes, status: int
) -> None:
    """A body that is not JSON is refused before any collaborator is used (no lifespan here)."""
    r = TestClient(app).post("/api/v2/auth/token", content=content,
                             headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(MEDIA_TYPE)
    problem = Problem.model_validate(r.json())
    assert problem.status == status


def test_405_names_every_method_of_the_path(app: FastAPI) -> None:
    client = TestClient(app)
    r = client.patch("/api/v2/governance/rules")
    assert r.status_code == 405
    assert r.headers["content-type"].startswith(MEDIA_TYPE)
    assert [m.strip() for m in r.headers["allow"].split(",")] == ["GET", "POST"]


@pytest.mark.parametrize(("sent", "kept"), [(5000.0, 5000), (0.0, 0), (5000, 5000)])
def test_a_whole_number_is_an_integer(sent: float, kept: int) -> None:
    body = SubmitRequest.model_validate({"prompt": "hi", "wait_ms": sent})
    assert body.wait_ms == kept
    assert type(body.wait_ms) is int


def test_strict_body_still_refuses_fractions_strings_and_booleans() -> None:
    for value in (5000.5, "5000", True, float("inf")):
        with pytest.raises(ValueError, match="wait_ms"):
            SubmitRequest.model_validate({"prompt": "hi", "wait_ms": value})
    assert issubclass(SubmitRequest, StrictBody)
