"""The gateway's applier of agents' writes: what an agent run asked to write, checked again,
signed and written as a thread message or a meeting note.

Only the gateway's key changes entities (``nova.signing``; the worker never holds it), so an
agent's WRITE tool call (``append_thread``, ``append_meeting_note``) is not written by the
worker: lane F, once governance allowed (or a person approved) the call, puts an
:class:`~nova.records.AgentWrite` on ``agent-writes`` (durably, before the model is told
"appended"), and this applier, one per partition among the gateways (consumer group
``<prefix>-agent-writes``), writes it. It trusts nothing of the record but what its own entity
view confirms (:func:`checked`): the identity is not deleted (one the gateway only knows from
tokens is an identity too; it must own the parent), the agent exists, is usable by it and
lists the tool, the thread or meeting is live and owned by that identity, the text is within
the route's size cap and the parent below its child cap. A record produced straight to the
topic by any holder of the worker's credentials gets no further than what the identity could
do itself through the routes.

Applied, the child is written as the routes write one (``EntityWriter.put``, signed), with an
id derived from ``write_id`` and ``create=True``: a redelivered or replayed write finds its id
taken and writes nothing (applied once). A thread message's author is ``agent:<agent_id>``
(meeting entries have no author field). Refused, an ``AGENT_WRITE_REFUSED`` fact goes to the
audit chain (naming the write, the agent and the reason, never the text) and nothing changes.

Offsets are committed after each batch is handled, so a gateway killed mid-batch leaves its
records to the next holder of the partition, which applies what is not yet applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

from aiokafka import TopicPartition
from pydantic import ValidationError

from gateway.caps import (
    MAX_ENTRIES_PER_MEETING,
    MAX_ENTRY_TEXT,
    MAX_MESSAGE_TEXT,
    MAX_MESSAGES_PER_THREAD,
)
from nova.audit.facts import AGENT_WRITE_REFUSED, RecordSender, fact
from nova.entities.models import (
    AgentEntity,
    MeetingEntity,
    MeetingEntryEntity,
    ThreadEntity,
    ThreadMessageEntity,
)
from nova.entities.state import EntityState
from nova.entities.store import EntityWriter
from nova.errors import ConflictError, SchemaError
from nova.kafka.tail import TopicReader, open_reader
from nova.records import AgentWrite, AuditFact
from nova.settings import Settings
from schemas import SchemaSet
from schemas.topics import agent_writes_group

log = logging.getLogger(__name__)

TOPIC: Final = "agent-writes"
TOOL_OF: Final = {"thread_message": "append_thread", "meeting_note": "append_meeting_note"}

Child = ThreadMessageEntity | MeetingEntryEntity
CHILD_TYPE: Final = {"thread_message": ThreadMessageEntity.ENTITY_TYPE,
                     "meeting_note": MeetingEntryEntity.ENTITY_TYPE}


def child_id(write: AgentWrite) -> str:
    """The child's id: its parent's, then one derived from the write (same write, same id)."""
    return f"{write.parent_id}:agent-{write.write_id[:32]}"


def checked(write: AgentWrite, state: EntityState) -> Child | str:
    """The child ``write`` makes if the gateway's own state allows it, or why not."""
    if state.identity(write.identity_id) is None and state.version(
            "identity", write.identity_id) > 0:
        # deleted; one never recorded is a token's identity, which may own resources (its
        # ownership of the parent is checked below)
        return "the identity is deleted"
    agent = state.get(AgentEntity, write.agent_id)
    if agent is None:
        return "no such agent"
    if agent.owner != write.identity_id and agent.visibility != "public":
        return "the agent is not available to this identity"
    tool = TOOL_OF[write.kind]
    if tool not in agent.tools:
        return f"the agent does not list {tool}"
    if not write.text:
        return "empty text"
    if write.kind == "thread_message":
        thread = state.get(ThreadEntity, write.parent_id)
        if thread is None or thread.owner != write.identity_id:
            # one answer for unknown, deleted and foreign: the audit says which write it was
            return "no such thread of this identity"
        if len(write.text) > MAX_MESSAGE_TEXT:
            return f"a message holds at most {MAX_MESSAGE_TEXT} characters"
        if state.count_children(ThreadMessageEntity.ENTITY_TYPE, thread.id) >= (
                MAX_MESSAGES_PER_THREAD):
            return f"a thread holds at most {MAX_MESSAGES_PER_THREAD} messages"
        return ThreadMessageEntity(
            id=child_id(write), owner=thread.owner, thread_id=thread.id,
            author=f"agent:{agent.id}"[:64], text=write.text, created_at=write.ts)
    meeting = state.get(MeetingEntity, write.parent_id)
    if meeting is None or meeting.owner != write.identity_id:
        return "no such meeting of this identity"
    if len(write.text) > MAX_ENTRY_TEXT:
        return f"a note holds at most {MAX_ENTRY_TEXT} characters"
    if state.count_children(MeetingEntryEntity.ENTITY_TYPE, meeting.id) >= (
            MAX_ENTRIES_PER_MEETING):
        return f"a meeting holds at most {MAX_ENTRIES_PER_MEETING} entries"
    return MeetingEntryEntity(
        id=child_id(write), owner=meeting.owner, meeting_id=meeting.id, kind="note",
        text=write.text, created_at=write.ts)


