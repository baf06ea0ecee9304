"""The audit chain never forks: each audit partition has one writer, fenced by the next.

Two levels. The writers themselves (``streams.audit_writer``) on the real broker: a writer that
lost its partition, its transaction still open, cannot append a second successor to the link
its successor already extended, whether it learns that it lost the partition (it stops) or not
(a zombie: it takes the partition back, which fences the other, and its records are chained
after the other's). Then the workers as deployed: a worker paused with SIGSTOP mid-stream is
missed the rebalance a second worker's arrival started, so the second one took every partition
and went on writing the chains; then the paused one resumes as a zombie with its old chain
heads and open transactions, and ``nova audit verify`` finds every chain intact and every
request done.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from nova.audit.chain import GENESIS_HASH, ChainVerifier
from nova.kafka.clients import kafka_consumer
from nova.records import AuditFact, AuditRecord
from nova.settings import Settings
from schemas import load_schema_set
from streams.audit_writer import AuditFenced, PartitionWriter, audit_entry
from tests.integration.conftest import REPO, eventually
from tests.integration.pipeline_checks import finished, post_requests, worker_group

pytestmark = pytest.mark.integration

SCHEMAS = load_schema_set()


def fact(n: int) -> AuditFact:
    return AuditFact(fact_id=f"fact-{n}", kind="TEST", request_id=f"request-{n}",
                     identity_id="identity-audit", ts=1_700_000_000_000 + n,
                     detail=json.dumps({"n": n}))


async def committed_chain(settings: Settings, partition: int) -> list[AuditRecord]:
    """Partition ``partition`` of the audit topic as every reader sees it (committed records)."""
    from aiokafka import TopicPartition

    tp = TopicPartition(settings.topic("audit"), partition)
    consumer = kafka_consumer(settings, enable_auto_commit=False,
                              isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[Any] = []
        while await consumer.position(tp) < end:
            out += (await consumer.getmany(tp, timeout_ms=5000)).get(tp, [])
    finally:
        await consumer.stop()
    codec = SCHEMAS["audit_record"]
    return [AuditRecord.from_avro(codec.decode(m.value, m.headers)) for m in out]


async def audit_transaction_open(settings: Settings) -> bool:
    """Whether a transaction holding records is open on an audit partition: its last stable
    offset (what ``read_committed`` readers see the end at) is behind its high watermark."""
    from aiokafka import TopicPartition

    tps = [TopicPartition(settings.topic("audit"), p) for p in range(settings.topic_partitions)]
    ends: list[dict[Any, int]] = []
    for isolation in ("read_committed", "read_uncommitted"):
        consumer = kafka_consumer(settings, enable_auto_commit=False, isolation_level=isolation)
        await consumer.start()
        try:
            ends.append(await consumer.end_offsets(tps))
        finally:
            await consumer.stop()
    stable, high = ends
    return any(stable[tp] < high[tp] for tp in tps)


def assert_linear(chain: list[AuditRecord]) -> None:
    verifier = ChainVerifier()
    for offset, rec in enumerate(chain):
        verifier.feed(0, offset, audit_entry(rec), rec.prev_hash, rec.hash)
    assert verifier.report().ok, verifier.report()
    successors = [rec.prev_hash for rec in chain]
    assert len(successors) == len(set(successors)), "a link with two successors"


def writer(settings: Settings, owned: dict[str, bool], name: str) -> PartitionWriter:
    return PartitionWriter(settings.as_client("worker"), SCHEMAS, 0,
                           owns=lambda: owned[name], fenced_backoff_s=0.2)


async def test_a_writer_that_lost_its_partition_cannot_extend_the_chain_after_its_successor(
    settings: Settings,
) -> None:
    owned = {"old": True, "new": False}
    old = writer(settings, owned, "old")
    await old.append(fact(1))
    await old.append(fact(2))
    assert await old.commit()
    await old.append(fact(3))  # in flight when the partition moves: never committed by `old`

    owned["new"] = True  # the rebalance gives the partition to `new`; `old` has not noticed
    new = writer(settings, owned, "new")
    four = await new.append(fact(4))  # fences `old` and aborts its open transaction
    assert await new.commit()
    owned["old"] = False  # now `old` learns it lost the partition

    assert not await old.commit()  # the broker refuses the fenced transaction
    with pytest.raises(AuditFenced):
        await old.append(fact(5))

    chain = await committed_chain(settings, 0)
    assert [r.audit_id for r in chain] == ["fact-1", "fact-2", "fact-4"]
    assert four.prev_hash == chain[1].hash  # `new` read the committed head, not fact 3
    assert_linear(chain)
    await new.release()
    await old.release()


async def test_a_zombie_that_never_learns_is_chained_after_its_successor_not_beside_it(
    settings: Settings,
) -> None:
    """The worst case: the old writer keeps believing the partition is its own. Taking it back
    fences the new writer in turn; each re-chains its lost records onto the committed head, so
    the chain stays linear and every fact is in it (fact 3 twice at worst: a visible duplicate,
    as after any redelivery)."""
    owned = {"old": True, "new": True}
    old = writer(settings, owned, "old")
    await old.append(fact(1))
    assert await old.commit()
    await old.append(fact(2))  # open when `new` takes the partition

    new = writer(settings, owned, "new")
    await new.append(fact(3))
    assert await new.commit()

    assert not await old.commit()  # fenced: takes the partition back, re-sends fact 2
    assert old.lost_transactions == 1
    assert await old.commit()
    await new.append(fact(4))
    assert not await new.commit()  # `new` is fenced now: it takes the partition back, re-sends
    assert await new.commit()
    assert new.lost_transactions == 1

    chain = await committed_chain(settings, 0)
    assert_linear(chain)
    assert chain[0].prev_hash == GENESIS_HASH
    assert {r.audit_id for r in chain} == {"fact-1", "fact-2", "fact-3", "fact-4"}
    await new.release()
    await old.release()


def nova_audit_verify(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.to_env()}
    return subprocess.run([sys.executable, "-m", "nova", "audit", "verify"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


async def test_a_worker_paused_through_a_rebalance_resumes_without_forking_the_chain(
    gateway: Any, worker_factory: Any, settings: Settings,
) -> None:
    # the paused worker is dropped after its session: 20 s instead of 60 s (a shorter wait,
    # nothing else changes)
    session = {"NOVA_WORKER_SESSION_TIMEOUT_S": "20"}
    first = worker_factory({"NOVA_WORKER_INSTANCE": "0", **session})
    ids = await post_requests(gateway, 100)

    async def done_at_least(n: int) -> bool:
        return finished(gateway, ids) >= n

    await eventually(lambda: done_at_least(10), 120, 0.05, message="10 requests done")
    assert first.proc is not None

    async def paused_holding_a_transaction() -> bool:
        """SIGSTOP it mid-stream, records in its buffers and an audit transaction open with
        records in it (checked once it is stopped: it commits every second, so a pause can
        fall between two transactions; then it goes on and is paused again)."""
        assert first.proc is not None
        if not await audit_transaction_open(settings):
            return False
        first.proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(0.3)  # what it sent before the stop has reached the broker
        if await audit_transaction_open(settings):
            return True
        first.proc.send_signal(signal.SIGCONT)
        return False

    await eventually(paused_holding_a_transaction, 120, 0.05,
                     message="the worker paused with an audit transaction open")
    try:
        paused_at = finished(gateway, ids)
        # Requests only the second worker can finish: a fast first worker may have finished
        # all 100 before it was caught with a transaction open.
        ids = [*ids, *await post_requests(gateway, 20)]
        second = worker_factory({"NOVA_WORKER_INSTANCE": "1", **session})

        async def second_alone() -> bool:  # the paused worker missed the rebalance: it is out
            return await worker_group(settings) == ("Stable", 1)

        await eventually(second_alone, 150, 0.5, message="the second worker holding the group")
        # the second worker extends every chain before the zombie wakes up
        try:
            await eventually(lambda: done_at_least(paused_at + 10), 120, 0.2,
                             message="the second worker finishing requests")
        except AssertionError as exc:  # what the second worker was doing, for whoever reads it
            raise AssertionError(f"{exc}\nsecond worker's log:\n{second.log()[-3000:]}\n"
                                 f"finished {finished(gateway, ids)} of {len(ids)}, "
                                 f"{paused_at} when paused") from None
    finally:
        first.proc.send_signal(signal.SIGCONT)  # the zombie resumes where it stopped

    await eventually(lambda: done_at_least(len(ids)), 180, 0.5,
                     message=f"{len(ids)} requests done")

    async def audited() -> bool:  # an outcome per request, once committed
        chain = [r for p in range(settings.topic_partitions)
                 for r in await committed_chain(settings, p)]
        return {r.request_id for r in chain if r.kind == "OUTCOME"} >= set(ids)

    await eventually(audited, 60, 0.5, message="every outcome audited")
    done = await asyncio.to_thread(nova_audit_verify, settings)
    assert done.returncode == 0, (done.stdout, done.stderr, first.log()[-3000:],
                                  second.log()[-3000:])
    assert "audit chain intact" in done.stdout
    # the zombie did try to write with its stale heads: its transactions were refused
    log = first.log()
    assert "transaction lost (ProducerFenced)" in log or "refused on abort" in log, log[-3000:]
