"""The entity barrier with a witness (lanes B and D), on the real broker.

A lane's record witnesses that its request was submitted before the record was appended, so an
offsets request sent after that serves every record below the partition's end the consumer saw:
a burst shares one request. A record appended after that mark gets a fresh one, and whatever
was acknowledged before it is applied when the barrier returns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from nova.entities.models import RuleEntity
from nova.entities.store import EntityStore, EntityWriter
from nova.entities.view import Witness
from nova.kafka.producer import RecordProducer
from nova.settings import Settings
from nova.signing import load_signer
from tests.integration.conftest import provisioned

pytestmark = pytest.mark.integration


class CountingOffsets:
    """The store's real offsets reader, counting the requests it sends to the broker."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.requests = 0

    async def end_offsets(self, parts: Any) -> Any:
        self.requests += 1
        return await self.real.end_offsets(parts)


def rule(n: int) -> RuleEntity:
    return RuleEntity(rule_id=f"barrier-rule-{n}", identity_id="identity-barrier",
                      effect="deny", priority=n, text_patterns=(f"word{n}",))


@pytest.fixture
async def stores(settings: Settings) -> AsyncIterator[tuple[EntityWriter, EntityStore,
                                                            CountingOffsets]]:
    """A gateway-like writer and a worker-like store that only tails."""
    provisioned(settings)
    signer = load_signer(settings)
    producer = RecordProducer(settings)
    await producer.start()
    written = EntityStore(settings, verifier=signer.verifier)
    tailing = EntityStore(settings, verifier=signer.verifier)
    await written.start()
    await tailing.start()
    counting = CountingOffsets(tailing._offsets)
    tailing._offsets = counting
    try:
        yield EntityWriter(producer, written, signer), tailing, counting
    finally:
        await tailing.stop()
        await written.stop()
        await producer.stop()


async def test_records_below_the_seen_end_share_one_offsets_request(
    stores: tuple[EntityWriter, EntityStore, CountingOffsets],
) -> None:
    writer, tailing, counting = stores
    await writer.put(rule(1))
    await tailing.sync(witness=Witness("encoded", 0, offset=40, highwater=100))
    assert counting.requests == 1
    assert [r.priority for r in tailing.rules_for("identity-barrier")] == [1]

    for offset in (41, 57, 99):  # the burst the consumer had already seen
        await tailing.sync(witness=Witness("encoded", 0, offset=offset, highwater=100))
    assert counting.requests == 1


async def test_a_record_appended_after_the_mark_sees_every_write_acknowledged_before_it(
    stores: tuple[EntityWriter, EntityStore, CountingOffsets],
) -> None:
    writer, tailing, counting = stores
    await tailing.sync(witness=Witness("encoded", 0, offset=5, highwater=None))
    assert counting.requests == 1
    await writer.put(rule(2))  # acknowledged before the next request was submitted

    await tailing.sync(witness=Witness("encoded", 0, offset=6, highwater=None))

    assert counting.requests == 2
    assert [r.priority for r in tailing.rules_for("identity-barrier")] == [2]


async def test_partitions_and_topics_are_witnessed_apart_and_no_witness_always_asks(
    stores: tuple[EntityWriter, EntityStore, CountingOffsets],
) -> None:
    writer, tailing, counting = stores
    await tailing.sync(witness=Witness("encoded", 0, offset=10, highwater=50))
    await writer.put(rule(3))
    # offset 10 of another partition, or of another topic, says nothing about this write
    await tailing.sync(witness=Witness("encoded", 1, offset=10, highwater=None))
    assert [r.priority for r in tailing.rules_for("identity-barrier")] == [3]
    await writer.put(rule(4))
    await tailing.sync(witness=Witness("intents", 0, offset=10, highwater=None))
    assert sorted(r.priority for r in tailing.rules_for("identity-barrier")) == [3, 4]
    assert counting.requests == 3

    await tailing.sync()
    await tailing.sync()
    assert counting.requests == 5
