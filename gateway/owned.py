"""One router for what an identity owns with children under it: threads and their messages,
dataspaces and their items, meetings and their agenda items, notes and decisions.

Each such resource follows the same rules, so they are written once, here:

- ``POST /``: a writer (member or approver; admin always) creates one, owned by the token's
  identity, never by a field of the body; an identity holds at most ``max_per_identity``.
- ``GET /``: the caller identity's own, newest first; naming another identity (``?identity=``)
  is a boundary crossing.
- ``GET /{id}``: the resource and its latest ``limit`` children, oldest first.
- ``PATCH /{id}``: a writer changes the fields its body names (a JSON merge patch: a field
  left out stays; ``null`` and an empty body are 422).
- ``DELETE /{id}``: a writer deletes it (204). The delete is soft, event-sourced like every
  entity change: a record stating the resource deleted (its last state as body) on the
  entities topic, so its owner stays pinned and the trail stays; its children go with it (no
  read, no context for a request: the store serves children of live parents only), and its
  id answers 404 from then on. A change made meanwhile elsewhere never revives it.
- ``POST /{id}/<children>``: a writer adds a child; a resource holds at most ``max_children``.
  A resource may have several such routes (a meeting's ``agenda``, ``notes``, ``decisions``),
  each making a child of the one child entity (:class:`ChildRoute`).

A body may name other resources (a meeting names its thread): ``references`` lists them, and
each must be the caller's own, resolved through the guard before anything is written (404
unknown, 403 and a fact when foreign, operation ``link``), on create and on update alike.

Updates and deletes are audited before they are made (``BoundaryGuard.owner_change``: a
``RESOURCE_CHANGE`` fact naming the fields changed or the children deleted, never content;
no fact, no change). The boundary is checked before the role, so another identity's id is
always a recorded crossing.

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
from typing import Annotated, Any, Generic, TypeVar, cast

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.bodies import StrictBody
from gateway.boundary import BoundaryGuard
from gateway.deps import GuardDep, PrincipalDep, require_role
from nova.auth.tokens import Principal
from nova.entities.models import (
    AnyEntity,
    DataspaceEntity,
    DataspaceItemEntity,
    MeetingEntity,
    MeetingEntryEntity,
    ThreadEntity,
    ThreadMessageEntity,
)
from nova.entities.store import EntityStore
from nova.errors import ConflictError

# The owned resources and their children.
P = TypeVar("P", ThreadEntity, DataspaceEntity, MeetingEntity)
C = TypeVar("C", ThreadMessageEntity, DataspaceItemEntity, MeetingEntryEntity)
PB = TypeVar("PB", bound=StrictBody)  # the body that creates a resource
CB = TypeVar("CB", bound=StrictBody)  # the body that adds a child

WRITER_ROLES = ("member", "approver")


class ChangeBody(StrictBody):
    """A PATCH body: the fields to change, named as the resource's own (a JSON merge patch,
    RFC 7396, without ``null``: no field of these resources may be unset). Its fields are
    :func:`changeable`; its schema says at least one is named."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    @model_validator(mode="after")
    def _names_a_change(self) -> "ChangeBody":
        if not self.model_fields_set:
            raise ValueError("name at least one field to change")
        nulls = sorted(f for f in self.model_fields_set if getattr(self, f) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} may not be null")
        return self


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def changeable() -> Any:
    """The default of a :class:`ChangeBody` field, typed ``Annotated[T, constraints] |
    SkipJsonSchema[None]``: left out, it is unchanged. Its schema is the type alone (no null,
    no default), so a client reading the contract sends what the gateway accepts."""
    return Field(default=None, json_schema_extra=_no_default)


References = Callable[[BaseModel], Sequence[tuple[type[AnyEntity], str]]]


def no_references(body: BaseModel) -> Sequence[tuple[type[AnyEntity], str]]:
    return ()


@dataclass(frozen=True)
class ChildRoute(Generic[P, C, CB]):
    """One ``POST /{id}/<segment>`` route adding a child: its body, how it makes the child,
    its route name (the OpenAPI operation id) and its boundary operation."""

    segment: str  # "messages", "notes"
    body: type[CB]
    new: Callable[[CB, P], C]  # (body, parent) -> the child
    name: str  # "append_message"
    operation: str  # "append"


@dataclass(frozen=True)
class OwnedResource(Generic[P, C, PB, CB]):
    """What differs between two owned resources: nouns, entities, bodies, views and caps."""

    prefix: str  # "/api/v2/threads"
    noun: str  # "thread": the boundary kind, the path parameter ``{thread_id}``, route names
    plural: str  # "threads"
    entity: type[P]
    create_body: type[PB]
    new: Callable[[PB, str], P]  # (body, owner identity) -> the resource
    change_body: type[ChangeBody]  # its fields are the resource's, each optional
    out: type[BaseModel]
    show: Callable[[P], BaseModel]
    max_per_identity: int
    child_plural: str  # "messages": the detail's list field, the delete fact's count
    child_noun: str  # "message": the detail's ``message_count``
    child_entity: type[C]
    child_out: type[BaseModel]
    show_child: Callable[[C], BaseModel]
    children: Callable[[EntityStore, str], Sequence[C]]  # a resource's children, oldest first
    max_children: int
    detail: type[BaseModel]  # the resource's view with its children
    adds: tuple[ChildRoute[P, C, Any], ...]  # the routes adding children
    references: References = no_references  # resources a create or change body names


