"""Lane B, context snapshot: the referenced thread history, dataspace items and meeting
entries (agenda items, notes, decisions), bounded.

Only resources of the requesting identity are read; a foreign or unknown reference is left out
here and refused by lane D, which sees the owners. Everything read here is rendered into the one
``<context>`` block (``render_context``) that lane D checks item by item like the prompt: a
meeting note is as untrusted as a thread message, and an instruction planted in one is held.
"""

from __future__ import annotations

from nova.convert import context_record
from nova.domain.context import DataspaceItem, MeetingEntry, ThreadMessage, build_snapshot
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
        entries: list[MeetingEntry] = []
        if record.thread_id or record.dataspace_ids or record.meeting_id:
            await entities.sync(ctx.witness())
            owner = record.identity_id
            if record.thread_id and entities.owner("thread", record.thread_id) == owner:
                messages = list(entities.thread_messages(record.thread_id))
            for ds in record.dataspace_ids:
                if entities.owner("dataspace", ds) == owner:
                    items.extend(entities.dataspace_items(ds))
            if record.meeting_id and entities.owner("meeting", record.meeting_id) == owner:
                entries = list(entities.meeting_entries(record.meeting_id))
        snapshot = build_snapshot(messages, items, ctx.settings.context_token_budget, entries)
        text = render_context(snapshot) if snapshot.items else ""
        return LaneOutcome(record.model_copy(update={"context": context_record(snapshot, text)}))