def refusal(write: AgentWrite, reason: str) -> AuditFact:
    """The audit fact of a refused write (its id derived from the write: one per write)."""
    return fact(AGENT_WRITE_REFUSED, write.identity_id, {
        "write_id": write.write_id, "agent_id": write.agent_id, "kind": write.kind,
        "parent_id": write.parent_id, "text_chars": len(write.text), "reason": reason},
        request_id=write.request_id, actor=f"agent:{write.agent_id}", suffix=write.write_id)


class AgentWriteApplier:
    """Reads ``agent-writes`` in the gateways' group and applies each write (module docstring)."""

    def __init__(self, settings: Settings, schemas: SchemaSet, writer: EntityWriter,
                 producer: RecordSender) -> None:
        self.settings = settings
        self.schemas = schemas
        self.writer = writer
        self.producer = producer
        self._reader: TopicReader | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        reader = await open_reader(self.settings, [TOPIC], self.schemas,
                                   group_id=agent_writes_group(self.settings.topic_prefix))
        self._reader = reader
        self._task = asyncio.create_task(self._run(reader), name="agent-writes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._reader is not None:
            await self._reader.close()
            self._reader = None

    async def apply(self, write: AgentWrite) -> str:
        """Apply one write: ``applied``, ``already`` (its child exists) or ``refused``."""
        store = self.writer.store
        await store.sync()  # the parent, agent and child as every gateway has written them
        if store.version(CHILD_TYPE[write.kind], child_id(write)) > 0:
            return "already"  # a copy (even once its parent is gone or full): never refused
        made = checked(write, store)
        if isinstance(made, str):
            log.info("agent write %s refused: %s", write.write_id, made)
            refused = refusal(write, made)
            await self.producer.send("facts", write.request_id, refused)
            return "refused"
        try:
            await self.writer.put(made, create=True)
        except ConflictError:
            return "already"  # another gateway applied it meanwhile
        return "applied"

    async def _run(self, reader: TopicReader) -> None:
        consumer = reader.consumer
        while True:
            try:
                polled = await consumer.getmany(timeout_ms=500, max_records=100)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("agent-write applier: a fetch failed; going on")
                await asyncio.sleep(1)
                continue
            for tp, messages in polled.items():
                done = await self._apply_all(reader, tp, messages)
                if done is not None:
                    with contextlib.suppress(Exception):  # uncommitted: applied again, once
                        await consumer.commit({tp: done + 1})

    async def _apply_all(self, reader: TopicReader, tp: TopicPartition, messages: list[Any]
                         ) -> int | None:
        """Apply a partition's batch in order; the last offset handled. A write that fails
        (Kafka, the store) is fetched again: the partition is rewound to it."""
        last: int | None = None
        for message in messages:
            try:
                write = AgentWrite.from_avro(reader.decode(message))
            except (SchemaError, ValidationError) as exc:
                log.warning("agent write %s@%s skipped: %s", tp, message.offset, exc)
                last = message.offset
                continue
            try:
                await self.apply(write)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("agent write %s failed; retried", write.write_id)
                reader.consumer.seek(tp, message.offset)
                await asyncio.sleep(1)
                return last
            last = message.offset
        return last