async def resolve_references(spec: "OwnedResource[Any, Any, Any, Any]", guard: BoundaryGuard,
                             principal: Principal, body: BaseModel) -> None:
    """Every resource ``body`` names must be the caller's own (404 unknown, 403 + fact)."""
    for cls, rid in spec.references(body):
        await guard.owned(principal, cls, rid, operation="link")


async def change_owned(spec: OwnedResource[P, C, PB, CB], guard: BoundaryGuard,
                       principal: Principal, resource: P, changes: dict[str, Any]) -> P:
    """The owner's change of ``resource``'s fields to ``changes``: audited, then written.

    Shared by ``PATCH`` and any route that changes a field of the resource itself (a
    meeting's participants); the caller resolved the resource and checked the role. The
    same values again write and audit nothing."""
    changed = spec.entity.model_validate({**resource.model_dump(), **changes})
    if changed == resource:
        return resource  # nothing to write, nothing to audit
    fields = sorted(k for k in changes if getattr(resource, k) != getattr(changed, k))
    await guard.owner_change(principal, spec.noun, resource.id, operation="update",
                             detail={"fields": fields})
    await guard.writer.update(changed)
    return changed


def owned_router(spec: OwnedResource[P, C, PB, CB]) -> APIRouter:
    """The six routes of ``spec`` under its prefix."""
    router = APIRouter(prefix=spec.prefix, tags=[spec.plural])
    id_param = f"{spec.noun}_id"
    ResourceId = Annotated[str, Path(alias=id_param)]

    async def create(body: StrictBody, principal: PrincipalDep, guard: GuardDep) -> BaseModel:
        require_role(principal, *WRITER_ROLES)
        await resolve_references(spec, guard, principal, body)
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

    async def change(
        resource_id: ResourceId, body: ChangeBody, principal: PrincipalDep, guard: GuardDep
    ) -> BaseModel:
        resource = await guard.owned(principal, spec.entity, resource_id, operation="update")
        require_role(principal, *WRITER_ROLES)
        await resolve_references(spec, guard, principal, body)
        changes = body.model_dump(exclude_unset=True)
        changed = await change_owned(spec, guard, principal, resource, changes)
        return spec.show(changed)

    async def delete(resource_id: ResourceId, principal: PrincipalDep, guard: GuardDep
                     ) -> Response:
        resource = await guard.owned(principal, spec.entity, resource_id, operation="delete")
        require_role(principal, *WRITER_ROLES)
        children = len(spec.children(guard.store, resource.id))
        await guard.owner_change(principal, spec.noun, resource.id, operation="delete",
                                 detail={spec.child_plural: children})
        await guard.writer.delete(resource, live=True)
        return Response(status_code=204)

    def adder(route: ChildRoute[P, C, Any]) -> Callable[..., Any]:
        async def add(
            resource_id: ResourceId, body: StrictBody, principal: PrincipalDep, guard: GuardDep
        ) -> BaseModel:
            require_role(principal, *WRITER_ROLES)
            resource = await guard.owned(principal, spec.entity, resource_id,
                                         operation=route.operation)
            if guard.store.count_children(spec.child_entity.ENTITY_TYPE, resource.id) >= (
                spec.max_children
            ):
                raise ConflictError(
                    f"a {spec.noun} holds at most {spec.max_children} {spec.child_plural}")
            child = route.new(body, resource)
            await guard.writer.put(child)
            return spec.show_child(child)

        add.__annotations__["body"] = route.body
        return add

    # FastAPI validates a body against the endpoint's annotation: the resource's own models.
    create.__annotations__["body"] = spec.create_body
    change.__annotations__["body"] = spec.change_body

    router.add_api_route(
        "", create, methods=["POST"], status_code=201, response_model=spec.out,
        name=f"create_{spec.noun}", responses={
            401: {}, 403: {}, 409: {}, **({404: {}} if spec.references is not no_references
                                          else {})})
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
        f"/{{{id_param}}}", change, methods=["PATCH"], response_model=spec.out,
        name=f"update_{spec.noun}", responses={401: {}, 403: {}, 404: {}, 503: {}},
        description=f"Change the fields the body names; the {spec.noun} as it is now.")
    router.add_api_route(
        f"/{{{id_param}}}", delete, methods=["DELETE"], status_code=204,
        response_class=Response, name=f"delete_{spec.noun}",
        responses={401: {}, 403: {}, 404: {}, 503: {}},
        description=f"Delete the {spec.noun} and its {spec.child_plural} (soft: a deletion "
                    "record on the entities topic; audited).")
    for route in spec.adds:
        router.add_api_route(
            f"/{{{id_param}}}/{route.segment}", adder(route), methods=["POST"],
            status_code=201, response_model=spec.child_out, name=route.name,
            responses={401: {}, 403: {}, 404: {}, 409: {}})
    return router
