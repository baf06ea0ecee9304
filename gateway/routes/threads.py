"""Conversation threads of the caller's identity: ``/api/v2/threads``.

A thread's messages are the history lane B puts in a request's context when the request names
the thread. Everything here is the caller identity's own: ids are resolved through the
boundary guard, and the owner is always the token's identity, never a field of the body. The
routes are the owned-resource router's (``gateway.owned``); this module says what a
thread and a message are.

Sizes are capped (messages per thread, text length, threads per identity) because every
message is held in memory by each gateway and worker and may be sent to a provider.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from gateway import caps
from gateway.bodies import StrictBody
from gateway.owned import ChangeBody, ChildRoute, OwnedResource, changeable, owned_router
from nova.entities.models import ThreadEntity, ThreadMessageEntity, ms_to_datetime
from nova.entities.store import EntityStore
from nova.ids import uuid7
from nova.records import now_ms

MAX_THREADS_PER_IDENTITY = 1000
MAX_MESSAGES_PER_THREAD = caps.MAX_MESSAGES_PER_THREAD
MAX_TEXT = caps.MAX_MESSAGE_TEXT


class ThreadCreate(StrictBody):
    title: str = Field(default="", max_length=200)


Title = Annotated[str, StringConstraints(max_length=200)]


class ThreadChange(ChangeBody):
    title: Title | SkipJsonSchema[None] = changeable()


class MessageCreate(StrictBody):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    author: Literal["user", "assistant"] = "user"


class ThreadOut(BaseModel):
    id: str
    owner: str
    title: str
    created_at: datetime

    @classmethod
    def of(cls, t: ThreadEntity) -> ThreadOut:
        return cls(id=t.id, owner=t.owner, title=t.title, created_at=ms_to_datetime(t.created_at))


class MessageOut(BaseModel):
    id: str
    thread_id: str
    author: str
    text: str
    created_at: datetime

    @classmethod
    def of(cls, m: ThreadMessageEntity) -> MessageOut:
        return cls(id=m.message_id, thread_id=m.thread_id, author=m.author, text=m.text,
                   created_at=ms_to_datetime(m.created_at))


class ThreadDetail(ThreadOut):
    messages: list[MessageOut]
    message_count: int


def _new_thread(body: ThreadCreate, owner: str) -> ThreadEntity:
    return ThreadEntity(id=uuid7(), owner=owner, title=body.title, created_at=now_ms())


def _new_message(body: MessageCreate, thread: ThreadEntity) -> ThreadMessageEntity:
    return ThreadMessageEntity(
        id=f"{thread.id}:{uuid7()}", owner=thread.owner, thread_id=thread.id,
        author=body.author, text=body.text, created_at=now_ms(),
    )


router = owned_router(OwnedResource(
    prefix="/api/v2/threads", noun="thread", plural="threads", entity=ThreadEntity,
    create_body=ThreadCreate, new=_new_thread, change_body=ThreadChange, out=ThreadOut,
    show=ThreadOut.of,
    max_per_identity=MAX_THREADS_PER_IDENTITY,
    child_plural="messages", child_noun="message", child_entity=ThreadMessageEntity,
    child_out=MessageOut, show_child=MessageOut.of, children=EntityStore.messages,
    max_children=MAX_MESSAGES_PER_THREAD, detail=ThreadDetail,
    adds=(ChildRoute("messages", MessageCreate, _new_message, "append_message", "append"),),
))
