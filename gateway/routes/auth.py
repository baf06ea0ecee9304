"""Credentials for bearer tokens, and the sessions they open: ``/api/v2/auth``.

Machine clients hold a long-lived API key (``nova keys create``, or ``/api/v2/auth/keys``);
every API call carries a JWT instead, so the key crosses the wire once per session and a leaked
token expires on its own. An exchange opens a *session* (``gateway.sessions``): the answer
holds an access token and a refresh token, and the refresh token gets the next access token
without the key (``POST /refresh``, or ``/token`` with ``refresh_token``), each time replacing
itself. ``POST /logout`` ends the session: its access tokens and refresh token are refused by
every gateway. The token and refresh endpoints are the only ``/api/v2`` routes without a
bearer.

Every refusal of a credential is the same 401 ("invalid api key", "invalid refresh token")
whether it is malformed, unknown, revoked or wrong, so the endpoints are no oracle for which key
ids or sessions exist. The key hash is checked off the event loop (PBKDF2 is CPU work). Both
read the shared state to its end first, so a key revoked or a session ended at another gateway
is refused here at once.

Guessing is throttled (``gateway.auth_throttle``): each failure counts against the source
address and the presented key id or session id; once either has used its allowance, the
exchange answers 429 with ``Retry-After`` before looking anything up, and an ``AUTH_FAILURES``
audit fact says who was guessing at what.

**Identities of one user.** ``GET /identities`` lists the identities of the caller's user (in
every sphere); ``POST /identities/{id}/token`` opens a session for another of them. Its roles
are those the target identity's record grants *and* the caller's token holds, so a switch never
adds a role (a member's token gets no admin anywhere by switching); another user's identity is
a recorded boundary crossing (403). A caller whose identity has no record (a bare identity
string: a token of ``nova token``, a key made before identities were records) is listed as an
*implicit* identity of its token's subject; there is no record to switch to.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.json_schema import SkipJsonSchema

from gateway.bodies import StrictBody
from gateway.deps import GuardDep, PrincipalDep, ServicesDep, source_address
from gateway.sessions import SessionBook, TokenPair
from nova.auth.keys import parse_key_id, verify_api_key
from nova.auth.sessions import parse_session_id
from nova.auth.tokens import Principal
from nova.entities.models import SessionEntity
from nova.errors import AuthError, ForbiddenError

router = APIRouter(prefix="/api/v2/auth", tags=["auth"])

_INVALID = "invalid api key"
_INVALID_REFRESH = "invalid refresh token"
Secret = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # left out is the contract's "absent", never null


class TokenRequest(StrictBody):
    """Exactly one credential: an API key, or the refresh token of a session."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    api_key: Secret | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    refresh_token: Secret | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_no_default)

    @model_validator(mode="after")
    def _exactly_one(self) -> TokenRequest:
        if (self.api_key is None) == (self.refresh_token is None):
            raise ValueError("send exactly one of api_key and refresh_token")
        return self


class RefreshRequest(StrictBody):
    refresh_token: Secret


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_token: str = Field(description="gets the next access token (POST /api/v2/auth/"
                               "refresh); replaced at each use, shown once")
    refresh_expires_in: int = Field(description="seconds until the session ends")

    @classmethod
    def of(cls, pair: TokenPair) -> TokenResponse:
        return cls(access_token=pair.access_token, expires_in=pair.expires_in,
                   refresh_token=pair.refresh_token, refresh_expires_in=pair.refresh_expires_in)


class Me(BaseModel):
    sub: str
    identity: str
    roles: list[str]
    sphere: str | None
    expires_at: datetime | None


class IdentityOfUser(BaseModel):
    id: str
    user_id: str
    display_name: str
    sphere_id: str | None = Field(description="None for an implicit identity")
    roles: list[str] = Field(description="what a switch to it grants (with the caller's own)")
    current: bool = Field(description="the identity the caller's token acts for")
    implicit: bool = Field(description="named by the token only: no identity record")


# -- the exchanges ---------------------------------------------------------------------------
async def _exchange_key(presented: str, source: str, services: ServicesDep,
                        guard: GuardDep) -> TokenPair:
    try:
        key_id: str | None = parse_key_id(presented)
    except AuthError:
        key_id = None
    store = guard.store
    # 429 before any lookup, sync or hash.
    async with services.auth_throttle.checking("api_key", source, key_id) as check:
        if key_id is None:
            raise AuthError(_INVALID)
        await store.sync()  # created, or revoked, at another gateway or by the CLI a moment ago
        stored = store.api_key(key_id)
        if stored is None:
            raise AuthError(_INVALID)
        check.owner_identity = stored.identity_id
        try:
            principal = await asyncio.to_thread(verify_api_key, stored.to_record(), presented)
        except AuthError as exc:
            raise AuthError(_INVALID) from exc
    ident = store.identity(principal.identity)
    sub = ident.user_id if ident is not None else principal.sub
    return await services.sessions.open(identity=principal.identity, user=sub,
                                        roles=principal.roles, key_id=key_id)


