"""Identities and their spheres: ``/api/v2/identities``.

A user may hold several identities, each in one sphere (personal, business, ...). Identities
are the unit of the boundary: threads, dataspaces and rules belong to exactly one of them.

Decisions:

- **Creating an identity is an operator's act** (``nova.domain.roles``). An identity is a
  security principal, and provisioning principals for any user is platform-wide
  administration: an ``admin`` administers its own identity only, so neither members nor
  admins mint identities, and an identity is only usable with an API key, which an operator
  issues anyway (``nova keys create``). Each identity an operator creates is an
  ``OPERATOR_ACTION`` audit fact filed under the new identity, produced before it is written.
- **Reading is per user**: the list holds the identities of the caller's own user (every
  sphere), and reading one of another user's identities is a boundary crossing (403 + fact).
  An operator may read any identity (it provisions them; reading changes nothing).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field, StringConstraints

from gateway.bodies import StrictBody, SubjectStr
from gateway.deps import GuardDep, PrincipalDep
from nova.domain.roles import OPERATOR, Role
from nova.entities.models import IdentityEntity, ms_to_datetime
from nova.errors import ConflictError, ForbiddenError
from nova.ids import uuid7
from nova.records import now_ms

router = APIRouter(prefix="/api/v2/identities", tags=["identities"])

MAX_IDENTITIES_PER_USER = 16
Slug = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")]


def _member() -> list[Role]:
    return ["member"]


class IdentityCreate(StrictBody):
    id: Slug | None = None
    user_id: SubjectStr  # the ``sub`` of this identity's tokens: printable, at most 128
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    sphere_id: Slug = "personal"
    roles: Annotated[list[Role], Field(min_length=1, max_length=8)] = Field(
        default_factory=_member,
        description="what its user holds when switching to it (POST /api/v2/auth/identities/"
        "{id}/token, together with the roles of the token switching)")


class IdentityOut(BaseModel):
    id: str
    user_id: str
    display_name: str
    sphere_id: str
    roles: list[str]
    created_at: datetime

    @classmethod
    def of(cls, ident: IdentityEntity) -> IdentityOut:
        return cls(id=ident.id, user_id=ident.user_id, display_name=ident.display_name,
                   sphere_id=ident.sphere_id, roles=sorted(ident.roles),
                   created_at=ms_to_datetime(ident.created_at))


@router.post("", status_code=201, response_model=IdentityOut,
             responses={401: {}, 403: {}, 409: {}, 422: {}, 503: {}})
async def create_identity(
    body: IdentityCreate, principal: PrincipalDep, guard: GuardDep
) -> IdentityOut:
    """Provision an identity for a user in a sphere (operators only, audited)."""
    if not principal.has_role(OPERATOR):
        raise ForbiddenError("only an operator provisions identities")
    store = guard.store
    if len(store.identities_of_user(body.user_id)) >= MAX_IDENTITIES_PER_USER:
        raise ConflictError(f"a user holds at most {MAX_IDENTITIES_PER_USER} identities")
    ident = IdentityEntity(
        id=body.id or uuid7(),
        user_id=body.user_id,
        display_name=body.display_name,
        sphere_id=body.sphere_id,
        created_at=now_ms(),
        roles=tuple(sorted(set(body.roles))),
    )
    if store.identity(ident.id) is not None:  # before the audit: a refused create is no act
        raise ConflictError(f"identity {ident.id} already exists")
    await guard.operator_act(principal, "identity", ident.id, ident.id, operation="create",
                             change={"user_id": ident.user_id, "sphere_id": ident.sphere_id,
                                     "roles": list(ident.roles)})
    await guard.writer.put(ident, create=True)
    return IdentityOut.of(ident)


@router.get("", response_model=list[IdentityOut], responses={401: {}})
async def list_identities(principal: PrincipalDep, guard: GuardDep) -> list[IdentityOut]:
    """The identities of the caller's own user, in every sphere."""
    return [IdentityOut.of(i) for i in guard.store.identities_of_user(guard.user_of(principal))]


@router.get("/{identity_id}", response_model=IdentityOut, responses={401: {}, 403: {}, 404: {}})
async def get_identity(identity_id: str, principal: PrincipalDep, guard: GuardDep) -> IdentityOut:
    if principal.has_role(OPERATOR):
        return IdentityOut.of(await guard.existing(IdentityEntity, identity_id))
    return IdentityOut.of(await guard.identity(principal, identity_id))
