"""RFC 9457 problem details for every error the gateway returns.

Errors leave as ``application/problem+json`` with ``type``, ``title``, ``status`` and
``detail``; a 403 never carries data of the resource it refused.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            exc.status_code,
            str(exc.detail) if exc.detail else None,
            headers=dict(exc.headers) if exc.headers else None,
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
