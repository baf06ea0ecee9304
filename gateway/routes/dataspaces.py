"""Dataspaces (document collections) of the caller's identity: ``/api/v2/dataspaces``.

A request naming a dataspace gets its items in the context lane B builds. As with threads,
ids go through the boundary guard, the owner is the token's identity, and sizes are capped
because every item is held in memory by each gateway and worker. The routes are the
owned-resource router's (``gateway.owned``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from gateway.bodies import StrictBody
from gateway.owned import ChangeBody, ChildRoute, OwnedResource, changeable, owned_router
from nova.entities.models import DataspaceEntity, DataspaceItemEntity, ms_to_datetime
from nova.entities.store import EntityStore
from nova.ids import uuid7
from nova.records import now_ms

MAX_DATASPACES_PER_IDENTITY = 200
MAX_ITEMS_PER_DATASPACE = 2000
MAX_TEXT = 64_000


class DataspaceCreate(StrictBody):
    name: str = Field(min_length=1, max_length=200)


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class DataspaceChange(ChangeBody):
    name: Name | SkipJsonSchema[None] = changeable()


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


def _new_dataspace(body: DataspaceCreate, owner: str) -> DataspaceEntity:
    return DataspaceEntity(id=uuid7(), owner=owner, name=body.name, created_at=now_ms())


def _new_item(body: ItemCreate, ds: DataspaceEntity) -> DataspaceItemEntity:
    return DataspaceItemEntity(
        id=f"{ds.id}:{uuid7()}", owner=ds.owner, dataspace_id=ds.id,
        title=body.title, text=body.text, created_at=now_ms(),
    )


router = owned_router(OwnedResource(
    prefix="/api/v2/dataspaces", noun="dataspace", plural="dataspaces", entity=DataspaceEntity,
    create_body=DataspaceCreate, new=_new_dataspace, change_body=DataspaceChange,
    out=DataspaceOut, show=DataspaceOut.of,
    max_per_identity=MAX_DATASPACES_PER_IDENTITY,
    child_plural="items", child_noun="item", child_entity=DataspaceItemEntity,
    child_out=ItemOut, show_child=ItemOut.of,
    children=EntityStore.items, max_children=MAX_ITEMS_PER_DATASPACE, detail=DataspaceDetail,
    adds=(ChildRoute("items", ItemCreate, _new_item, "add_item", "add_item"),),
))
