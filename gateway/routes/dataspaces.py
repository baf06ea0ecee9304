"""Dataspaces (document collections) of the caller's identity: ``/api/v2/dataspaces``.

A request naming a dataspace gets its items in the context lane B builds. As with threads,
ids go through the boundary guard, the owner is the token's identity, and sizes are capped
because every item is held in memory by each gateway and worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.bodies import StrictBody
from gateway.deps import GuardDep, PrincipalDep, require_role
from nova.entities.models import DataspaceEntity, DataspaceItemEntity, ms_to_datetime
from nova.errors import ConflictError
from nova.ids import uuid7
from nova.records import now_ms

router = APIRouter(prefix="/api/v2/dataspaces", tags=["dataspaces"])

MAX_DATASPACES_PER_IDENTITY = 200
MAX_ITEMS_PER_DATASPACE = 2000
MAX_TEXT = 64_000
WRITER_ROLES = ("member", "approver")


class DataspaceCreate(StrictBody):
    name: str = Field(min_length=1, max_length=200)


class ItemCreate(StrictBody):
    title: str = Field(default="", max_length=200)
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class DataspaceOut(BaseModel):
    id: str
    owner: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, d: DataspaceEntity) -> DataspaceOut:
        return cls(id=d.id, owner=d.owner, name=d.name, created_at=ms_to_datetime(d.created_at))


class ItemOut(BaseModel):
    id: str
    dataspace_id: str
    title: str
    text: str
    created_at: datetime

    @classmethod
    def of(cls, i: DataspaceItemEntity) -> ItemOut:
        return cls(id=i.item_id, dataspace_id=i.dataspace_id, title=i.title, text=i.text,
                   created_at=ms_to_datetime(i.created_at))


class DataspaceDetail(DataspaceOut):
    items: list[ItemOut]
    item_count: int


@router.post("", status_code=201, response_model=DataspaceOut,
             responses={401: {}, 403: {}, 409: {}})
async def create_dataspace(
    body: DataspaceCreate, principal: PrincipalDep, guard: GuardDep
) -> DataspaceOut:
    require_role(principal, *WRITER_ROLES)
    if guard.store.count_owned(DataspaceEntity.ENTITY_TYPE, principal.identity) >= (
        MAX_DATASPACES_PER_IDENTITY
    ):
        raise ConflictError(f"an identity holds at most {MAX_DATASPACES_PER_IDENTITY} dataspaces")
    ds = DataspaceEntity(id=uuid7(), owner=principal.identity, name=body.name,
                         created_at=now_ms())
    await guard.writer.put(ds)
    return DataspaceOut.of(ds)


@router.get("", response_model=list[DataspaceOut], responses={401: {}, 403: {}})
async def list_dataspaces(
    principal: PrincipalDep,
    guard: GuardDep,
    identity: Annotated[str | None, Query(description="must be the caller's identity")] = None,
) -> list[DataspaceOut]:
    """The caller identity's dataspaces, newest first."""
    owner = await guard.listing(principal, "dataspace", identity)
    spaces = guard.store.owned(DataspaceEntity, owner)
    return [DataspaceOut.of(d) for d in sorted(spaces, key=lambda d: (d.created_at, d.id),
                                               reverse=True)]


@router.get("/{dataspace_id}", response_model=DataspaceDetail,
            responses={401: {}, 403: {}, 404: {}})
async def get_dataspace(
    dataspace_id: str,
    principal: PrincipalDep,
    guard: GuardDep,
    limit: Annotated[int, Query(ge=1, le=MAX_ITEMS_PER_DATASPACE)] = 200,
) -> DataspaceDetail:
    """The dataspace and its latest ``limit`` items, oldest first."""
    ds = await guard.owned(principal, DataspaceEntity, dataspace_id)
    items = guard.store.items(ds.id)
    return DataspaceDetail(
        **DataspaceOut.of(ds).model_dump(),
        items=[ItemOut.of(i) for i in items[-limit:]],
        item_count=len(items),
    )


@router.post("/{dataspace_id}/items", status_code=201, response_model=ItemOut,
             responses={401: {}, 403: {}, 404: {}, 409: {}})
async def add_item(
    dataspace_id: str, body: ItemCreate, principal: PrincipalDep, guard: GuardDep
) -> ItemOut:
    require_role(principal, *WRITER_ROLES)
    ds = await guard.owned(principal, DataspaceEntity, dataspace_id, operation="add_item")
    if guard.store.count_children(DataspaceItemEntity.ENTITY_TYPE, ds.id) >= (
        MAX_ITEMS_PER_DATASPACE
    ):
        raise ConflictError(f"a dataspace holds at most {MAX_ITEMS_PER_DATASPACE} items")
    item = DataspaceItemEntity(
        id=f"{ds.id}:{uuid7()}", owner=ds.owner, dataspace_id=ds.id,
        title=body.title, text=body.text, created_at=now_ms(),
    )
    await guard.writer.put(item)
    return ItemOut.of(item)
