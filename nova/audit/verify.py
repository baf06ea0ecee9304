"""Walk the audit topic from the start and check every partition's hash chain; then check that
every decision and entity change on the log is the gateway's.

Reads up to the end offsets taken when each walk starts, so a running pipeline does not make
the walk endless; records appended meanwhile are checked by the next run.

Signatures (``nova.signing``): every record of ``decisions`` and ``entities`` must verify with
the gateway's public key, and ``expiries`` may carry nothing but ``expire``. A record that
does not is *untrusted*: lane E and the entity views ignored it, and the worker dead-lettered
and audited it as ``UNTRUSTED_RECORD`` naming its topic, partition and offset. The walk matches
each untrusted record with that audit record: one that was refused and audited is reported
with where its audit is; one without an audit record (no worker judged it yet, or something
acted on it unseen) fails the verification, like a broken link.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nova.audit.chain import ChainReport, ChainVerifier
from nova.entities.models import entity_key
from nova.errors import ConfigError, SchemaError, SignatureError
from nova.kafka.admin import all_partitions
from nova.kafka.tail import open_reader
from nova.records import AuditRecord, CheckpointDecisionRecord, EntityEvent
from nova.settings import Settings
from nova.signing import Verifier, load_verifier
from schemas import TOPICS, SchemaSet, load_schema_set

UNTRUSTED_RECORD = "UNTRUSTED_RECORD"  # the audit fact lane E and the entity guard emit
SIGNED_TOPICS = ("decisions", "expiries", "entities")

Handler = Callable[[Any], Awaitable[None] | None]


def entry_of(record: AuditRecord) -> dict[str, object]:
    data = record.to_avro()
    data.pop("prev_hash")
    data.pop("hash")
    return data


@dataclass(frozen=True)
class Untrusted:
    """A decision or entity change that is not the gateway's, and where its audit is."""

    topic: str
    partition: int
    offset: int
    reason: str
    audited_at: tuple[int, int] | None  # (audit partition, offset) of its UNTRUSTED_RECORD

    def __str__(self) -> str:
        where = (f"rejected, audited at audit partition {self.audited_at[0]} offset "
                 f"{self.audited_at[1]}" if self.audited_at else "NOT AUDITED")
        return f"{self.topic} partition {self.partition} offset {self.offset}: {self.reason} " \
               f"({where})"


@dataclass(frozen=True)
class VerifyResult:
    report: ChainReport
    partitions: int
    signed_checked: int = 0
    untrusted: tuple[Untrusted, ...] = ()
    unchecked: str | None = None  # why signatures could not be checked (no public key)

    @property
    def unaudited(self) -> tuple[Untrusted, ...]:
        return tuple(u for u in self.untrusted if u.audited_at is None)

    @property
    def ok(self) -> bool:
        """The chains are intact, signatures were checked, and every untrusted record was
        refused and audited."""
        return self.report.ok and self.unchecked is None and not self.unaudited


async def _walk(settings: Settings, name: str, handle: Handler) -> int:
    """Feed every record of logical topic ``name`` (up to its end now) to ``handle``."""
    topic = settings.topic(name)
    # the audit chain is what its writers committed: a fenced writer's aborted records are not
    # links (streams.audit_writer); the end offsets are then the last stable ones
    async with await open_reader(settings, [name], isolation_level="read_committed",
                                 assign=False) as reader:
        consumer = reader.consumer
        parts = await all_partitions(consumer, {topic: name})
        if not parts:
            raise SchemaError(f"topic {topic} does not exist")
        ends = await consumer.end_offsets(parts)  # before assign: see nova.kafka.tail
        starts = await consumer.beginning_offsets(parts)
        consumer.assign(parts)
        for tp in parts:
            consumer.seek(tp, starts[tp])
        remaining = {tp for tp in parts if ends[tp] > 0}
        while remaining:
            polled = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, messages in polled.items():
                for msg in messages:
                    if msg.offset >= ends[tp]:
                        remaining.discard(tp)
                        break
                    done = handle(msg)
                    if done is not None:
                        await done
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return len(parts)


def judge(schemas: SchemaSet, verifier: Verifier, name: str, msg: Any) -> str | None:
    """Why a record of ``decisions``/``expiries``/``entities`` is untrusted, or None."""
    codec = schemas[TOPICS[name].value_schema]
    try:
        if name == "entities":
            if msg.value is None:
                return "a null-value tombstone: Nova never writes one"
            event = EntityEvent.from_avro(codec.decode(msg.value, msg.headers))
            key = msg.key.decode("utf-8", "replace") if msg.key is not None else None
            if key is not None and key != entity_key(event.entity_type, event.entity_id):
                return "the record's key and body name different entities"
            verifier.verify_entity(event)
            return None
        decision = CheckpointDecisionRecord.from_avro(codec.decode(msg.value, msg.headers))
        if name == "expiries":
            return None if decision.decision == "expire" else (
                f"the expiries topic carries only expire, not {decision.decision!r}")
        verifier.verify_decision(decision)
        if decision.decision not in ("approve", "reject"):
            return f"the decisions topic carries approve or reject, not {decision.decision!r}"
        return None
    except (SchemaError, SignatureError, ValueError) as exc:
        return str(exc) or type(exc).__name__


async def verify_audit(
    settings: Settings,
    progress: Callable[[int], None] | None = None,
    *,
    verifier: Verifier | None = None,
) -> VerifyResult:
    """Check the audit chains, then every signed topic against the gateway's public key.

    ``verifier``: the public key(s) to check with; by default the gateway's, from settings.
    Without one the chains are still checked and ``unchecked`` says why signatures were not
    (the result is then not ``ok``).
    """
    unchecked: str | None = None
    if verifier is None:
        try:
            verifier = load_verifier(settings)
        except ConfigError as exc:
            unchecked = str(exc)
    schemas = load_schema_set()
    codec = schemas["audit_record"]
    chain = ChainVerifier()
    audited: dict[tuple[str, int, int], tuple[int, int]] = {}

    def on_audit(msg: Any) -> None:
        try:
            rec = AuditRecord.from_avro(codec.decode(msg.value, msg.headers))
            chain.feed(msg.partition, msg.offset, entry_of(rec), rec.prev_hash, rec.hash)
        except (SchemaError, ValueError) as exc:
            chain.feed(msg.partition, msg.offset, {"undecodable": str(exc)}, "undecodable",
                       "undecodable")
        else:
            if rec.kind == UNTRUSTED_RECORD:
                try:
                    detail = json.loads(rec.detail)
                    where = (str(detail["topic"]), int(detail["partition"]),
                             int(detail["offset"]))
                except (ValueError, KeyError, TypeError):
                    pass
                else:
                    audited.setdefault(where, (msg.partition, msg.offset))
        if progress is not None:
            progress(1)

    partitions = await _walk(settings, "audit", on_audit)
    untrusted: list[Untrusted] = []
    checked = 0
    if verifier is None:
        return VerifyResult(chain.report(), partitions, unchecked=unchecked)
    for name in SIGNED_TOPICS:
        full = settings.topic(name)

        def on_signed(msg: Any, name: str = name, full: str = full,
                      verifier: Verifier = verifier) -> None:
            nonlocal checked
            checked += 1
            reason = judge(schemas, verifier, name, msg)
            if reason is not None:
                untrusted.append(Untrusted(full, msg.partition, msg.offset, reason,
                                           audited.get((full, msg.partition, msg.offset))))
            if progress is not None:
                progress(1)

        await _walk(settings, name, on_signed)
    return VerifyResult(chain.report(), partitions, checked, tuple(untrusted))
