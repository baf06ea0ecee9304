"""While Kafka is known to be down a write fails at once, saying whether anything may land.

The probes themselves run against the real broker in
``tests/integration/test_nova_up_operations.py``; here the liveness is told what they found.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka.errors import KafkaConnectionError

from nova.errors import KafkaUnavailableError
from nova.kafka.liveness import KafkaLiveness
from nova.kafka.producer import RecordProducer
from nova.settings import load_settings

SETTINGS = load_settings(kafka_bootstrap_servers="127.0.0.1:9", kafka_security_protocol=None,
                         kafka_sasl_username=None, kafka_sasl_password=None)


class Told(KafkaLiveness):
    """A liveness whose probe answers what the test says the broker does."""

    answers = False
    probes = 0

    async def _probe(self) -> None:
        self.probes += 1
        if not self.answers:
            raise KafkaConnectionError("connection refused")


@pytest.fixture
async def liveness() -> AsyncIterator[Told]:
    live = Told(SETTINGS)  # not started: no background probe runs
    yield live
    await live.stop()


async def test_writes_pass_while_kafka_answers_without_asking_it(liveness: Told) -> None:
    await liveness.ensure_up()
    assert liveness.probes == 0


async def test_a_write_while_kafka_is_down_is_refused_and_nothing_is_written(
    liveness: Told,
) -> None:
    liveness.mark_down("no broker at 127.0.0.1:9 answers")
    with pytest.raises(KafkaUnavailableError, match="nothing was written") as refused:
        await liveness.ensure_up()
    assert "no broker at 127.0.0.1:9 answers" in str(refused.value)
    assert refused.value.retriable  # a 503 with Retry-After at the gateway
    assert not liveness.up


async def test_a_broker_back_before_the_next_probe_is_not_refused(liveness: Told) -> None:
    liveness.mark_down("no broker at 127.0.0.1:9 answers")
    liveness.answers = True
    await liveness.ensure_up()  # asked once more, it answers
    assert liveness.up
    assert liveness.down_for_s() == 0


async def test_callers_refused_together_share_one_question(liveness: Told) -> None:
    liveness.mark_down("no broker at 127.0.0.1:9 answers")
    results = await asyncio.gather(*(liveness.ensure_up() for _ in range(20)),
                                   return_exceptions=True)
    assert all(isinstance(r, KafkaUnavailableError) for r in results)
    assert liveness.probes == 1


async def test_the_producer_refuses_before_it_sends(liveness: Told) -> None:
    producer = RecordProducer(SETTINGS, liveness=liveness)  # never started: a send would hang
    try:
        liveness.mark_down("no broker at 127.0.0.1:9 answers")
        with pytest.raises(KafkaUnavailableError, match="nothing was written"):
            await producer.send_raw("requests", b"k", b"v")
    finally:
        await producer.stop()
