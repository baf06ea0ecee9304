"""Whether the broker answers, known before a write needs it, so writes fail fast while it is down.

aiokafka keeps an unacknowledged record in its accumulator and retries it until its request
timeout (40 s), so a write to a broker that went away hangs a request handler that long, then
fails. A gateway should instead say at once that Kafka is unreachable (503 with
``Retry-After``) and take writes again as soon as the broker is back, without a restart.

:class:`KafkaLiveness` asks the broker for its metadata every ``interval_s`` over a client of its
own (the process's principal). It turns *down* only on evidence that Kafka cannot be reached
(no connection to any broker, or no answer within ``timeout_s``), never on a slow moment, and
*up* again at the first answer. :class:`~nova.kafka.producer.RecordProducer` given a liveness
refuses a write at once while it is down (nothing written), and stops waiting for one in flight
when it goes down (which may still land once the broker is back: the error says so, and a retry
with an ``Idempotency-Key`` learns which).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TypeVar

from aiokafka.errors import KafkaError

from nova.errors import KafkaUnavailableError, one_line
from nova.kafka.clients import kafka_client, stop_client
from nova.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class KafkaLiveness:
    """Up or down, and since when and why; probes run in one background task."""

    def __init__(self, settings: Settings, *, interval_s: float = 0.5,
                 timeout_s: float = 3.0) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.reason: str | None = None  # why Kafka is down; None while it answers
        self.down_since: float | None = None  # time.monotonic() of the first failed probe
        self._down = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client = kafka_client(settings, request_timeout_ms=int(timeout_s * 1000))

    @property
    def up(self) -> bool:
        return self.reason is None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kafka-liveness")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await stop_client(self._client)

    def down_for_s(self) -> float:
        """Seconds since the first failed probe of this outage (0 while up)."""
        return 0.0 if self.down_since is None else time.monotonic() - self.down_since

    def check(self) -> None:
        """Raise :class:`KafkaUnavailableError` while Kafka is known to be down."""
        if self.reason is not None:
            raise KafkaUnavailableError(
                f"Kafka is unreachable ({self.reason}) for {self.down_for_s():.0f} s: nothing "
                "was written; retry once it is back")

    async def while_up(self, write: Awaitable[T]) -> T:
        """Await ``write`` unless Kafka goes down first (then :class:`KafkaUnavailableError`)."""
        writing = asyncio.ensure_future(write)
        down = asyncio.create_task(self._down.wait())
        try:
            await asyncio.wait({writing, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            down.cancel()
        if writing.done():
            return writing.result()
        writing.cancel()
        raise KafkaUnavailableError(
            f"Kafka became unreachable ({self.reason}) while this was being written: it may "
            "still be written once Kafka is back; retry with the same Idempotency-Key to learn "
            "which")

    def mark_up(self) -> None:
        if self.reason is not None:
            log.warning("Kafka answers again after %.1f s", self.down_for_s())
        self.reason = self.down_since = None
        self._down.clear()

    def mark_down(self, reason: str) -> None:
        if self.reason is None:
            log.warning("Kafka is unreachable: %s", reason)
            self.down_since = time.monotonic()
        self.reason = reason
        self._down.set()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._probe(), self.timeout_s)
            except TimeoutError:
                self.mark_down(f"{self.settings.bootstrap_servers} did not answer within "
                               f"{self.timeout_s:.0f} s")
            except (KafkaError, OSError) as exc:
                log.debug("Kafka probe failed: %s", one_line(exc))
                self.mark_down(f"no broker at {self.settings.bootstrap_servers} answers")
            else:
                self.mark_up()
            await asyncio.sleep(self.interval_s)

    async def _probe(self) -> None:
        if self._client.cluster.brokers():
            await self._client.fetch_all_metadata()  # raises when no broker answers
        else:
            await self._client.bootstrap()  # not connected yet, or never was
