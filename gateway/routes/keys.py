"""API keys over the API: ``/api/v2/auth/keys`` (``nova keys create`` does the same offline).

A key is a credential of one identity, so its identity's ``admin`` administers them: creates
one (the plaintext is in the answer once; only its salted hash is stored, ``nova.auth.keys``),
lists them (never a hash) and revokes one. An ``operator`` does the same for any identity,
each act on another identity's keys an ``OPERATOR_ACTION`` audit fact first; an admin's own
are ``RESOURCE_CHANGE`` facts, written before the change (no fact, no change).

Decisions:

- **No escalation**: a key carries only roles its creator may grant: an admin any role of its
  identity (member, approver, analyst, admin), ``operator`` only an operator.
- **Revocation is a soft delete** of the key's record on the entities topic: the key can get
  no token from then on (every exchange reads the topic to its end first), and the sessions
  it opened end with it (``gateway.sessions``: their access tokens are refused, their refresh
  tokens too).
- Another identity's key, or list, is a boundary crossing for anyone but an operator: 403 and
  an ``IDENTITY_BOUNDARY`` fact, checked before the role, so nothing is learnt by a member.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from gateway.bodies import StrictBody
from gateway.deps import GuardDep, PrincipalDep
from nova.auth.keys import create_api_key
from nova.auth.tokens import Principal
from nova.domain.roles import OPERATOR, Role
from nova.entities.models import ApiKeyEntity, EntityId, IdentityEntity, ms_to_datetime
from nova.errors import ConflictError, ForbiddenError

router = APIRouter(prefix="/api/v2/auth/keys", tags=["auth"])

MAX_KEYS_PER_IDENTITY: Final = 100
ADMIN_GRANTS: Final = frozenset({"member", "approver", "analyst", "admin"})


class KeyCreate(StrictBody):
    roles: Annotated[list[Role], Field(min_length=1, max_length=8)]
    identity_id: EntityId | None = Field(
        default=None, description="the caller's identity when left out; another one: operators")


class KeyOut(BaseModel):
    key_id: str
    identity_id: str
    roles: list[str]
    created_at: datetime

    @classmethod
    def of(cls, key: ApiKeyEntity) -> KeyOut:
        return cls(key_id=key.key_id, identity_id=key.identity_id, roles=sorted(key.roles),
                   created_at=ms_to_datetime(key.created_at))


class KeyCreated(KeyOut):
    api_key: str = Field(description="the key itself: shown here once, never again")


def _may_administer(principal: Principal) -> None:
    if not principal.has_role("admin", OPERATOR):
        raise ForbiddenError("API keys are administered by an admin of their identity")


async def _audit(guard: GuardDep, principal: Principal, key_id: str, identity: str, *,
                 operation: str, change: dict[str, object]) -> None:
    """An operator's act on another identity's key, else the owner's own change."""
    if identity != principal.identity:
        await guard.operator_act(principal, "api_key", key_id, identity, operation=operation,
                                 change=change)
    else:
        await guard.owner_change(principal, "api_key", key_id, operation=operation,
                                 detail=change)


@router.post("", status_code=201, response_model=KeyCreated,
             responses={401: {}, 403: {}, 404: {}, 409: {}, 503: {}})
async def create_key(body: KeyCreate, principal: PrincipalDep, guard: GuardDep) -> KeyCreated:
    """A new key of the caller's identity (or, for an operator, of any identity)."""
    identity = body.identity_id or principal.identity
    if identity != principal.identity and not principal.has_role(OPERATOR):
        raise await guard.refuse(principal, "api_key", "new", identity, operation="create")
    _may_administer(principal)
    roles = frozenset(body.roles)
    grantable = ADMIN_GRANTS | (principal.roles & {OPERATOR})
    if not roles <= grantable:
        raise ForbiddenError(f"you may not grant: {', '.join(sorted(roles - grantable))}")
    if identity != principal.identity:
        await guard.existing(IdentityEntity, identity)
    if guard.store.count_owned(ApiKeyEntity.ENTITY_TYPE, identity) >= MAX_KEYS_PER_IDENTITY:
        raise ConflictError(f"an identity holds at most {MAX_KEYS_PER_IDENTITY} API keys; "
                            "revoke one first")
    record, plaintext = await asyncio.to_thread(create_api_key, identity, roles,
                                                datetime.now(UTC))
    key = ApiKeyEntity.from_record(record)
    await _audit(guard, principal, key.key_id, identity, operation="create",
                 change={"roles": sorted(roles)})
    await guard.writer.put(key, create=True)
    return KeyCreated(**KeyOut.of(key).model_dump(), api_key=plaintext)


@router.get("", response_model=list[KeyOut], responses={401: {}, 403: {}})
async def list_keys(
    principal: PrincipalDep, guard: GuardDep,
    identity: Annotated[str | None, Query(max_length=128,
                                          description="the caller's identity when left out")]
    = None,
) -> list[KeyOut]:
    """The live keys of the caller's identity (an operator: of ``identity``), oldest first."""
    if identity is not None and identity != principal.identity and principal.has_role(OPERATOR):
        owner = identity
    else:
        owner = await guard.listing(principal, "api_key", identity)
    _may_administer(principal)
    keys = guard.store.owned(ApiKeyEntity, owner)
    return [KeyOut.of(k) for k in sorted(keys, key=lambda k: (k.created_at, k.key_id))]


@router.delete("/{key_id}", status_code=204, response_class=Response,
               responses={401: {}, 403: {}, 404: {}, 503: {}})
async def revoke_key(
    key_id: Annotated[str, Path(max_length=128)], principal: PrincipalDep, guard: GuardDep
) -> Response:
    """Revoke a key: it gets no token from now on, and the sessions it opened end."""
    if principal.has_role(OPERATOR):
        key = await guard.existing(ApiKeyEntity, key_id)
    else:
        key = await guard.owned(principal, ApiKeyEntity, key_id, operation="delete")
    _may_administer(principal)
    await _audit(guard, principal, key.key_id, key.identity_id, operation="delete",
                 change={"roles": sorted(key.roles)})
    await guard.writer.delete(key, live=True)
    return Response(status_code=204)
