"""Lane G, audit: every outcome and every audit fact, appended to a hash-chained audit topic.

Lane G is the only writer of the ``audit`` topic, and it writes a record to the same partition
number it consumed the fact or outcome from, so each audit partition has one writer at a time,
the worker that holds that partition of lane G's sources, and its chain (``nova.audit.chain``)
is linear. One writer is enforced, not assumed: each partition is written through a fenced,
transactional writer (``streams.audit_writer``), so a worker that lost the partition in a
rebalance, or resumes after a pause as a zombie, cannot append a second successor to a link.
The chain head is read from the committed records when a worker takes a partition. A record
re-processed after a crash is appended again under the same ``audit_id``: the chain stays
valid and auditors can see the duplicate for what it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nova.audit.facts import governance_fact, outcome_fact
from nova.errors import SchemaError
from nova.records import AuditFact, AuditRecord, PipelineRecord
from nova.settings import Settings
from schemas import TOPICS, SchemaSet
from streams.audit_writer import AuditFenced, PartitionWriter
from streams.context import LaneContext
from streams.runtime import LaneOutcome

log = logging.getLogger(__name__)


class AuditChain:
    """This worker's audit partitions: one fenced writer each, for the partitions it holds.

    ``assign``/``revoke`` follow the consumer's rebalances (lane G's sources, ``executed`` and
    ``facts``, are co-partitioned with ``audit``); :meth:`before_commit` runs before the
    consumer commits offsets, so no source offset is committed before the audit records of
    the records before it.
    """

    def __init__(self, settings: Settings, schemas: SchemaSet,
                 rebalancing: Callable[[], bool] = lambda: False) -> None:
        self.settings = settings
        self.schemas = schemas
        self.rebalancing = rebalancing
        self.sources = frozenset({settings.topic("executed"), settings.topic("facts")})
        self.assigned: set[int] = set()
        self.writers: dict[int, PartitionWriter] = {}

    def writer(self, partition: int) -> PartitionWriter:
        if partition not in self.writers:
            self.writers[partition] = PartitionWriter(
                self.settings, self.schemas, partition,
                owns=lambda: partition in self.assigned, rebalancing=self.rebalancing)
        return self.writers[partition]

    async def append(self, partition: int, fact: AuditFact) -> AuditRecord:
        """Chain ``fact`` onto ``partition``; ``AuditFenced`` if this worker lost it."""
        return await self.writer(partition).append(fact)

    def assign(self, partitions: Iterable[Any]) -> None:
        """The consumer's new assignment (topic partitions): the audit partitions it holds,
        each taken at once, all in parallel, before lane G reads a record of them."""
        self.assigned = {tp.partition for tp in partitions if tp.topic in self.sources}
        for partition in sorted(self.assigned):
            self.writer(partition).prepare()

    async def revoke(self, partitions: Iterable[Any]) -> None:
        revoked = {tp.partition for tp in partitions if tp.topic in self.sources}
        self.assigned -= revoked
        await asyncio.gather(*(self.writers.pop(p).release() for p in revoked
                               if p in self.writers))

    async def close(self) -> None:
        """The worker stops: whatever the last commit did not cover is aborted (and redone)."""
        self.assigned.clear()
        writers, self.writers = list(self.writers.values()), {}
        await asyncio.gather(*(w.release() for w in writers))

    async def before_commit(self, offsets: Mapping[Any, int]) -> Mapping[Any, int]:
        """Commit every writer's transaction; hold back the source offsets of a partition
        whose audit records could not be committed (they are re-sent and committed later)."""
        writers = list(self.writers.values())
        done = await asyncio.gather(*(w.commit() for w in writers))
        failed = {w.partition for w, ok in zip(writers, done, strict=True) if not ok}
        if not failed:
            return offsets
        return {tp: offset for tp, offset in offsets.items()
                if not (tp.topic in self.sources and tp.partition in failed)}


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
    try:
        await ctx.state.audit_chain.append(message.partition, fact)
    except AuditFenced as exc:  # revoked: its next owner reads this fact again
        log.info("%s", exc)
