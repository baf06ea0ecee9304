"""The ``held`` table's entries: what waits at a checkpoint, and under which key.

A request held by lane E is kept under its request id. An agent's tool call held during the
request's run (``streams.agent_run``) is kept under its own key, the request id and the
call's checkpoint id, so the request's own entry (approved, perhaps) stays as it was: a
decision delivered again for the request's checkpoint finds it, and one for the tool call's
finds that. An entry is written while a record of the request (keyed by its id on every topic)
is processed, and Faust writes a table change to the partition of the record being processed,
so every entry of a request is in the table partition the worker holding the request's
partitions holds (Faust's assignor gives one worker partition n of every co-partitioned topic).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from nova.records import PipelineRecord, now_ms


def held_entry(record: PipelineRecord, state: str) -> bytes:
    """The entry for ``record`` in ``state``, dated (``at``) for ``streams.retention``."""
    return json.dumps({"state": state, "at": now_ms(),
                       "record": record.model_dump(mode="json")}).encode()


def parse_entry(raw: bytes) -> tuple[str, PipelineRecord]:
    data = json.loads(raw)
    return data["state"], PipelineRecord.model_validate(data["record"])


def held_key(request_id: str, checkpoint_id: str | None = None) -> bytes:
    """The request's own entry, or (``checkpoint_id``) a tool call's held in its run."""
    return (request_id if checkpoint_id is None else f"{request_id}/{checkpoint_id}").encode()


def find_held(table: Mapping[bytes, bytes], request_id: str, checkpoint_id: str
              ) -> tuple[bytes, bytes] | None:
    """The entry a decision on ``checkpoint_id`` of ``request_id`` is about, and its key: a
    tool call's if there is one by that id, else the request's own."""
    for key in (held_key(request_id, checkpoint_id), held_key(request_id)):
        raw = table.get(key)
        if raw is not None:
            return key, raw
    return None
