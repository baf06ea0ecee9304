"""The live feed: every partition of the source topics, tailed from the end, into the hub.

A :class:`~nova.kafka.tail.TopicTail` like the gateway's other views: no consumer group, so
every gateway sees every identity's records and a client may connect to any of them. Each poll
is merged across partitions by record timestamp (each partition's own order kept), so records
of one request written to several topics reach the adapter in the order they were written;
the adapter makes the per-request order hold even when they do not.

A record that does not decode, or that the adapter cannot read, is skipped with a debug line:
the feed must keep serving. Nothing here waits for a client (``gateway.live.hub``).
"""

from __future__ import annotations

import heapq
import logging
from typing import Any

from gateway.live.adapter import SOURCE_TOPICS, Record, RecordAdapter
from gateway.live.hub import LiveHub
from nova.errors import SchemaError
from nova.kafka.tail import TopicTail
from nova.settings import Settings
from schemas import SchemaSet

log = logging.getLogger(__name__)


class LiveFeed(TopicTail):
    TOPICS = SOURCE_TOPICS
    START = "end"
    # Each poll is published in one go, before any client's sender runs: a poll must fit in
    # a subscriber's queue (a record is one message, a finished request's up to nine).
    MAX_RECORDS = 100

    def __init__(self, settings: Settings, schemas: SchemaSet, adapter: RecordAdapter) -> None:
        super().__init__(settings, schemas)
        self.adapter = adapter
        self.hub = LiveHub(window_s=settings.live_replay_window_s,
                           buffer_max=settings.live_replay_max)

    def apply(self, topic: str, data: dict[str, Any]) -> None:  # pragma: no cover - unused
        raise NotImplementedError("LiveFeed reads whole records (apply_polled)")

    def apply_polled(self, polled: list[tuple[str, list[Any]]]) -> None:
        runs = [[(msg.timestamp, i, topic, msg) for msg in messages]
                for i, (topic, messages) in enumerate(polled)]
        for _, _, topic, msg in heapq.merge(*runs, key=lambda r: (r[0], r[1])):
            try:
                record = Record(topic, msg.partition, msg.offset, msg.timestamp,
                                self.decode(topic, msg), dict(msg.headers or ()))
                messages = self.adapter.adapt(record)
            except (SchemaError, ValueError, KeyError, TypeError) as exc:
                log.debug("live feed skipped %s[%s]@%s: %s", topic, msg.partition, msg.offset,
                          exc)
                continue
            for message in messages:
                self.hub.publish(message)
