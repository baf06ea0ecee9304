"""Walk the audit topic from the start and check every partition's hash chain.

Reads up to the end offsets taken when the walk starts, so a running pipeline does not make
the walk endless; records appended meanwhile are checked by the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from nova.audit.chain import ChainReport, ChainVerifier
from nova.errors import SchemaError
from nova.kafka.admin import all_partitions
from nova.records import AuditRecord
from nova.settings import Settings
from schemas import load_schema_set


def entry_of(record: AuditRecord) -> dict[str, object]:
    data = record.to_avro()
    data.pop("prev_hash")
    data.pop("hash")
    return data


@dataclass(frozen=True)
class VerifyResult:
    report: ChainReport
    partitions: int


async def verify_audit(
    settings: Settings, progress: Callable[[int], None] | None = None
) -> VerifyResult:
    codec = load_schema_set()["audit_record"]
    topic = settings.topic("audit")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        parts = await all_partitions(consumer, [topic])
        if not parts:
            raise SchemaError(f"topic {topic} does not exist")
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        verifier = ChainVerifier()
        remaining = {tp for tp in parts if ends[tp] > 0}
        while remaining:
            polled = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, messages in polled.items():
                for msg in messages:
                    if msg.offset >= ends[tp]:
                        remaining.discard(tp)
                        break
                    try:
                        rec = AuditRecord.from_avro(codec.decode(msg.value, msg.headers))
                        verifier.feed(
                            tp.partition, msg.offset, entry_of(rec), rec.prev_hash, rec.hash
                        )
                    except (SchemaError, ValueError) as exc:
                        verifier.feed(
                            tp.partition,
                            msg.offset,
                            {"undecodable": str(exc)},
                            "undecodable",
                            "undecodable",
                        )
                    if progress is not None:
                        progress(1)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return VerifyResult(verifier.report(), len(parts))
    finally:
        await consumer.stop()
