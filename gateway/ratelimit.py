"""Per-identity request rate limit at the gateway: one caller cannot starve the others, whichever
gateway it calls.

Checked on every submitted request (before anything reaches Kafka), with the same token
buckets the workers use for providers (``nova.llm.limits.RateLimiter``), keyed
``identity:{id}``. A refusal is a ``LimitError`` naming the bucket (``identity:{id}:rpm``) and
how long to wait, which ``gateway.problems`` turns into 429 problem+json with ``Retry-After``
and ``limit``. The rate is ``NOVA_GATEWAY_RPM_PER_IDENTITY`` (default 600 per minute, bursts up
to a minute's worth) for the identity across all gateways.

The limit is shared through Kafka, not kept per process (:class:`SharedAdmissions`): every few
hundred milliseconds each gateway publishes how many requests it admitted per identity (one
``admissions`` record per gateway per interval, and none while idle: nothing on the request
path), and takes every other gateway's admissions from its own buckets as they arrive, so an
identity spread over n gateways still gets the rate once, not n times. A gateway that starts
reads the last minute of admissions first (what the buckets still remember). The sharing is
asynchronous, like Envoy's or Gubernator's global limits: what another gateway admitted in the
last interval plus Kafka's delivery (together well under a second here) is not known yet, so a
burst spread over several gateways at the same instant can exceed the limit by about that
much; anything slower is held to it. Cheaper than a shared counter on every request, and with
no store beyond the broker the gateways already need. While Kafka is away each gateway keeps
limiting with what it knows and publishes its counts when the broker is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from aiokafka.errors import KafkaError

from nova.errors import LimitError, NovaError, StartupError
from nova.kafka.producer import RecordProducer
from nova.kafka.tail import TopicTail
from nova.llm.limits import RateLimiter
from nova.records import Admission
from nova.settings import Settings
from schemas import SchemaSet

log = logging.getLogger(__name__)

PUBLISH_INTERVAL_S: Final = 0.2
WINDOW_S: Final = 60.0  # a bucket refills completely within a minute: older admissions are spent


def rpm_per_identity(settings: Settings) -> float:
    """Requests per minute each identity may submit, across every gateway."""
    return settings.gateway_rpm_per_identity


class IdentityRateLimiter:
    """Token buckets per identity, configured on first sight (identities come and go); counts
    what it admits for :class:`SharedAdmissions` to publish."""

    def __init__(self, rpm: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rpm <= 0:
            raise ValueError("the per-identity rate must be positive")
        self.rpm = rpm
        self.clock = clock
        self._limiter = RateLimiter()
        self._known: set[str] = set()
        self._admitted: Counter[str] = Counter()  # since the last publication

    def key(self, identity: str) -> str:
        key = f"identity:{identity}"
        if key not in self._known:
            self._limiter.configure(key, rpm=self.rpm)
            self._known.add(key)
        return key

    def check(self, identity: str) -> None:
        """Take one request from ``identity``'s bucket, or raise ``LimitError`` (429)."""
        verdict = self._limiter.acquire((self.key(identity),), 0, self.clock())
        if not verdict.allowed:
            limit = verdict.limit or f"identity:{identity}:rpm"
            raise LimitError(
                f"identity {identity} is over its request rate limit "
                f"({self.rpm:g} requests per minute); retry in {verdict.wait_s:.1f}s",
                limit=limit,
                retry_after_s=verdict.wait_s,
            )
        self._admitted[identity] += 1

    def take(self, identity: str, requests: float) -> None:
        """Count ``requests`` another gateway admitted for ``identity`` against its bucket."""
        self._limiter.take(self.key(identity), requests, self.clock())

    def drain_admitted(self) -> dict[str, int]:
        """What this gateway admitted since the last call (for publication)."""
        admitted, self._admitted = dict(self._admitted), Counter()
        return admitted

    def readmit(self, counts: dict[str, int]) -> None:
        """Counts that could not be published: publish them with the next ones."""
        self._admitted.update(counts)

    def remaining(self, identity: str) -> float:
        """Requests ``identity`` may make right now (for the rate-limits monitoring route)."""
        key = self.key(identity)
        state = self._limiter.export_state().get(f"{key}:rpm")
        if state is None:
            return self.rpm
        elapsed = max(0.0, self.clock() - state["updated_at"])
        return min(self.rpm, state["tokens"] + elapsed * self.rpm / 60.0)


class SharedAdmissions(TopicTail):
    """Every other gateway's admissions, taken from this gateway's buckets; this gateway's,
    published (see the module docstring)."""

    TOPICS = ("admissions",)
    START = "beginning"

    def __init__(
        self,
        settings: Settings,
        schemas: SchemaSet,
        limiter: IdentityRateLimiter,
        producer: RecordProducer,
        *,
        interval_s: float = PUBLISH_INTERVAL_S,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(settings, schemas)
        self.limiter = limiter
        self.producer = producer
        self.interval_s = interval_s
        self.wall_clock = wall_clock
        self.gateway_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._publisher: asyncio.Task[None] | None = None

    def since_ms(self) -> int | None:
        return int((self.wall_clock() - WINDOW_S) * 1000)

    def apply(self, topic: str, data: dict[str, Any]) -> None:
        admission = Admission.from_avro(data)
        if admission.gateway == self.gateway_id:
            return  # already in our buckets
        # what the bucket has refilled since then is not owed any more
        age_s = max(0.0, self.wall_clock() - admission.at_ms / 1000)
        owed = max(0.0, 1.0 - age_s / WINDOW_S)
        for identity, count in admission.counts.items():
            if owed > 0 and count > 0:
                self.limiter.take(identity, count * owed)

    async def start(self) -> None:
        await super().start()
        self._publisher = asyncio.create_task(self._publish_forever(), name="admissions")

    async def stop(self) -> None:
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            self._publisher = None
        await super().stop()

    async def publish(self) -> None:
        """Publish what was admitted since the last time (nothing when nothing was)."""
        counts = self.limiter.drain_admitted()
        if not counts:
            return
        record = Admission(gateway=self.gateway_id, at_ms=int(self.wall_clock() * 1000),
                           counts=counts)
        try:
            await self.producer.send("admissions", self.gateway_id, record)
        except (NovaError, KafkaError) as exc:  # Kafka away: the next publication carries them
            self.limiter.readmit(counts)
            log.debug("admissions not published yet: %s", exc)

    async def _publish_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.publish()


def build_rate_limiter(settings: Settings) -> IdentityRateLimiter:
    """The gateway's limiter; an unusable rate refuses start-up (it is never skipped)."""
    rpm = rpm_per_identity(settings)
    if not math.isfinite(rpm) or rpm <= 0:
        raise StartupError(
            "the gateway",
            "no identity rate limiter can be built",
            f"NOVA_GATEWAY_RPM_PER_IDENTITY={rpm:g} must be a positive number of requests per "
            "minute (default 600)",
        )
    return IdentityRateLimiter(rpm)
