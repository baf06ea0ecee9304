"""What every lane agent shares: topics, codecs, the worker's name and the dead-letter path.

Built once per worker in :func:`streams.app.build_app` and handed to each lane, so lanes never
reach for globals and tests can build one against their own topic prefix. The collaborators
the lanes rely on are typed attributes of two containers, never entries looked up by name:
``services`` (:class:`~streams.services.WorkerServices`, the guards, started before the app)
and ``state`` (:class:`LaneState`, the partition-local state built with the app).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import faust
from faust.exceptions import ConsumerNotStarted
from faust.streams import current_event

from nova.entities.view import Witness
from nova.records import (
    AuditFact,
    AuditRecord,
    DeadLetter,
    Event,
    LaneEvent,
    PipelineRecord,
    Record,
    now_ms,
)
from nova.settings import Settings
from schemas import TOPICS, SchemaSet
from streams.services import WorkerServices

log = logging.getLogger(__name__)

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


class AuditAppender(Protocol):
    """What lanes need of lane G's chain (:class:`streams.lanes.lane_g_audit.AuditChain`):
    named here so this module, which every lane imports, imports no lane."""

    async def append(self, partition: int, fact: AuditFact) -> AuditRecord: ...


@dataclass(frozen=True)
class LaneState:
    """The lanes' partition-local state, built with the Faust app."""

    held: MutableMapping[bytes, bytes]  # lane E: held requests (a changelogged table)
    llm_results: MutableMapping[bytes, bytes]  # lane F: one LLM result per request (table)
    # lane F: sets (None: deletes) an llm_results entry and returns once its changelog record
    # is on the broker
    put_durably: Callable[[bytes, bytes | None], Awaitable[None]]
    # lane F: the same for a held entry (an agent run paused at a tool call's checkpoint)
    hold_durably: Callable[[bytes, bytes], Awaitable[None]]
    audit_chain: AuditAppender  # lane G: the fenced writers of the audit partitions
    current_partition: Callable[[], int]  # the partition of the record being processed


@dataclass
class LaneContext:
    """Topics (by logical name), codecs and identity of this worker, and what lanes rely on."""

    app: faust.App
    settings: Settings
    schemas: SchemaSet
    worker: str
    services: WorkerServices
    state: LaneState
    topics: dict[str, faust.TopicT] = field(default_factory=dict)

    def witness(self) -> Witness | None:
        """The record being processed, as the entity barrier's witness (None outside an agent).

        Its partition's highwater is what the consumer's last fetch response reported: read
        here, before the barrier asks the broker anything, as the barrier requires.
        """
        event = current_event()
        if event is None:
            return None
        message = event.message
        try:  # None: nothing fetched yet; the record alone witnesses then
            highwater: int | None = self.app.consumer.highwater(message.tp)
        except (AssertionError, ConsumerNotStarted):  # aiokafka: no longer assigned
            highwater = None
        return Witness(message.topic, message.partition, message.offset, highwater)

    def topic(self, name: str) -> faust.TopicT:
        if name not in self.topics:
            self.topics[name] = self.app.topic(self.settings.topic(name), **RAW)
        return self.topics[name]

    async def send(self, topic: str, key: str, record: Record) -> None:
        codec = self.schemas[TOPICS[topic].value_schema]
        await self.topic(topic).send(
            key=key.encode(),
            value=codec.encode(record.to_avro()),
            headers=[codec.header, *record.kafka_headers()],
        )

    async def send_durably(self, topic: str, key: str, record: Record) -> None:
        """:meth:`send`, returning once the broker acknowledged the record (acks=all)."""
        codec = self.schemas[TOPICS[topic].value_schema]
        sent = await self.topic(topic).send(
            key=key.encode(),
            value=codec.encode(record.to_avro()),
            headers=[codec.header, *record.kafka_headers()],
        )
        await sent

    async def emit_lanes(self, record: PipelineRecord) -> None:
        """Write the request's lane events, all in one record: the lanes carry their timings
        in the record (``PipelineRecord.lanes``), so the events topic gets them once, when the
        request leaves the lanes, rather than one record per lane (issue 9). Written again for
        a request that comes back (an approved hold), the same lanes collapse in ClickHouse
        (one row per request and lane, the latest wins)."""
        if not record.lanes:
            return
        event = Event(
            event_id=f"{record.request_id}/lanes/{len(record.lanes)}",
            kind="lanes",
            request_id=record.request_id,
            identity_id=record.identity_id,
            ts=now_ms(),
            lanes=tuple(
                LaneEvent(
                    lane=t.lane,
                    status=t.status,
                    started_at=t.started_at,
                    duration_ms=t.duration_ms,
                    worker=t.worker or self.worker,
                    error=t.error,
                )
                for t in record.lanes
            ),
        )
        await self.send("events", record.request_id, event)

    def estimate_cost(self, record: PipelineRecord, tokens: int) -> float:
        """Expected cost in USD of executing ``record`` (0 when no provider can serve it)."""
        return self.services.execution.estimate_cost(record, tokens)

    def primary_provider(self, record: PipelineRecord, tokens: int) -> str | None:
        """The provider lane F would try first, so provider rules apply to routed requests."""
        return self.services.execution.primary_provider(record, tokens)

    async def audit(self, fact: AuditFact) -> None:
        """Hand a fact to lane G, the single writer of the hash-chained audit topic."""
        await self.send("facts", fact.request_id or fact.identity_id, fact)

    async def emit(self, event: Event) -> None:
        await self.send("events", event.request_id, event)

    async def dead_letter(
        self,
        message: Any,
        lane: str,
        exc: BaseException,
    ) -> None:
        """Park an unprocessable record with its reason and original bytes; never raise."""
        headers = {k: bytes(v) for k, v in _headers(message.headers) if v is not None}
        letter = DeadLetter(
            source_topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key if isinstance(message.key, bytes) else None,
            value=message.value if isinstance(message.value, bytes) else None,
            headers=headers,
            lane=lane,
            error_type=type(exc).__name__,
            reason=str(exc)[:2000] or "".join(traceback.format_exception_only(exc)).strip(),
            failed_at=now_ms(),
        )
        key = f"{message.topic}/{message.partition}/{message.offset}"
        log.warning("lane %s: dead-lettered %s: %s", lane, key, letter.reason)
        await self.send("deadletter", key, letter)


def _headers(raw: Any) -> Iterable[tuple[str, Any]]:
    if raw is None:
        return ()
    if isinstance(raw, dict):
        return raw.items()
    return raw  # type: ignore[no-any-return]
