"""Conversation threads of the caller's identity: ``/api/v2/threads``.

A thread's messages are the history lane B puts in a request's context when the request names
the thread. Everything here is the caller identity's own: ids are resolved through the
boundary guard, and the owner is always the token's identity, never a field of the body.

Sizes are capped (messages per thread, text length, threads per identity) because every
message is held in memory by each gateway and worker and may be sent to a provider.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.bodies import StrictBody
from gateway.deps import GuardDep, PrincipalDep, require_role
from nova.entities.models import ThreadEntity, ThreadMessageEntity, ms_to_datetime
from nova.errors import ConflictError
from nova.ids import uuid7
from nova.records import now_ms

router = APIRouter(prefix="/api/v2/threads", tags=["threads"])

MAX_THREADS_PER_IDENTITY = 1000
MAX_MESSAGES_PER_THREAD = 2000
MAX_TEXT = 32_000
WRITER_ROLES = ("member", "approver")


class ThreadCreate(StrictBody):
    title: str = Field(default="", max_length=200)


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


@router.post("", status_code=201, response_model=ThreadOut, responses={401: {}, 403: {}, 409: {}})
async def create_thread(body: ThreadCreate, principal: PrincipalDep, guard: GuardDep) -> ThreadOut:
    require_role(principal, *WRITER_ROLES)
    if guard.store.count_owned(ThreadEntity.ENTITY_TYPE, principal.identity) >= (
        MAX_THREADS_PER_IDENTITY
    ):
        raise ConflictError(f"an identity holds at most {MAX_THREADS_PER_IDENTITY} threads")
    thread = ThreadEntity(id=uuid7(), owner=principal.identity, title=body.title,
                          created_at=now_ms())
    await guard.writer.put(thread)
    return ThreadOut.of(thread)


@router.get("", response_model=list[ThreadOut], responses={401: {}, 403: {}})
async def list_threads(
    principal: PrincipalDep,
    guard: GuardDep,
    identity: Annotated[str | None, Query(description="must be the caller's identity")] = None,
) -> list[ThreadOut]:
    """The caller identity's threads, newest first."""
    owner = await guard.listing(principal, "thread", identity)
    threads = guard.store.owned(ThreadEntity, owner)
    return [ThreadOut.of(t) for t in sorted(threads, key=lambda t: (t.created_at, t.id),
                                            reverse=True)]


@router.get("/{thread_id}", response_model=ThreadDetail, responses={401: {}, 403: {}, 404: {}})
async def get_thread(
    thread_id: str,
    principal: PrincipalDep,
    guard: GuardDep,
    limit: Annotated[int, Query(ge=1, le=MAX_MESSAGES_PER_THREAD)] = 200,
) -> ThreadDetail:
    """The thread and its latest ``limit`` messages, oldest first."""
    thread = await guard.owned(principal, ThreadEntity, thread_id)
    messages = guard.store.messages(thread.id)
    return ThreadDetail(
        **ThreadOut.of(thread).model_dump(),
        messages=[MessageOut.of(m) for m in messages[-limit:]],
        message_count=len(messages),
    )


@router.post("/{thread_id}/messages", status_code=201, response_model=MessageOut,
             responses={401: {}, 403: {}, 404: {}, 409: {}})
async def append_message(
    thread_id: str, body: MessageCreate, principal: PrincipalDep, guard: GuardDep
) -> MessageOut:
    require_role(principal, *WRITER_ROLES)
    thread = await guard.owned(principal, ThreadEntity, thread_id, operation="append")
    if guard.store.count_children(ThreadMessageEntity.ENTITY_TYPE, thread.id) >= (
        MAX_MESSAGES_PER_THREAD
    ):
        raise ConflictError(f"a thread holds at most {MAX_MESSAGES_PER_THREAD} messages")
    message = ThreadMessageEntity(
        id=f"{thread.id}:{uuid7()}", owner=thread.owner, thread_id=thread.id,
        author=body.author, text=body.text, created_at=now_ms(),
    )
    await guard.writer.put(message)
    return MessageOut.of(message)
