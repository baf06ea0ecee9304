"""Meetings of the caller's identity: ``/api/v2/meetings``.

A meeting has a title, an optional start, its participants (identities, by id) and a link to
one of its owner's threads; its agenda items, notes and decisions are its children (one
entity, ``meeting_entry``, with a ``kind``), added with ``POST /{id}/agenda``, ``/notes`` and
``/decisions`` and listed together, oldest first, in ``GET /{id}``. A request naming the
meeting (``meeting_id``) gets its entries in the context lane B builds, as untrusted data that
lane D checks like a thread message.

The routes are the owned-resource router's (``gateway.owned``): owner from the token, the
identity boundary on every id, soft and audited deletes, the same caps. What is particular
here: the linked thread is resolved through the boundary (another identity's thread is a
403 and a recorded crossing, whether named at creation or in a ``PATCH``), and
``POST /{id}/participants`` adds one participant, an update of the meeting audited like a
``PATCH`` (``PATCH`` with ``participants`` replaces the whole list, as RFC 7396 does with
arrays). A participant is an identity id, not checked against the identities: naming one
grants it nothing, and an unchecked id makes the route no oracle for other users' identities.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from gateway import caps
from gateway.bodies import AwareDateTime, StrictBody
from gateway.deps import GuardDep, PrincipalDep, require_role
from gateway.owned import (
    WRITER_ROLES,
    ChangeBody,
    ChildRoute,
    OwnedResource,
    change_owned,
    changeable,
    owned_router,
)
from nova.domain.context import MeetingEntryKind
from nova.domain.identity_format import IDENTITY_ID_PATTERN
from nova.entities.models import (
    AnyEntity,
    MeetingEntity,
    MeetingEntryEntity,
    ThreadEntity,
    ms_to_datetime,
)
from nova.entities.store import EntityStore
from nova.errors import ConflictError
from nova.ids import uuid7
from nova.records import now_ms

MAX_MEETINGS_PER_IDENTITY = 500
MAX_ENTRIES_PER_MEETING = caps.MAX_ENTRIES_PER_MEETING
MAX_PARTICIPANTS = 100
MAX_TEXT = caps.MAX_ENTRY_TEXT

Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
IdentityId = Annotated[str, StringConstraints(pattern=IDENTITY_ID_PATTERN)]
ThreadId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Participants = Annotated[list[IdentityId], Field(max_length=MAX_PARTICIPANTS)]


class MeetingCreate(StrictBody):
    title: Title
    thread_id: ThreadId | None = Field(default=None, description="one of the caller's threads")
    participants: Participants = Field(default_factory=list)
    starts_at: AwareDateTime | None = None


class MeetingChange(ChangeBody):
    title: Title | SkipJsonSchema[None] = changeable()
    thread_id: ThreadId | SkipJsonSchema[None] = changeable()
    participants: Participants | SkipJsonSchema[None] = changeable()
    starts_at: AwareDateTime | SkipJsonSchema[None] = changeable()


class ParticipantAdd(StrictBody):
    identity_id: IdentityId


class EntryCreate(StrictBody):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class MeetingOut(BaseModel):
    id: str
    owner: str
    title: str
    thread_id: str | None
    participants: list[str]
    starts_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, m: MeetingEntity) -> MeetingOut:
        return cls(
            id=m.id, owner=m.owner, title=m.title, thread_id=m.thread_id,
            participants=list(m.participants), starts_at=m.starts_at,
            created_at=ms_to_datetime(m.created_at),
        )


class EntryOut(BaseModel):
    id: str
    meeting_id: str
    kind: MeetingEntryKind
    text: str
    created_at: datetime

    @classmethod
    def of(cls, e: MeetingEntryEntity) -> EntryOut:
        return cls(id=e.entry_id, meeting_id=e.meeting_id, kind=e.kind, text=e.text,
                   created_at=ms_to_datetime(e.created_at))


class MeetingDetail(MeetingOut):
    entries: list[EntryOut]
    entry_count: int


def _new_meeting(body: MeetingCreate, owner: str) -> MeetingEntity:
    return MeetingEntity(
        id=uuid7(), owner=owner, title=body.title, thread_id=body.thread_id,
        participants=tuple(body.participants), starts_at=body.starts_at,
        created_at=now_ms(),
    )


def _entry_of(kind: MeetingEntryKind) -> Any:
    def new(body: EntryCreate, meeting: MeetingEntity) -> MeetingEntryEntity:
        return MeetingEntryEntity(
            id=f"{meeting.id}:{uuid7()}", owner=meeting.owner, meeting_id=meeting.id,
            kind=kind, text=body.text, created_at=now_ms(),
        )
    return new


def _references(body: BaseModel) -> Sequence[tuple[type[AnyEntity], str]]:
    thread_id = getattr(body, "thread_id", None)
    return () if thread_id is None else ((ThreadEntity, thread_id),)


SPEC: OwnedResource[MeetingEntity, MeetingEntryEntity, MeetingCreate, EntryCreate] = (
    OwnedResource(
        prefix="/api/v2/meetings", noun="meeting", plural="meetings", entity=MeetingEntity,
        create_body=MeetingCreate, new=_new_meeting, change_body=MeetingChange,
        out=MeetingOut, show=MeetingOut.of,
        max_per_identity=MAX_MEETINGS_PER_IDENTITY,
        child_plural="entries", child_noun="entry", child_entity=MeetingEntryEntity,
        child_out=EntryOut, show_child=EntryOut.of, children=EntityStore.entries,
        max_children=MAX_ENTRIES_PER_MEETING, detail=MeetingDetail,
        adds=(
            ChildRoute("agenda", EntryCreate, _entry_of("agenda"), "add_agenda_item",
                       "add_agenda_item"),
            ChildRoute("notes", EntryCreate, _entry_of("note"), "add_note", "add_note"),
            ChildRoute("decisions", EntryCreate, _entry_of("decision"), "add_decision",
                       "add_decision"),
        ),
        references=_references,
    )
)

router = owned_router(SPEC)


@router.post(
    "/{meeting_id}/participants", response_model=MeetingOut, name="add_participant",
    responses={401: {}, 403: {}, 404: {}, 409: {}, 503: {}},
    description="Add one participant (an identity id); the meeting as it is now. Adding one "
                "already there changes nothing.",
)
async def add_participant(
    meeting_id: Annotated[str, Path()], body: ParticipantAdd, principal: PrincipalDep,
    guard: GuardDep,
) -> MeetingOut:
    meeting = await guard.owned(principal, MeetingEntity, meeting_id,
                                operation="add_participant")
    require_role(principal, *WRITER_ROLES)
    if body.identity_id in meeting.participants:
        return MeetingOut.of(meeting)
    if len(meeting.participants) >= MAX_PARTICIPANTS:
        raise ConflictError(f"a meeting has at most {MAX_PARTICIPANTS} participants")
    changed = await change_owned(SPEC, guard, principal, meeting,
                                 {"participants": (*meeting.participants, body.identity_id)})
    return MeetingOut.of(changed)
