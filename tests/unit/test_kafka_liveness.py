"""While Kafka is known to be down a write fails at once, saying whether anything may land.

The probes themselves run against the real broker in
``tests/integration/test_nova_up_operations.py``; here the liveness is told what they found.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from nova.errors import KafkaUnavailableError
from nova.kafka.liveness import KafkaLiveness
from nova.kafka.producer import RecordProducer
from nova.settings import load_settings

SETTINGS = load_settings(kafka_bootstrap_servers="127.0.0.1:9", kafka_security_protocol=None,
                         kafka_sasl_username=None, kafka_sasl_password=None)


@pytest.fixture
async def liveness() -> AsyncIterator[KafkaLiveness]:
    live = KafkaLiveness(SETTINGS)  # not started: no probe runs
    yield live
    await live.stop()


async def test_writes_pass_while_kafka_answers(liveness: KafkaLiveness) -> None:
    liveness.check()

    async def write() -> str:
        return "acknowledged"

    assert await liveness.while_up(write()) == "acknowledged"


async def test_a_write_while_kafka_is_down_is_refused_and_nothing_is_written(
    liveness: KafkaLiveness,
) -> None:
    liveness.mark_down("no broker at 127.0.0.1:9 answers")
    assert not liveness.up
    with pytest.raises(KafkaUnavailableError, match="nothing was written") as refused:
        liveness.check()
    assert "no broker at 127.0.0.1:9 answers" in str(refused.value)
    assert refused.value.retriable  # a 503 with Retry-After at the gateway


async def test_a_write_in_flight_when_kafka_goes_down_is_given_up_and_says_it_may_land(
    liveness: KafkaLiveness,
) -> None:
    acknowledged = asyncio.Event()
    writing = asyncio.create_task(liveness.while_up(acknowledged.wait()))
    await asyncio.sleep(0)
    liveness.mark_down("no broker at 127.0.0.1:9 answers")
    with pytest.raises(KafkaUnavailableError, match="may still be written"):
        await writing


async def test_kafka_back_takes_writes_again(liveness: KafkaLiveness) -> None:
    liveness.mark_down("no broker at 127.0.0.1:9 answers")
    liveness.mark_up()
    assert liveness.up
    assert liveness.down_for_s() == 0
    liveness.check()


async def test_the_producer_refuses_before_it_sends(liveness: KafkaLiveness) -> None:
    producer = RecordProducer(SETTINGS, liveness=liveness)  # never started: a send would hang
    try:
        liveness.mark_down("no broker at 127.0.0.1:9 answers")
        with pytest.raises(KafkaUnavailableError, match="nothing was written"):
            await producer.send_raw("requests", b"k", b"v")
    finally:
        await producer.stop()
