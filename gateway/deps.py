"""FastAPI dependencies, as ``Annotated`` aliases routes declare in their signatures.

Each alias hands a route one typed collaborator of :class:`~gateway.services.Services`; all
of them exist once the gateway serves (start-up refuses otherwise), so none is optional here.

Every dependency is ``async def``, even those that only read an attribute: FastAPI runs a plain
``def`` dependency in its thread pool, and the hand-offs to and from the pool's threads were 13%
of the gateway's main thread under bench/sync.py's load, three of them for each request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from analytics.client import ClickHouse
from gateway.boundary import BoundaryGuard
from gateway.checkpoints import CheckpointBook
from gateway.llm_state import LlmState
from gateway.ratelimit import IdentityRateLimiter
from gateway.services import Services
from nova.auth.tokens import Principal, UnprovenTokenError, verify_token
from nova.errors import AuthError, ForbiddenError, NovaError

_bearer = HTTPBearer(auto_error=False, description="JWT from POST /api/v2/auth/token")


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_guard(services: ServicesDep) -> BoundaryGuard:
    return services.boundary


GuardDep = Annotated[BoundaryGuard, Depends(get_guard)]


async def get_rate_limiter(services: ServicesDep) -> IdentityRateLimiter:
    return services.rate_limiter


RateLimiterDep = Annotated[IdentityRateLimiter, Depends(get_rate_limiter)]


async def get_checkpoints(services: ServicesDep) -> CheckpointBook:
    return services.checkpoints


CheckpointsDep = Annotated[CheckpointBook, Depends(get_checkpoints)]


async def get_llm(services: ServicesDep) -> LlmState:
    return services.llm


LlmDep = Annotated[LlmState, Depends(get_llm)]


def source_address(request: Request) -> str:
    """The TCP peer of the request (never ``X-Forwarded-For``: see ``gateway.auth_throttle``)."""
    return request.client.host if request.client is not None else "unknown"


async def get_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The bearer token's principal, if its session is still open (``gateway.sessions``). A
    source that keeps presenting tokens proving nothing (guessing) is throttled: 429 before its
    token is even read."""
    if credentials is None:
        raise AuthError("missing bearer token")
    if credentials.scheme.lower() != "bearer":
        raise AuthError("authorization scheme must be Bearer")
    source, throttle = source_address(request), services.auth_throttle
    throttle.acquire("bearer", source)
    try:
        principal = verify_token(services.settings, credentials.credentials)
    except UnprovenTokenError:
        await throttle.failed("bearer", source)
        raise
    except BaseException:  # signed with the key: expired or a bad claim, not a guess
        throttle.release("bearer", source)
        raise
    throttle.release("bearer", source)
    await services.sessions.check(principal)  # logged out, or its API key revoked: 401
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_role(principal: Principal, *roles: str) -> None:
    """Function-level authorization: the caller must hold one of ``roles`` (admin always may).

    Only *what* the caller may do; *where* is always its token's identity, which the route
    resolves through the boundary guard. ``operator`` is deliberately not implied by, and does
    not imply, any of these roles (``nova.domain.roles``).
    """
    if not principal.has_role(*roles, "admin"):
        raise ForbiddenError(f"this operation needs one of the roles: {', '.join(roles)}")


async def get_clickhouse(services: ServicesDep) -> ClickHouse:
    if services.clickhouse is None:
        raise NovaError("analytics is not available in this gateway process")
    return services.clickhouse


ClickHouseDep = Annotated[ClickHouse, Depends(get_clickhouse)]
