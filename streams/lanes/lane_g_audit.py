"""Lane G: placeholder that passes the request on (filled in by the governance issue)."""

from __future__ import annotations

from nova.records import PipelineRecord
from streams.context import LaneContext
from streams.runtime import LaneOutcome


class AuditLane:
    code = "G"
    source = "executed"
    output = "completed"

    async def process(self, record: PipelineRecord, ctx: LaneContext) -> LaneOutcome:
        if record.finished:
            return LaneOutcome(record, status="skipped")
        return LaneOutcome(record)
