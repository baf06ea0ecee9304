"""Lane C, semantic encoding: the provider-neutral message list and its token estimate.

Identifiers in the prompt and the context (IBANs, card numbers, e-mail addresses, phone numbers,
national ids) are masked here, in every message a provider will receive; the masks travel in the
record so lane D can cite them and lane F can restore the values in the answer.
"""

from __future__ import annotations

from nova.convert import encoded_record
from nova.domain.encoding import encode_rendered
from nova.records import PipelineRecord
from streams.context import LaneContext
from streams.runtime import LaneOutcome


class EncodingLane:
    code = "C"
    source = "contexts"
    output = "encoded"

    async def process(self, record: PipelineRecord, ctx: LaneContext) -> LaneOutcome:
        if record.finished:
            return LaneOutcome(record, status="skipped")
        context_text = record.context.text if record.context else ""
        encoded = encode_rendered(record.prompt, context_text, record.sphere_id)
        return LaneOutcome(record.model_copy(update={"encoded": encoded_record(encoded)}))
