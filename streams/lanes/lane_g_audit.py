"""Lane G, audit: every outcome and every audit fact, appended to a hash-chained audit topic.

Lane G is the only writer of the ``audit`` topic, and it writes a record to the same partition
number it consumed the fact or outcome from, so each audit partition has exactly one writer at
a time and its chain (``nova.audit.chain``) is linear. The chain head of a partition is read
back from the audit topic itself the first time the partition is written after start-up or a
rebalance, so a restart continues the chain instead of forking it. A record re-processed
after a crash is appended again under the same ``audit_id``: the chain stays valid and
auditors can see the duplicate for what it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from nova.audit.chain import GENESIS_HASH, link_hash
from nova.audit.facts import governance_fact, outcome_fact
from nova.errors import SchemaError
from nova.kafka.tail import open_reader
from nova.records import AuditFact, AuditRecord, PipelineRecord
from nova.settings import Settings
from schemas import TOPICS, SchemaSet
from streams.context import RAW, LaneContext
from streams.runtime import LaneOutcome

log = logging.getLogger(__name__)


def audit_entry(rec: AuditRecord) -> dict[str, Any]:
    """The hashed part of an audit record: every field but the two hashes."""
    data = rec.to_avro()
    data.pop("prev_hash")
    data.pop("hash")
    return data


class AuditChain:
    """Chain heads per audit partition, recovered lazily from the topic's last record."""

    def __init__(self, app: faust.App, settings: Settings, schemas: SchemaSet) -> None:
        self.app = app
        self.settings = settings
        self.schemas = schemas
        self.topic = app.topic(settings.topic("audit"), **RAW)
        self.heads: dict[int, str] = {}
        self.locks: dict[int, asyncio.Lock] = {}

    def forget(self) -> None:
        self.heads.clear()

    async def _recover_with_retries(self, partition: int, attempts: int = 6) -> str:
        """The chain head, retried with backoff: a slow broker must not fail a request."""
        delay = 0.5
        for attempt in range(attempts):
            try:
                return await self._recover(partition)
            except (SchemaError, KafkaError, OSError) as exc:
                if attempt == attempts - 1:
                    raise
                log.warning("audit partition %s: chain head not readable yet (%s)", partition, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    async def _recover(self, partition: int) -> str:
        settings = self.settings
        tp = TopicPartition(settings.topic("audit"), partition)
        async with await open_reader(settings, ["audit"], self.schemas, assign=False,
                                     auto_offset_reset="latest",
                                     isolation_level="read_uncommitted") as reader:
            consumer = reader.consumer
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            if end == 0:
                return GENESIS_HASH
            consumer.seek(tp, end - 1)
            batch = await consumer.getmany(tp, timeout_ms=10_000)
            msgs = batch.get(tp, [])
            if not msgs:
                raise SchemaError(f"audit partition {partition}: cannot read the chain head")
            return str(reader.decode(msgs[-1])["hash"])

    async def append(self, partition: int, fact: AuditFact) -> AuditRecord:
        lock = self.locks.setdefault(partition, asyncio.Lock())
        async with lock:
            if partition not in self.heads:
                # Make sure our own earlier appends are on the broker before reading the head.
                await self.app.producer.flush()
                self.heads[partition] = await self._recover_with_retries(partition)
            prev = self.heads[partition]
            unsigned = AuditRecord(
                audit_id=fact.fact_id,
                kind=fact.kind,
                request_id=fact.request_id,
                identity_id=fact.identity_id,
                actor=fact.actor,
                ts=fact.ts,
                detail=fact.detail,
                prev_hash=prev,
                hash="",
            )
            digest = link_hash(prev, audit_entry(unsigned))
            record = unsigned.model_copy(update={"hash": digest})
            codec = self.schemas["audit_record"]
            await self.topic.send(
                key=(fact.request_id or fact.identity_id).encode(),
                value=codec.encode(record.to_avro()),
                headers=[codec.header],
                partition=partition,
            )
            self.heads[partition] = digest
            return record


class AuditLane:
    code = "G"
    source = "executed"
    output = "completed"

    async def process(self, record: PipelineRecord, ctx: LaneContext) -> LaneOutcome:
        final = record if record.finished else record.model_copy(update={"status": "completed"})
        partition = ctx.state.current_partition()
        chain = ctx.state.audit_chain
        if final.governance is not None and final.checkpoint is None:  # held: lane E chained it
            await chain.append(partition, governance_fact(final, final.governance))
        await chain.append(partition, outcome_fact(final))
        return LaneOutcome(final, status="ok")


async def on_fact(ctx: LaneContext, message: Any) -> None:
    codec = ctx.schemas[TOPICS["facts"].value_schema]
    try:
        fact = AuditFact.from_avro(codec.decode(message.value, message.headers))
        json.loads(fact.detail)
    except (SchemaError, ValueError) as exc:
        await ctx.dead_letter(message, "G", exc)
        return
    await ctx.state.audit_chain.append(message.partition, fact)
