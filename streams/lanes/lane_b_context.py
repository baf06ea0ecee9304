"""Lane B, context snapshot: the referenced thread history and dataspace items, bounded.

Only resources of the requesting identity are read; a foreign or unknown reference is left out
here and refused by lane D, which sees the owners.
"""

from __future__ import annotations

from nova.convert import context_record
from nova.domain.context import DataspaceItem, ThreadMessage, build_snapshot
from nova.domain.encoding import render_context
from nova.entities.view import EntityView
from nova.records import PipelineRecord
from streams.context import LaneContext
from streams.runtime import LaneOutcome


class ContextLane:
    code = "B"
    source = "intents"
    output = "contexts"

    async def process(self, record: PipelineRecord, ctx: LaneContext) -> LaneOutcome:
        if record.finished:
            return LaneOutcome(record, status="skipped")
        entities: EntityView = ctx.services.entities
        messages: list[ThreadMessage] = []
        items: list[DataspaceItem] = []
        if record.thread_id or record.dataspace_ids:
            await entities.sync()
            owner = record.identity_id
            if record.thread_id and entities.owner("thread", record.thread_id) == owner:
                messages = list(entities.thread_messages(record.thread_id))
            for ds in record.dataspace_ids:
                if entities.owner("dataspace", ds) == owner:
                    items.extend(entities.dataspace_items(ds))
        snapshot = build_snapshot(messages, items, ctx.settings.context_token_budget)
        text = render_context(snapshot) if snapshot.items else ""
        return LaneOutcome(record.model_copy(update={"context": context_record(snapshot, text)}))
