"""The audit topic is a verifiable hash chain: ``nova audit verify`` finds any tampering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from aiokafka import TopicPartition

from nova.audit.verify import verify_audit
from nova.kafka.clients import kafka_consumer
from nova.kafka.producer import RecordProducer
from nova.records import AuditRecord
from schemas import load_schema_set
from tests.integration.conftest import REPO, RESPOND_ASYNC, Gateway, eventually

pytestmark = pytest.mark.integration


async def run_requests(gateway: Gateway, n: int) -> None:
    headers = gateway.auth("identity-audit", "member")
    ids = []  # submitted one after another, answered at once, then followed
    for i in range(n):
        r = await gateway.http.post("/api/v2/nova/requests", headers={**headers, **RESPOND_ASYNC},
                                    json={"prompt": f"Summarise note {i}"})
        ids.append(r.json()["request_id"])

    async def done() -> bool:
        for rid in ids:
            r = await gateway.http.get(f"/api/v2/nova/requests/{rid}", headers=headers)
            if r.json()["status"] != "completed":
                return False
        return True

    await eventually(done, 60, message="requests completed")


async def last_audit_record(settings: Any) -> tuple[int, AuditRecord]:
    """The last committed audit record of the first partition that has one (its writer's
    transaction markers follow it, so the tail is read, not just the last offset)."""
    codec = load_schema_set()["audit_record"]
    consumer = kafka_consumer(settings, enable_auto_commit=False,
                              isolation_level="read_committed")
    await consumer.start()
    try:
        for p in range(settings.topic_partitions):
            tp = TopicPartition(settings.topic("audit"), p)
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            if end == 0:
                continue
            consumer.seek(tp, max(0, end - 64))
            msgs: list[Any] = []
            while await consumer.position(tp) < end:
                msgs += (await consumer.getmany(tp, timeout_ms=10_000)).get(tp, [])
            return p, AuditRecord.from_avro(codec.decode(msgs[-1].value, msgs[-1].headers))
    finally:
        await consumer.stop()
    raise AssertionError("no audit record at all")


def nova_cli(settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.to_env()}
    return subprocess.run([sys.executable, "-m", "nova", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def test_a_clean_chain_verifies_and_a_forged_record_is_named_by_offset(
    gateway: Gateway, worker_factory: Any, settings: Any
) -> None:
    worker_factory()
    await run_requests(gateway, 4)

    async def all_audited() -> Any:  # lane G commits its audit records once a second
        result = await verify_audit(settings)
        return result if result.report.checked >= 8 else None

    # a governance fact and an outcome per request
    clean = await eventually(all_audited, 30, 0.5, message="8 committed audit records")
    assert clean.report.ok
    ok = nova_cli(settings, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert f"checked {clean.report.checked} audit records" in ok.stdout

    partition, last = await last_audit_record(settings)
    detail = json.loads(last.detail)
    detail["status"] = "tampered"
    forged = last.model_copy(update={"detail": json.dumps(detail), "prev_hash": last.hash})
    producer = RecordProducer(settings)
    await producer.start()
    try:
        value, headers = producer.encode("audit", forged)
        await producer._producer.send_and_wait(settings.topic("audit"), value,
                                               key=b"forged", headers=headers,
                                               partition=partition)
    finally:
        await producer.stop()

    broken = await verify_audit(settings)
    assert not broken.report.ok
    first = broken.report.breaks[0]
    assert first.partition == partition
    assert "altered" in first.reason
    bad = nova_cli(settings, "audit", "verify")
    assert bad.returncode == 1
    assert f"partition {partition}, offset {first.offset}" in bad.stderr
