"""The alert dispatcher: events and waiting checkpoints in, webhook deliveries out.

It reads the ``events`` topic in the ``<prefix>-alerts`` consumer group, so with several
gateways each partition is read by one of them and each alert is sent by one; a fresh group
starts at the end (a new deployment does not alert about its history). For every record
:class:`~nova.alerts.detect.AlertDetector` says what is worth telling, and each notice goes
to every destination that wants it (``nova.alerts.notices.wants``), one delivery at a time
per notice and all destinations at once. Every ``NOVA_ALERT_SWEEP_S`` it looks at the
gateway's checkpoint book for checkpoints pending longer than ``NOVA_ALERT_CHECKPOINT_WAIT_S``
whose request's partition it holds, and gives the report scheduler its turn.

Its read position is committed every ``NOVA_ALERT_COMMIT_INTERVAL_S``, never at stop: what it
read since is read again by whoever holds the partition next (this gateway restarted, or
another), and the delivery log (``gateway.alerts.log``) says what was delivered already. So
a restart sends nothing twice and loses nothing.

A destination that is down holds up the alerts behind it for at most its retries (about
``NOVA_ALERT_BACKOFF_S`` times 2^retries); the consumer only moves on once every delivery of a
record has ended, delivered or dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from gateway.alerts.delivery import Deliverer
from gateway.alerts.reports import ReportScheduler
from gateway.checkpoints import CheckpointBook
from nova.alerts.detect import AlertDetector, Thresholds, Waiting
from nova.alerts.notices import Notice, wants
from nova.domain.checkpoints import expire
from nova.entities.models import AlertThresholdsEntity
from nova.entities.store import EntityStore
from nova.errors import SchemaError
from nova.kafka.acls import alerts_group
from nova.kafka.tail import BATCHED_FETCH_BYTES, LAGGING_FETCH_WAIT_MS, TopicReader, open_reader
from nova.records import now_ms
from nova.settings import Settings
from schemas import SchemaSet

log = logging.getLogger(__name__)


def thresholds(settings: Settings, chosen: AlertThresholdsEntity | None = None) -> Thresholds:
    """The thresholds alerts are raised at: an operator's (``PUT /api/v2/llm/monitoring/
    alerts/thresholds``, shared on the entities topic), else the settings' ``NOVA_ALERT_*``."""
    if chosen is not None:
        return Thresholds(window_s=chosen.window_s, min_calls=chosen.min_calls,
                          error_rate=chosen.error_rate, latency_ms=chosen.latency_ms,
                          checkpoint_wait_s=chosen.checkpoint_wait_s)
    return Thresholds(window_s=settings.alert_window_s, min_calls=settings.alert_min_calls,
                      error_rate=settings.alert_error_rate, latency_ms=settings.alert_latency_ms,
                      checkpoint_wait_s=settings.alert_checkpoint_wait_s)


class AlertDispatcher:
    def __init__(self, settings: Settings, schemas: SchemaSet, store: EntityStore,
                 book: CheckpointBook, deliverer: Deliverer, reports: ReportScheduler) -> None:
        self.settings = settings
        self.schemas = schemas
        self.store = store
        self.book = book
        self.deliverer = deliverer
        self.reports = reports
        self.detector = AlertDetector(thresholds(settings))
        for provider, (_, status) in deliverer.deliveries.providers.items():
            self.detector.remember_provider(provider, status)
        self.topic = settings.topic("events")
        self.ready = asyncio.Event()  # partitions assigned and positioned (tests wait for it)
        self._reader: TopicReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._partitioner = DefaultPartitioner()

    async def start(self) -> None:
        reader = await open_reader(self.settings, ["events"], self.schemas,
                                   group_id=alerts_group(self.settings),
                                   auto_offset_reset="latest",
                                   fetch_min_bytes=BATCHED_FETCH_BYTES,  # alerts may lag 250 ms
                                   fetch_max_wait_ms=LAGGING_FETCH_WAIT_MS)
        self._reader = reader
        self._task = asyncio.create_task(self._run(reader), name="alerts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._reader is not None:
            await self._reader.close()  # no commit: see the module docstring
            self._reader = None

    async def _run(self, reader: TopicReader) -> None:
        consumer = reader.consumer
        loop = asyncio.get_running_loop()
        committed = swept = loop.time()
        unsaved = False  # records read since the last commit
        while True:
            try:
                polled = await consumer.getmany(timeout_ms=500, max_records=500)
                self.detector.t = thresholds(self.settings, self.store.alert_thresholds())
                if not self.ready.is_set() and consumer.assignment():
                    for tp in consumer.assignment():
                        await consumer.position(tp)  # resolve "latest" now, not at a record
                    # A fresh group records where it starts: a restart before the first
                    # interval resumes there instead of at the end (skipping what came between).
                    await consumer.commit()
                    self.ready.set()
                for tp, messages in polled.items():
                    unsaved = True
                    for message in messages:
                        try:
                            event = reader.decode(message)
                        except SchemaError as exc:
                            log.debug("alerts skipped %s@%s: %s", tp, message.offset, exc)
                            continue
                        for notice in self.detector.on_event(event):
                            await self.notify(notice)
                now = loop.time()
                if now - swept >= self.settings.alert_sweep_s:
                    swept = now
                    await self.sweep(consumer)
                if now - committed >= self.settings.alert_commit_interval_s and unsaved:
                    committed, unsaved = now, False
                    await consumer.commit()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert dispatcher: a round failed; going on")
                await asyncio.sleep(1)

    async def notify(self, notice: Notice) -> None:
        targets = [w for w in self.store.webhooks() if wants(w, notice)]
        if targets:
            await asyncio.gather(*(self.deliverer.deliver(notice, w) for w in targets))

    async def sweep(self, consumer: AIOKafkaConsumer) -> None:
        held = {tp.partition for tp in consumer.assignment() if tp.topic == self.topic}
        if not held:
            return
        partitions = sorted(consumer.partitions_for_topic(self.topic) or ())
        now = datetime.now(UTC)
        waiting = []
        for h in list(self.book.by_id.values()):
            cp = expire(h.checkpoint, now).checkpoint
            if cp.status != "pending":
                continue
            part = self._partitioner(cp.request_id.encode(), partitions, partitions)
            if part in held:
                waiting.append(Waiting(
                    cp.checkpoint_id, cp.request_id, cp.identity_id,
                    int(cp.created_at.timestamp() * 1000), int(cp.expires_at.timestamp() * 1000),
                    h.record.intent.action if h.record.intent else None))
        for notice in self.detector.waiting(waiting, now_ms()):
            await self.notify(notice)
        if TopicPartition(self.topic, 0) in consumer.assignment():
            await self.reports.tick(self.store.webhooks())

