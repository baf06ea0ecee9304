"""One router for what an identity owns with children under it: threads and their messages,
dataspaces and their items (meetings, when they come, the same way).

Each such resource follows the same rules, so they are written once, here:

- ``POST /``: a writer (member or approver; admin always) creates one, owned by the token's
  identity, never by a field of the body; an identity holds at most ``max_per_identity``.
- ``GET /``: the caller identity's own, newest first; naming another identity (``?identity=``)
  is a boundary crossing.
- ``GET /{id}``: the resource and its latest ``limit`` children, oldest first.
- ``POST /{id}/<children>``: a writer adds a child; a resource holds at most ``max_children``.

Ids are resolved through the boundary guard (404 unknown, 403 and an IDENTITY_BOUNDARY fact
when foreign). Sizes are capped because every child is held in memory by each gateway and
worker and may be sent to a provider. A resource module declares its nouns, models and caps in
an :class:`OwnedResource` and gets its router from :func:`owned_router`; route names (and so
the OpenAPI operation ids) are the resource's own (``create_thread``, ``append_message``).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations, and
# they name each resource's own models and caps, which only exist inside ``owned_router``.

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import GenericAlias
from typing import Annotated, Generic, TypeVar, cast

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from gateway.bodies import StrictBody
from gateway.deps import GuardDep, PrincipalDep, require_role
from nova.entities.models import (
    DataspaceEntity,
    DataspaceItemEntity,
    ThreadEntity,
    ThreadMessageEntity,
)
from nova.entities.store import EntityStore
from nova.errors import ConflictError

# The owned resources and their children (a meeting and its entries join them here).
P = TypeVar("P", ThreadEntity, DataspaceEntity)
C = TypeVar("C", ThreadMessageEntity, DataspaceItemEntity)
PB = TypeVar("PB", bound=StrictBody)  # the body that creates a resource
CB = TypeVar("CB", bound=StrictBody)  # the body that adds a child

WRITER_ROLES = ("member", "approver")


@dataclass(frozen=True)
class OwnedResource(Generic[P, C, PB, CB]):
    """What differs between two owned resources: nouns, entities, bodies, views and caps."""

    prefix: str  # "/api/v2/threads"
    noun: str  # "thread": the boundary kind, the path parameter ``{thread_id}``, route names
    plural: str  # "threads"
    entity: type[P]
    create_body: type[PB]
    new: Callable[[PB, str], P]  # (body, owner identity) -> the resource
    out: type[BaseModel]
    show: Callable[[P], BaseModel]
    max_per_identity: int
    child_plural: str  # "messages": the path segment, and the detail's list field
    child_noun: str  # "message": the detail's ``message_count``
    child_entity: type[C]
    child_body: type[CB]
    new_child: Callable[[CB, P], C]  # (body, parent) -> the child
    child_out: type[BaseModel]
    show_child: Callable[[C], BaseModel]
    children: Callable[[EntityStore, str], Sequence[C]]  # a resource's children, oldest first
    max_children: int
    detail: type[BaseModel]  # the resource's view with its children
    add_name: str  # the adding route's name: "append_message"
    add_operation: str  # the boundary operation of adding a child: "append"


def owned_router(spec: OwnedResource[P, C, PB, CB]) -> APIRouter:
    """The four routes of ``spec`` under its prefix."""
    router = APIRouter(prefix=spec.prefix, tags=[spec.plural])
    id_param = f"{spec.noun}_id"
    ResourceId = Annotated[str, Path(alias=id_param)]

    async def create(body: StrictBody, principal: PrincipalDep, guard: GuardDep) -> BaseModel:
        require_role(principal, *WRITER_ROLES)
        if guard.store.count_owned(spec.entity.ENTITY_TYPE, principal.identity) >= (
            spec.max_per_identity
        ):
            raise ConflictError(
                f"an identity holds at most {spec.max_per_identity} {spec.plural}")
        resource = spec.new(cast(PB, body), principal.identity)
        await guard.writer.put(resource)
        return spec.show(resource)

    async def listing(
        principal: PrincipalDep,
        guard: GuardDep,
        identity: Annotated[str | None, Query(description="must be the caller's identity")]
        = None,
    ) -> list[BaseModel]:
        owner = await guard.listing(principal, spec.noun, identity)
        found = guard.store.owned(spec.entity, owner)
        return [spec.show(r) for r in sorted(found, key=lambda r: (r.created_at, r.id),
                                             reverse=True)]

    async def get(
        resource_id: ResourceId,
        principal: PrincipalDep,
        guard: GuardDep,
        limit: Annotated[int, Query(ge=1, le=spec.max_children)] = 200,
    ) -> BaseModel:
        resource = await guard.owned(principal, spec.entity, resource_id)
        children = spec.children(guard.store, resource.id)
        return spec.detail(
            **spec.show(resource).model_dump(),
            **{spec.child_plural: [spec.show_child(c) for c in children[-limit:]],
               f"{spec.child_noun}_count": len(children)},
        )

    async def add(
        resource_id: ResourceId, body: StrictBody, principal: PrincipalDep, guard: GuardDep
    ) -> BaseModel:
        require_role(principal, *WRITER_ROLES)
        resource = await guard.owned(principal, spec.entity, resource_id,
                                     operation=spec.add_operation)
        if guard.store.count_children(spec.child_entity.ENTITY_TYPE, resource.id) >= (
            spec.max_children
        ):
            raise ConflictError(
                f"a {spec.noun} holds at most {spec.max_children} {spec.child_plural}")
        child = spec.new_child(cast(CB, body), resource)
        await guard.writer.put(child)
        return spec.show_child(child)

    # FastAPI validates a body against the endpoint's annotation: the resource's own models.
    create.__annotations__["body"] = spec.create_body
    add.__annotations__["body"] = spec.child_body

    router.add_api_route(
        "", create, methods=["POST"], status_code=201, response_model=spec.out,
        name=f"create_{spec.noun}", responses={401: {}, 403: {}, 409: {}})
    router.add_api_route(
        "", listing, methods=["GET"], response_model=GenericAlias(list, (spec.out,)),
        name=f"list_{spec.plural}", responses={401: {}, 403: {}},
        description=f"The caller identity's {spec.plural}, newest first.")
    router.add_api_route(
        f"/{{{id_param}}}", get, methods=["GET"], response_model=spec.detail,
        name=f"get_{spec.noun}", responses={401: {}, 403: {}, 404: {}},
        description=f"The {spec.noun} and its latest ``limit`` {spec.child_plural}, "
                    "oldest first.")
    router.add_api_route(
        f"/{{{id_param}}}/{spec.child_plural}", add, methods=["POST"], status_code=201,
        response_model=spec.child_out, name=spec.add_name,
        responses={401: {}, 403: {}, 404: {}, 409: {}})
    return router
