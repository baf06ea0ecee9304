"""The entity guard: every entity change that is not the gateway's, dead-lettered and audited once.

The entity views (``nova.entities.store``) of every gateway and worker ignore an entity record
that does not verify with the gateway's public key, but a view rebuilds from the beginning at
each start and would report the same forgery again every time. The guard is the one place
that reports: a consumer of the ``entities`` topic in its own consumer group (so each record
is judged by one worker, and a restarted worker resumes where the group left off), committing
only after the dead letter and the audit fact are on the broker. A record forged while no
worker ran is reported when one comes back.

What it reports, each as a dead letter (reason and original bytes) and an ``UNTRUSTED_RECORD``
audit fact naming the topic, partition and offset (``nova audit verify`` matches them): a
record that does not decode, whose key disagrees with its body, that is unsigned or whose
signature does not verify, and a null-value tombstone. (An older *signed* record replayed is
not a forgery of content; the gateway's view re-signs the key's current state, see
``nova.entities.store``.)

It uses a plain aiokafka consumer, not a Faust agent: the topic is compacted, so its offsets
have gaps, which Nova's Faust consumer treats as unprocessed records (``streams.consumer``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from nova.audit.facts import untrusted_fact
from nova.entities.models import entity_key
from nova.errors import SchemaError, SignatureError
from nova.kafka.tail import open_reader
from nova.records import EntityEvent
from schemas.topics import entity_guard_group
from streams.context import LaneContext

log = logging.getLogger(__name__)

LANE = "entities"


def judge(ctx: LaneContext, message: Any) -> tuple[Exception, EntityEvent | None] | None:
    """Why an entity record is not the gateway's (and what it claimed), or None if it is."""
    key = message.key.decode("utf-8", "replace") if message.key is not None else None
    if message.value is None:
        return SignatureError("a null-value tombstone: Nova never writes one"), None
    try:
        event = EntityEvent.from_avro(ctx.schemas["entity"].decode(message.value, message.headers))
    except (SchemaError, ValueError) as exc:
        return exc, None
    if key is not None and key != entity_key(event.entity_type, event.entity_id):
        return SignatureError("the record's key and body name different entities"), event
    try:
        ctx.services.verifier.verify_entity(event)
    except SignatureError as exc:
        return exc, event
    return None


async def report(ctx: LaneContext, message: Any, exc: Exception, event: EntityEvent | None) -> None:
    """Dead-letter one untrusted entity record and audit it."""
    await ctx.dead_letter(message, LANE, exc)
    key = message.key.decode("utf-8", "replace") if message.key is not None else ""
    owner = event.owner_identity if event is not None else (key or "unknown")
    await ctx.audit(
        untrusted_fact(
            topic=str(message.topic),
            partition=int(message.partition),
            offset=int(message.offset),
            reason=str(exc),
            identity_id=owner,
            request_id=None,
            claimed={
                "key": key,
                "entity_type": event.entity_type if event else None,
                "entity_id": event.entity_id if event else None,
                "version": event.version if event else None,
                "deleted": event.deleted if event else None,
                "key_id": event.key_id if event else None,
            },
        )
    )


class EntityGuard:
    """Consume ``entities`` in the guard's group; report what does not verify (see above)."""

    def __init__(self, ctx: LaneContext) -> None:
        self.ctx = ctx
        self.reported = 0

    async def run(self) -> None:
        """The worker's task: runs until cancelled; a failure is logged and retried."""
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("entity guard failed; retrying in 5 s")
                await asyncio.sleep(5)

    async def _consume(self) -> None:
        settings = self.ctx.settings
        async with await open_reader(settings, ["entities"], self.ctx.schemas,
                                     group_id=entity_guard_group(settings.topic_prefix)) as reader:
            consumer = reader.consumer
            while True:
                polled = await consumer.getmany(timeout_ms=1000, max_records=500)
                if not polled:
                    continue
                found = 0
                for messages in polled.values():
                    for message in messages:
                        verdict = judge(self.ctx, message)
                        if verdict is not None:
                            await report(self.ctx, message, *verdict)
                            found += 1
                if found:
                    await self.ctx.app.producer.flush()  # on the broker before we commit
                    self.reported += found
                await consumer.commit({
                    TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(
                        messages[-1].offset + 1, ""
                    )
                    for tp, messages in polled.items() if messages
                })
