"""Spheres as records: ``/api/v2/spheres``.

Identities live in spheres (personal, business, ...). Spheres were bare strings before they were
records and still work as such: a sphere id identities name without a record is an *implicit*
sphere (``implicit: true``); a record gives it a name and a description, and creating one for an
id already in use changes no identity.

Decisions: only an operator creates a sphere (platform-wide, like users and identities; an
``OPERATOR_ACTION`` audit fact first). Spheres are a shared vocabulary, like providers: every
caller reads the sphere records, plus the implicit spheres of its own user's identities;
nothing in a sphere belongs to another identity, so reading one crosses no boundary.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Path
from pydantic import BaseModel, StringConstraints

from gateway.bodies import StrictBody
from gateway.boundary import EVERY_IDENTITY
from gateway.deps import GuardDep, PrincipalDep
from gateway.routes.users import Name, operator_only
from nova.auth.tokens import Principal
from nova.entities.models import EntityId, SphereEntity, ms_to_datetime
from nova.errors import ConflictError, NotFoundError
from nova.records import now_ms

router = APIRouter(prefix="/api/v2/spheres", tags=["spheres"])

MAX_SPHERES: Final = 1000  # every gateway and worker holds them all


class SphereCreate(StrictBody):
    id: EntityId
    name: Name
    description: Annotated[str, StringConstraints(max_length=1000)] = ""


class SphereOut(BaseModel):
    id: str
    name: str
    description: str
    implicit: bool
    created_at: datetime | None

    @classmethod
    def of(cls, sphere: SphereEntity) -> SphereOut:
        return cls(id=sphere.id, name=sphere.name, description=sphere.description,
                   implicit=False, created_at=ms_to_datetime(sphere.created_at))

    @classmethod
    def implied(cls, sphere_id: str) -> SphereOut:
        return cls(id=sphere_id, name=sphere_id, description="", implicit=True, created_at=None)


def _visible_spheres(principal: Principal, guard: GuardDep) -> dict[str, SphereOut]:
    found = {s.id: SphereOut.of(s) for s in guard.store.every(SphereEntity)}
    for ident in guard.store.identities_of_user(guard.user_of(principal)):
        found.setdefault(ident.sphere_id, SphereOut.implied(ident.sphere_id))
    own = guard.store.sphere_of(principal.identity)
    if own is not None:
        found.setdefault(own, SphereOut.implied(own))
    return found


@router.post("", status_code=201, response_model=SphereOut,
              responses={401: {}, 403: {}, 409: {}, 422: {}, 503: {}})
async def create_sphere(body: SphereCreate, principal: PrincipalDep, guard: GuardDep
                        ) -> SphereOut:
    """Record a sphere (operators only, audited); identities already in it stay."""
    operator_only(principal, "spheres")
    store = guard.store
    await store.sync()
    if store.get(SphereEntity, body.id) is not None:
        raise ConflictError(f"sphere {body.id} already exists")
    if len(store.every(SphereEntity)) >= MAX_SPHERES:
        raise ConflictError(f"there are at most {MAX_SPHERES} spheres")
    sphere = SphereEntity(id=body.id, name=body.name, description=body.description,
                          created_by=principal.identity, created_at=now_ms())
    await guard.operator_act(principal, "sphere", sphere.id, EVERY_IDENTITY, operation="create",
                             change={"name": sphere.name})
    await guard.writer.put(sphere, create=True)
    return SphereOut.of(sphere)


@router.get("", response_model=list[SphereOut], responses={401: {}})
async def list_spheres(principal: PrincipalDep, guard: GuardDep) -> list[SphereOut]:
    """Every sphere record, and the implicit spheres of the caller's own identities, by id."""
    return [v for _, v in sorted(_visible_spheres(principal, guard).items())]


@router.get("/{sphere_id}", response_model=SphereOut, responses={401: {}, 404: {}})
async def get_sphere(sphere_id: Annotated[str, Path(max_length=128)], principal: PrincipalDep,
                     guard: GuardDep) -> SphereOut:
    found = _visible_spheres(principal, guard).get(sphere_id)
    if found is None:
        await guard.store.sync()
        found = _visible_spheres(principal, guard).get(sphere_id)
    if found is None:
        raise NotFoundError(f"no sphere {sphere_id}")
    return found
