"""Producing Nova records: Avro value, schema header, string key, idempotent producer.

One :class:`RecordProducer` per process, built at start-up and passed to whoever sends. Given a
:class:`~nova.kafka.liveness.KafkaLiveness` (the gateway's), a write while Kafka is down fails at
once with :class:`~nova.errors.KafkaUnavailableError` instead of waiting out aiokafka's request
timeout.
"""

from __future__ import annotations

from nova.kafka.clients import kafka_producer, start_client, stop_client
from nova.kafka.liveness import KafkaLiveness
from nova.records import Record
from nova.settings import Settings
from schemas import TOPICS, SchemaSet, load_schema_set


class RecordProducer:
    def __init__(
        self,
        settings: Settings,
        schemas: SchemaSet | None = None,
        liveness: KafkaLiveness | None = None,
    ) -> None:
        self.settings = settings
        self.schemas = schemas or load_schema_set()
        self.liveness = liveness
        self._producer = kafka_producer(
            settings,
            enable_idempotence=True,
            acks="all",
            # The gateway's hand-off to lane A is on every request's path: a 2 ms linger was
            # 2 ms of each idle request (bench/sync.py's "->A"). Under load records batch anyway,
            # queued while the produce request before them is in flight.
            linger_ms=settings.kafka_linger_ms,
        )

    async def start(self) -> None:
        await start_client(self._producer)

    async def stop(self) -> None:
        await stop_client(self._producer)

    def encode(self, topic: str, record: Record) -> tuple[bytes, list[tuple[str, bytes]]]:
        codec = self.schemas[TOPICS[topic].value_schema]
        return codec.encode(record.to_avro()), [codec.header, *record.kafka_headers()]

    async def send(self, topic: str, key: str, record: Record) -> None:
        """Send and wait for the broker's acknowledgement (the record is durable on return)."""
        value, headers = self.encode(topic, record)
        await self.send_raw(topic, key.encode(), value, headers)

    async def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        if self.liveness is not None:
            await self.liveness.ensure_up()  # down: refused before anything is written
        await self._producer.send_and_wait(
            self.settings.topic(topic), value, key=key, headers=headers or []
        )
