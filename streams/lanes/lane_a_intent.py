"""Lane A, intent: what kind of task is this, and how risky is the action it asks for?

Deterministic rules (``nova.domain.intent``); a client-declared action can raise the risk,
never lower it.
"""

from __future__ import annotations

from nova.convert import intent_record
from nova.domain.intent import classify
from nova.records import PipelineRecord
from streams.context import LaneContext
from streams.runtime import LaneOutcome


class IntentLane:
    code = "A"
    source = "requests"
    output = "intents"

    async def process(self, record: PipelineRecord, ctx: LaneContext) -> LaneOutcome:
        if record.finished:
            return LaneOutcome(record, status="skipped")
        intent = classify(record.prompt, record.declared_action, record.task_type_hint)
        return LaneOutcome(
            record.model_copy(update={"intent": intent_record(intent), "status": "in_flight"})
        )
