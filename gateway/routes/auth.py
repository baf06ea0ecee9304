"""Exchanging an API key for a short-lived bearer token: ``/api/v2/auth``.

Machine clients hold a long-lived API key (created once with ``nova keys create``); every API
call carries a JWT instead, so the key crosses the wire once per token lifetime and a leaked
token expires on its own. The token endpoint is the only ``/api/v2`` route without a bearer.

Every refusal is the same 401 ("invalid api key") whether the key is malformed, unknown or
wrong, so the endpoint is no oracle for which key ids exist. The key hash is checked off the
event loop (PBKDF2 is CPU work).

Guessing is throttled (``gateway.auth_throttle``): each failure counts against the source
address and the presented key id; once either has used its allowance, the exchange answers 429
with ``Retry-After`` before looking anything up, and an ``AUTH_FAILURES`` audit fact says who
was guessing at what.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, StringConstraints

from gateway.bodies import StrictBody
from gateway.deps import GuardDep, PrincipalDep, ServicesDep, source_address
from nova.auth.keys import parse_key_id, verify_api_key
from nova.auth.tokens import issue_token
from nova.errors import AuthError

router = APIRouter(prefix="/api/v2/auth", tags=["auth"])

_INVALID = "invalid api key"


class TokenRequest(StrictBody):
    api_key: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
    expires_in: int = Field(description="seconds until the token expires")


class Me(BaseModel):
    sub: str
    identity: str
    roles: list[str]
    sphere: str | None
    expires_at: datetime | None


@router.post("/token", response_model=TokenResponse, responses={401: {}, 422: {}, 429: {}})
async def token(
    body: TokenRequest, request: Request, services: ServicesDep, guard: GuardDep
) -> TokenResponse:
    """A bearer token for the identity and roles of a valid API key."""
    source = source_address(request)
    throttle = services.auth_throttle
    try:
        key_id: str | None = parse_key_id(body.api_key)
    except AuthError:
        key_id = None
    throttle.acquire("api_key", source, key_id)  # 429 before any lookup, sync or hash
    owner: str | None = None
    store = guard.store
    try:
        if key_id is None:
            raise AuthError(_INVALID)
        stored = store.api_key(key_id)
        if stored is None:  # created a moment ago by the CLI or another gateway?
            await store.sync()
            stored = store.api_key(key_id)
        if stored is None:
            raise AuthError(_INVALID)
        owner = stored.identity_id
        try:
            principal = await asyncio.to_thread(verify_api_key, stored.to_record(),
                                                body.api_key)
        except AuthError as exc:
            raise AuthError(_INVALID) from exc
    except AuthError:
        await throttle.failed("api_key", source, key_id, owner_identity=owner)
        raise
    except BaseException:  # the check could not be made (Kafka down): no failure of the caller
        throttle.release("api_key", source, key_id)
        raise
    throttle.release("api_key", source, key_id)
    ident = store.identity(principal.identity)
    sub = ident.user_id if ident is not None else principal.sub
    settings = services.settings
    jwt = issue_token(settings, sub, principal.identity, principal.roles, datetime.now(UTC))
    return TokenResponse(access_token=jwt, expires_in=settings.jwt_ttl_s)


@router.get("/me", response_model=Me, responses={401: {}})
async def me(principal: PrincipalDep, guard: GuardDep) -> Me:
    """Who the bearer token says the caller is, and the sphere of its identity."""
    return Me(
        sub=principal.sub,
        identity=principal.identity,
        roles=sorted(principal.roles),
        sphere=guard.store.sphere_of(principal.identity),
        expires_at=principal.expires_at,
    )
