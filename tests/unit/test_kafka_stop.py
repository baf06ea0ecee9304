"""Stopping a Kafka client always finishes, and never hides a cancellation of its caller."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from nova.kafka.clients import stop_client

REPO = Path(__file__).resolve().parents[2]
# What the code base calls its aiokafka clients (``producer`` alone is a RecordProducer).
AIOKAFKA_NAMES = {"consumer", "_consumer", "offsets", "_offsets", "client", "_producer"}


class FetchCancelledOnStop(AIOKafkaConsumer):
    """A consumer whose stop() lets out the CancelledError of an in-flight fetch, as aiokafka's
    ``Fetcher.close`` does (``x.cancel(); await x``) when the broker went away mid-fetch."""

    async def stop(self) -> None:
        self._closed = True
        raise asyncio.CancelledError


class StopHangs(AIOKafkaConsumer):
    async def stop(self) -> None:
        self._closed = True
        await asyncio.Event().wait()


async def test_aiokafkas_own_cancellation_is_absorbed_and_the_connections_closed() -> None:
    consumer = FetchCancelledOnStop(bootstrap_servers="127.0.0.1:9")
    closed: list[bool] = []
    real_close = consumer._client.close

    async def close() -> None:
        closed.append(True)
        await real_close()

    consumer._client.close = close
    await stop_client(consumer)  # no CancelledError
    assert closed == [True]


async def test_a_caller_cancelled_while_stopping_is_still_cancelled() -> None:
    consumer = StopHangs(bootstrap_servers="127.0.0.1:9")
    stopping = asyncio.create_task(stop_client(consumer))
    await asyncio.sleep(0)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    await consumer._client.close()


def test_no_kafka_client_is_stopped_except_through_stop_client() -> None:
    """``consumer.stop()`` anywhere else would bring the shutdown tracebacks back."""
    offenders = []
    for package in ("nova", "streams", "gateway", "analytics"):
        for path in (REPO / package).rglob("*.py"):
            if path == REPO / "nova" / "kafka" / "clients.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "stop"
                        and isinstance(node.func.value, ast.Name | ast.Attribute)
                        and ast.unparse(node.func.value).split(".")[-1] in AIOKAFKA_NAMES):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
