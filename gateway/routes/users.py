"""Users as records: ``/api/v2/users`` (spheres: ``gateway.routes.spheres``).

A user is the person behind tokens (their ``sub``) and holds identities, each in a sphere
(``/api/v2/identities``). Users were bare strings before they were records, and bare strings
keep working: a user id that identities (or a token's ``sub``) name without a user record is an
*implicit* user, shown with ``implicit: true``. A record adds a display name; creating one for
an id already in use changes no identity.

Decisions:

- **Only an operator creates** users, as it provisions identities: users are platform-wide
  (``nova.domain.roles``: an ``admin`` administers its own identity only). Each creation is an
  ``OPERATOR_ACTION`` audit fact first (no fact, no record).
- **A user is read by itself**: the list holds the caller's own user (an operator: every user
  record); another user's id is a boundary crossing (403 and an ``IDENTITY_BOUNDARY`` fact filed
  where that user's identity sees it), unless it is unknown (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Path
from pydantic import BaseModel, StringConstraints

from gateway.bodies import StrictBody, SubjectStr
from gateway.boundary import EVERY_IDENTITY
from gateway.deps import GuardDep, PrincipalDep
from nova.auth.tokens import Principal
from nova.domain.roles import OPERATOR
from nova.entities.models import UserEntity, ms_to_datetime
from nova.errors import ConflictError, ForbiddenError, NotFoundError
from nova.records import now_ms

router = APIRouter(prefix="/api/v2/users", tags=["users"])

MAX_RECORDS: Final = 10_000  # per operator: every gateway and worker holds them all
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def operator_only(principal: Principal, what: str) -> None:
    """Refuse anyone but an operator the creation of platform-wide ``what``."""
    if not principal.has_role(OPERATOR):
        raise ForbiddenError(f"only an operator creates {what}")


# -- users -----------------------------------------------------------------------------------
class UserCreate(StrictBody):
    id: SubjectStr  # the ``sub`` of the user's tokens
    display_name: Name


class UserOut(BaseModel):
    id: str
    display_name: str
    identities: list[str]
    implicit: bool
    created_at: datetime | None


def _user_out(guard: GuardDep, user_id: str, record: UserEntity | None) -> UserOut:
    idents = [i.id for i in guard.store.identities_of_user(user_id)]
    if record is None:
        return UserOut(id=user_id, display_name=user_id, identities=idents, implicit=True,
                       created_at=None)
    return UserOut(id=record.id, display_name=record.display_name, identities=idents,
                   implicit=False, created_at=ms_to_datetime(record.created_at))


@router.post("", status_code=201, response_model=UserOut,
            responses={401: {}, 403: {}, 409: {}, 422: {}, 503: {}})
async def create_user(body: UserCreate, principal: PrincipalDep, guard: GuardDep) -> UserOut:
    """Record a user (operators only, audited); its identities may exist already."""
    operator_only(principal, "users")
    store = guard.store
    await store.sync()
    if store.get(UserEntity, body.id) is not None:
        raise ConflictError(f"user {body.id} already exists")
    if store.count_owned(UserEntity.ENTITY_TYPE, principal.identity) >= MAX_RECORDS:
        raise ConflictError(f"an operator records at most {MAX_RECORDS} users")
    user = UserEntity(id=body.id, display_name=body.display_name,
                      created_by=principal.identity, created_at=now_ms())
    await guard.operator_act(principal, "user", user.id, EVERY_IDENTITY, operation="create",
                             change={"display_name": user.display_name})
    await guard.writer.put(user, create=True)
    return _user_out(guard, user.id, user)


@router.get("", response_model=list[UserOut], responses={401: {}})
async def list_users(principal: PrincipalDep, guard: GuardDep) -> list[UserOut]:
    """The caller's own user; an operator: every user record."""
    if principal.has_role(OPERATOR):
        return [_user_out(guard, u.id, u) for u in guard.store.every(UserEntity)]
    own = guard.user_of(principal)
    return [_user_out(guard, own, guard.store.get(UserEntity, own))]


@router.get("/{user_id}", response_model=UserOut, responses={401: {}, 403: {}, 404: {}})
async def get_user(user_id: Annotated[str, Path(max_length=128)], principal: PrincipalDep,
                   guard: GuardDep) -> UserOut:
    """A user: one's own, or (an operator) any."""
    store = guard.store
    if user_id == guard.user_of(principal):
        return _user_out(guard, user_id, store.get(UserEntity, user_id))
    record = store.get(UserEntity, user_id)
    if record is None and not store.identities_of_user(user_id):
        await store.sync()
        record = store.get(UserEntity, user_id)
    if record is None and not store.identities_of_user(user_id):
        raise NotFoundError(f"no user {user_id}")
    if not principal.has_role(OPERATOR):
        held = store.identities_of_user(user_id)  # the fact goes to an identity of theirs
        raise await guard.refuse(principal, "user", user_id,
                                 held[0].id if held else EVERY_IDENTITY, operation="read")
    return _user_out(guard, user_id, record)
