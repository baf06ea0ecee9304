"""Audit facts raised outside the lanes (identity boundary crossings at the gateway).

A refused cross-identity access is a security event: it must leave a durable trace even though
the request itself never reaches the pipeline. The fact travels twice: as an ``alert`` event on
the ``events`` topic (it lands in the ClickHouse ``alerts`` table for analysts) and as an
``AuditFact`` on the ``facts`` topic, which lane G appends to the hash-chained audit topic.

The fact names the resource and its owner; the HTTP answer to the caller never does.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from nova.ids import uuid7
from nova.records import Alert, AuditFact, Event, Record, now_ms


class RecordSender(Protocol):
    """What the entity writer and the audit facts need of a producer (``RecordProducer``)."""

    async def send(self, topic: str, key: str, record: Record) -> None: ...


async def emit_audit_fact(
    producer: RecordSender,
    kind: str,
    identity_id: str,
    actor: str,
    request_id: str | None,
    detail: dict[str, Any],
) -> Event:
    """Produce one audit fact of ``kind`` (e.g. ``IDENTITY_BOUNDARY``) about ``identity_id``.

    ``actor`` is who acted (the token's subject), ``detail`` what they tried: by convention
    ``resource_kind``, ``resource_id``, ``owner_identity`` and ``operation``. Keyed by the
    request id when there is one, else by the identity. Returns the event sent.
    """
    resource_kind = detail.get("resource_kind")
    resource_id = detail.get("resource_id")
    subject = f"{resource_kind}:{resource_id}" if resource_kind and resource_id else identity_id
    message = json.dumps({"actor": actor, **detail}, sort_keys=True, separators=(",", ":"),
                         default=str)
    event = Event(
        event_id=uuid7(),
        kind="alert",
        request_id=request_id or "",
        identity_id=identity_id,
        ts=now_ms(),
        alert=Alert(alert_type=kind, subject=subject, message=message, severity="high"),
    )
    await producer.send("events", request_id or identity_id, event)
    # ...and to lane G, which appends it to the hash-chained audit topic.
    await producer.send("facts", request_id or identity_id, AuditFact(
        fact_id=event.event_id, kind=kind, request_id=request_id, identity_id=identity_id,
        actor=actor, ts=event.ts,
        detail=json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)))
    return event
