"""Whether the broker answers, known before a write needs it, so writes fail fast while it is down.

aiokafka keeps an unacknowledged record in its accumulator and retries it until its request
timeout (40 s), so a write to a broker that went away hangs a request handler that long, then
fails. A gateway should instead say at once that Kafka is unreachable (503 with
``Retry-After``) and take writes again as soon as the broker is back, without a restart.

:class:`KafkaLiveness` asks a broker for metadata naming no topic every ``interval_s``, over a
client of its own (the process's principal). It turns *down* only on evidence that Kafka
cannot be reached (no connection to any broker, or no answer within ``timeout_s``), never on a
slow moment, and *up* again at the first answer. A
:class:`~nova.kafka.producer.RecordProducer` given a liveness refuses a write at once while it is
down (nothing written, so a retry can never run it twice). A write already in flight when the
broker goes is left to aiokafka, which delivers it once the broker is back or fails it for good:
either way the gateway's answer is the truth about that write.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)
from aiokafka.protocol.metadata import MetadataRequest

from nova.errors import KafkaUnavailableError, NovaError, one_line
from nova.kafka.clients import kafka_client, stop_client
from nova.settings import Settings

log = logging.getLogger(__name__)

# aiokafka's errors of a broker that is away or failing over (not all of them say retriable)
_OUTAGE = (KafkaTimeoutError, KafkaConnectionError, NodeNotReadyError, RequestTimedOutError,
           NotLeaderForPartitionError, LeaderNotAvailableError)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the broker is away for now (retry later), not that the request or
    the configuration is wrong (an authorization failure, an unknown topic, a bad record).

    Nova's own ``retriable`` errors of a broker away count too: a write refused while Kafka is
    down, an entity view that cannot catch up.
    """
    if isinstance(exc, _OUTAGE):
        return True
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False))
    return isinstance(exc, NovaError) and exc.retriable and exc.kafka_outage


class KafkaLiveness:
    """Up or down, and since when and why; probes run in one background task."""

    def __init__(self, settings: Settings, *, interval_s: float = 0.5, timeout_s: float = 3.0,
                 recheck_s: float = 0.5) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.recheck_s = recheck_s
        self.reason: str | None = None  # why Kafka is down; None while it answers
        self.down_since: float | None = None  # time.monotonic() of the first failed probe
        self._task: asyncio.Task[None] | None = None
        self._recheck: asyncio.Task[None] | None = None
        self._client = kafka_client(settings, request_timeout_ms=int(timeout_s * 1000))

    @property
    def up(self) -> bool:
        return self.reason is None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kafka-liveness")

    async def stop(self) -> None:
        for task in (self._task, self._recheck):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._recheck = None
        await stop_client(self._client)

    def down_for_s(self) -> float:
        """Seconds since the first failed probe of this outage (0 while up)."""
        return 0.0 if self.down_since is None else time.monotonic() - self.down_since

    async def ensure_up(self) -> None:
        """Return while Kafka answers; raise :class:`KafkaUnavailableError` while it does not.

        While it is known to be down, it is asked once more first (for at most ``recheck_s``,
        one question shared by every caller), so a broker that has just come back is not
        refused until the next background probe.
        """
        if self.reason is None:
            return
        if self._recheck is None or self._recheck.done():
            self._recheck = asyncio.create_task(self._probe_once(self.recheck_s, recheck=True))
        await asyncio.shield(self._recheck)
        if self.reason is not None:
            raise KafkaUnavailableError(
                f"Kafka is unreachable ({self.reason}) for {self.down_for_s():.0f} s: nothing "
                "was written; retry once it is back")

    def mark_up(self) -> None:
        if self.reason is not None:
            log.warning("Kafka answers again after %.1f s", self.down_for_s())
        self.reason = self.down_since = None

    def mark_down(self, reason: str) -> None:
        if self.reason is None:
            log.warning("Kafka is unreachable: %s", reason)
            self.down_since = time.monotonic()
        self.reason = reason

    async def _run(self) -> None:
        while True:
            await self._probe_once(self.timeout_s)
            await asyncio.sleep(self.interval_s)

    async def _probe_once(self, timeout_s: float, *, recheck: bool = False) -> None:
        try:
            await asyncio.wait_for(self._probe(), timeout_s)
        except TimeoutError:
            if not recheck:  # a short recheck unanswered is no new evidence
                self.mark_down(f"{self.settings.bootstrap_servers} did not answer within "
                               f"{timeout_s:.0f} s")
        except (KafkaError, OSError) as exc:
            log.debug("Kafka probe failed: %s", one_line(exc))
            self.mark_down(f"no broker at {self.settings.bootstrap_servers} answers")
        else:
            self.mark_up()

    async def _probe(self) -> None:
        """A metadata request naming no topic: the cheapest question every broker answers (and
        small, on a cluster of many topics). Raises when no broker can be reached."""
        node = self._client.get_random_node()
        if node is None:
            await self._client.bootstrap()  # not connected yet, or never was
            return
        await self._client.send(node, MetadataRequest([]))