async def _exchange_refresh(presented: str, source: str, services: ServicesDep) -> TokenPair:
    try:
        session_id: str | None = parse_session_id(presented)
    except AuthError:
        session_id = None
    async with services.auth_throttle.checking("refresh", source, session_id):
        if session_id is None:
            raise AuthError(_INVALID_REFRESH)
        try:
            return await services.sessions.refresh(presented)
        except AuthError as exc:  # every refusal looks the same (module docstring)
            raise AuthError(_INVALID_REFRESH) from exc


@router.post("/token", response_model=TokenResponse, responses={401: {}, 422: {}, 429: {}})
async def token(
    body: TokenRequest, request: Request, services: ServicesDep, guard: GuardDep
) -> TokenResponse:
    """A session for a valid API key (its identity and roles), or the next tokens of a
    session for its current refresh token (as ``/refresh``)."""
    source = source_address(request)
    if body.refresh_token is not None:
        pair = await _exchange_refresh(body.refresh_token, source, services)
    elif body.api_key is not None:
        pair = await _exchange_key(body.api_key, source, services, guard)
    else:  # unreachable: the body's validator asks for exactly one
        raise AuthError(_INVALID)
    return TokenResponse.of(pair)


@router.post("/refresh", response_model=TokenResponse, responses={401: {}, 422: {}, 429: {}})
async def refresh(body: RefreshRequest, request: Request, services: ServicesDep) -> TokenResponse:
    """The next access token and refresh token of a session; the refresh token presented is
    spent (presented again, it ends the session: it was stolen or replayed)."""
    return TokenResponse.of(await _exchange_refresh(body.refresh_token,
                                                    source_address(request), services))


@router.post("/logout", status_code=204, response_class=Response,
             responses={401: {}, 409: {}, 503: {}})
async def logout(principal: PrincipalDep, services: ServicesDep) -> Response:
    """End the bearer token's session: it and its refresh token are refused by every gateway
    from now on (409 for a token of no session, minted by ``nova token``)."""
    await services.sessions.end(principal)
    return Response(status_code=204)


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


# -- identities of the caller's user ---------------------------------------------------------
@router.get("/identities", response_model=list[IdentityOfUser], responses={401: {}})
async def identities(principal: PrincipalDep, guard: GuardDep) -> list[IdentityOfUser]:
    """The identities of the caller's user, in every sphere; an implicit one for a token whose
    identity has no record."""
    user = guard.user_of(principal)
    found = [
        IdentityOfUser(id=i.id, user_id=i.user_id, display_name=i.display_name,
                       sphere_id=i.sphere_id, roles=sorted(i.roles),
                       current=i.id == principal.identity, implicit=False)
        for i in guard.store.identities_of_user(user)
    ]
    if not any(i.current for i in found) and guard.store.identity(principal.identity) is None:
        found.insert(0, IdentityOfUser(
            id=principal.identity, user_id=user, display_name=principal.identity,
            sphere_id=None, roles=sorted(principal.roles), current=True, implicit=True))
    return found


def _session_key(sessions: SessionBook, principal: Principal) -> str | None:
    """The API key the caller's session came from: a switched session ends with it too."""
    if principal.session_id is None:
        return None
    session = sessions.store.get(SessionEntity, principal.session_id)
    return None if session is None else session.key_id


@router.post("/identities/{identity_id}/token", response_model=TokenResponse,
             responses={401: {}, 403: {}, 404: {}, 503: {}})
async def switch_identity(
    identity_id: Annotated[str, Path(max_length=128)], principal: PrincipalDep,
    guard: GuardDep, services: ServicesDep,
) -> TokenResponse:
    """A session for another identity of the caller's user, with the roles both that
    identity's record and the caller's token hold (never another user's identity: 403)."""
    target = await guard.identity(principal, identity_id, operation="switch")
    roles = frozenset(target.roles) & principal.roles
    if not roles:
        raise ForbiddenError("your token holds none of the roles this identity grants")
    pair = await services.sessions.open(identity=target.id, user=target.user_id, roles=roles,
                                        key_id=_session_key(services.sessions, principal))
    return TokenResponse.of(pair)

