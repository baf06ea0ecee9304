"""RFC 9457 problem details for every error the gateway returns, and the contract saying so.

Errors leave as ``application/problem+json`` with ``type``, ``title``, ``status`` and
``detail``; a 403 never carries data of the resource it refused.

The OpenAPI document states the same (:func:`document_problems`, installed with the
handlers): every 4xx and 5xx answer of every operation is ``application/problem+json`` with the
:class:`Problem` schema, never FastAPI's ``application/json`` ``HTTPValidationError``. Routes
list the statuses only they answer in their decorations (``responses={404: {}}``); the
statuses every operation of a kind answers are added here, from what the operation is, so a
new route cannot forget them:

- behind the bearer token (``gateway.deps.get_principal``): 401 (missing, malformed, expired
  or wrongly signed) and 429 (a source that keeps presenting unproven tokens is throttled
  before its token is read, ``gateway.auth_throttle``);
- with a body: 400 (bytes that do not decode, FastAPI's "error parsing the body");
- with parameters or a body: 422 (the validation handler below answers problem+json with
  ``errors``).

One 4xx is an outcome rather than an error: a submission held at a checkpoint (423 with the
checkpoint, ``gateway.routes.requests``) was accepted; it keeps its own JSON body
(:data:`NOT_PROBLEMS`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from nova.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    LimitError,
    NotFoundError,
    NovaError,
    SchemaError,
)

log = logging.getLogger(__name__)
PROBLEM_TYPE_BASE = "https://nova.dev/problems/"
MEDIA_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Invalid request",
    423: "Locked",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}

# (path, method, status) of the 4xx answers that are outcomes with a body of their own.
NOT_PROBLEMS: Final[frozenset[tuple[str, str, str]]] = frozenset(
    {("/api/v2/nova/requests", "post", "423")}
)


class FieldError(BaseModel):
    """One reason a request did not match the contract (a 422's ``errors``)."""

    loc: list[str] = Field(description="where: body, query, path or header, then the field")
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem; extension members name what tripped (``limit``, ``request_id``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description=f"a URI under {PROBLEM_TYPE_BASE}")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="422: each mismatch")
    limit: str | None = Field(default=None, description="429: the limit that was reached")


_HEADERS: Final[dict[str, dict[str, Any]]] = {
    "401": {"WWW-Authenticate": {"description": "the Bearer challenge",
                                 "schema": {"type": "string"}}},
    "429": {"Retry-After": {"description": "seconds until a retry may succeed",
                            "schema": {"type": "string"}}},
    "503": {"Retry-After": {"description": "seconds until a retry may succeed",
                            "schema": {"type": "string"}}},
}
_FASTAPI_DESCRIPTIONS: Final = {"Additional Response", "Validation Error"}


def _is_error(status: str) -> bool:
    return status == "default" or status[:1] in {"4", "5"}


def _document(schema: dict[str, Any]) -> None:
    """Rewrite ``schema`` in place: every error answer is a :class:`Problem` (module doc)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    ref_template = "#/components/schemas/{model}"
    problem_schema = Problem.model_json_schema(ref_template=ref_template)
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    content = {MEDIA_TYPE: {"schema": {"$ref": ref_template.format(model="Problem")}}}
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            responses: dict[str, Any] = op.setdefault("responses", {})
            derived: list[int] = []
            if op.get("security"):
                derived += [401, 429]
            if op.get("requestBody"):
                derived.append(400)  # a body that is not even text (undecodable bytes)
            if op.get("parameters") or op.get("requestBody"):
                derived.append(422)
            for code in derived:
                responses.setdefault(str(code), {})
            for status, answer in responses.items():
                if not _is_error(status) or (path, method, status) in NOT_PROBLEMS:
                    continue
                if answer.get("description") in _FASTAPI_DESCRIPTIONS | {None, ""}:
                    title = _TITLES.get(int(status)) if status.isdigit() else None
                    answer["description"] = title or "Error"
                answer["content"] = dict(content)
                for name, header in _HEADERS.get(status, {}).items():
                    answer.setdefault("headers", {}).setdefault(name, header)
    text = json.dumps(schema["paths"])
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's, no longer answered
        if f'"{ref_template.format(model=unused)}"' not in text:
            components.pop(unused, None)


def document_problems(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with every error documented as problem+json (built once, then cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document(generate())  # FastAPI caches the dict it returns: rewritten once
        return app.openapi_schema or generate()

    return openapi


def problem(
    status: int,
    detail: str | None = None,
    *,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (slug or str(status)),
        "title": _TITLES.get(status, "Error"),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> str:
    """Every method some route serves at the request's path (RFC 9110 ``Allow``).

    Starlette names only the methods of the first route whose path matched, so a path served by
    several routes (``GET`` and ``POST /api/v2/governance/rules``) would advertise one of them.
    """
    routes = request.app.router.routes
    return ", ".join(
        method for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    )


def install(app: FastAPI) -> None:
    app.openapi = document_problems(app)  # type: ignore[method-assign]

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem(
            exc.status_code,
            str(exc.detail) if exc.detail else None,
            headers=headers or None,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        return problem(
            422,
            "the request body or parameters do not match the contract",
            slug="validation",
            errors=errors,
        )

    @app.exception_handler(NovaError)
    async def nova_error(_: Request, exc: NovaError) -> JSONResponse:
        if isinstance(exc, AuthError):
            return problem(
                401,
                str(exc),
                slug="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="nova"'},
            )
        if isinstance(exc, ForbiddenError):
            return problem(403, str(exc), slug="identity-boundary")
        if isinstance(exc, NotFoundError):
            return problem(404, str(exc), slug="not-found")
        if isinstance(exc, ConflictError):
            return problem(409, str(exc), slug="conflict")
        if isinstance(exc, LimitError):
            headers = {}
            if exc.retry_after_s is not None:
                headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
            return problem(429, str(exc), slug="limit", headers=headers, limit=exc.limit)
        if isinstance(exc, SchemaError | ValueError):
            return problem(422, str(exc), slug="schema")
        if exc.retriable:
            return problem(503, str(exc), slug="unavailable", headers={"Retry-After": "1"})
        log.error("unhandled Nova error: %s", exc)
        return problem(500, "internal error", slug="internal")

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", exc)
        return problem(500, "internal error", slug="internal")
