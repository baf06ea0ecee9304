"""The pipeline bench's second baseline: seven Faust agents that only pass records on.

``python -m bench.faust_floor`` (started by ``bench/pipeline.py``, settings from the
environment) runs one Faust app configured as the worker's (``streams.app``: raw bytes, acks
all, no linger, our consumer with its fetch wait, the same commit interval) whose seven agents
each read ``floor<i>`` and send every record unchanged to ``floor<i+1>``. No decoding, no lane
work, no table, no audit: what it costs is what Faust and Kafka cost for seven hops, the floor
under anything the lanes do. Next to it, the raw aiokafka relay is the floor under Faust.
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import Any

import faust

from nova.kafka.clients import faust_broker
from nova.settings import Settings, load_settings
from streams import consumer

HOPS = 7
RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes,
                       "key_serializer": "raw", "value_serializer": "raw"}


def floor_topics(settings: Settings) -> list[str]:
    return [settings.topic(f"floor{i}") for i in range(HOPS + 1)]


def build(settings: Settings) -> faust.App:
    app = faust.App(
        f"{settings.topic_prefix}-floor", **faust_broker(settings), store="memory://",
        datadir=tempfile.mkdtemp(prefix="nova-floor-"),
        topic_partitions=settings.topic_partitions, topic_replication_factor=1,
        topic_allow_declare=False, web_enabled=False, autodiscover=False,
        key_serializer="raw", value_serializer="raw", consumer_auto_offset_reset="earliest",
        producer_acks=-1, broker_commit_interval=1.0,
        producer_linger=settings.kafka_linger_ms / 1000, stream_wait_empty=False,
    )
    consumer.install(app, settings.kafka_fetch_max_wait_ms)
    topics = [app.topic(name, **RAW) for name in floor_topics(settings)]
    for i in range(HOPS):
        app.agent(topics[i], name=f"floor-{i}")(_pass_to(topics[i + 1]))
    return app


def _pass_to(target: faust.TopicT) -> Any:
    async def agent(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            m = event.message
            await target.send(key=m.key, value=m.value, headers=list(m.headers or ()))

    return agent


def main() -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = faust.Worker(build(load_settings()), loop=loop, loglevel="WARN", quiet=True)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
