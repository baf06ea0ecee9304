"""One alert to one webhook destination: POST, retry with backoff, log, or dead-letter.

Attempts: ``NOVA_ALERT_RETRIES`` (5), each within ``NOVA_ALERT_TIMEOUT_S``; between them
``NOVA_ALERT_BACKOFF_S`` (1 s), doubling, at most 60 s, or the receiver's ``Retry-After``
(within the same bound). A 2xx is delivered. A network error, a timeout, a 5xx, 408 or 429 is
tried again; any other 4xx says the request itself is wrong and ends the delivery at once.
A delivery that ends without a 2xx goes to the ``deadletter`` topic (lane ``alerts``: the
body, the destination, the reason), so nothing is lost silently. Either way the end is
written to the delivery log (``gateway.alerts.log``) before the next alert is read.

Before each attempt the destination's URL is checked again (``nova.alerts.urls``): a name
that now resolves to a private or link-local address is not reached. Operators' global
destinations may be private (an operator's own receiver); identities' only with
``NOVA_ALERT_PRIVATE_URLS``. Redirects are not followed (a redirect could lead anywhere).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import httpx

from gateway.alerts.log import DeliveryLog
from nova.alerts import payloads
from nova.alerts.notices import Notice
from nova.alerts.urls import UrlRefused, check_url
from nova.entities.models import WebhookEntity
from nova.kafka.producer import RecordProducer
from nova.records import DeadLetter, Delivery, now_ms
from nova.settings import Settings

log = logging.getLogger(__name__)

MAX_BACKOFF_S: Final = 60.0
RETRIABLE: Final = frozenset({408, 429})
USER_AGENT: Final = "Nova-Alerts/1"

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    attempts: int
    status: int | None
    reason: str


class Deliverer:
    def __init__(self, settings: Settings, producer: RecordProducer, deliveries: DeliveryLog,
                 http: httpx.AsyncClient, *, sleep: Sleep = asyncio.sleep) -> None:
        self.settings = settings
        self.producer = producer
        self.deliveries = deliveries
        self.http = http
        self.sleep = sleep
        self.console_url = f"{settings.gateway_url}/console"

    async def deliver(self, notice: Notice, webhook: WebhookEntity) -> Delivery | None:
        """Deliver once, whatever happened before; None when it was delivered already."""
        delivery_id = notice.delivery_id(webhook.id)
        if self.deliveries.done(delivery_id):
            return None
        body = payloads.body(notice, webhook.format, delivery_id, self.console_url)
        outcome = await self._attempts(webhook, delivery_id, body)
        record = Delivery(
            delivery_id=delivery_id, alert_id=notice.alert_id, kind=notice.kind,
            subject=notice.subject, webhook_id=webhook.id,
            outcome="delivered" if outcome.delivered else "dead", attempts=outcome.attempts,
            status=outcome.status, ts=now_ms())
        if not outcome.delivered:
            await self._dead_letter(delivery_id, webhook, body, outcome)
        await self.producer.send("deliveries", delivery_id, record)
        self.deliveries.record(record)
        return record

    async def _attempts(self, webhook: WebhookEntity, delivery_id: str, body: bytes) -> Outcome:
        allow_private = webhook.scope == "global" or self.settings.alert_private_urls
        backoff = self.settings.alert_backoff_s
        status: int | None = None
        reason = ""
        attempt = 0
        for attempt in range(1, self.settings.alert_retries + 1):
            wait = backoff
            try:
                await asyncio.to_thread(check_url, webhook.url, allow_private=allow_private)
                stamp = int(time.time())
                r = await self.http.post(webhook.url, content=body, headers={
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    payloads.DELIVERY_HEADER: delivery_id,
                    payloads.SIGNATURE_HEADER: payloads.signature(webhook.secret, stamp, body),
                }, timeout=self.settings.alert_timeout_s, follow_redirects=False)
            except UrlRefused as exc:
                return Outcome(False, attempt, None, str(exc))
            except httpx.HTTPError as exc:
                status, reason = None, f"{type(exc).__name__}: {exc}"[:500]
            else:
                status = r.status_code
                if 200 <= status < 300:
                    return Outcome(True, attempt, status, "")
                reason = f"HTTP {status}"
                if 400 <= status < 500 and status not in RETRIABLE:
                    return Outcome(False, attempt, status, reason + " (not retried)")
                wait = max(backoff, _retry_after(r))
            if attempt < self.settings.alert_retries:
                log.info("alert %s to %r: %s; again in %.1f s", delivery_id, webhook, reason,
                         wait)
                await self.sleep(min(wait, MAX_BACKOFF_S))
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        return Outcome(False, attempt, status, reason)

    async def _dead_letter(self, delivery_id: str, webhook: WebhookEntity, body: bytes,
                           outcome: Outcome) -> None:
        log.warning("alert %s to %r dead-lettered after %d attempts: %s", delivery_id, webhook,
                    outcome.attempts, outcome.reason)
        letter = DeadLetter(
            source_topic="alerts", partition=-1, offset=-1, key=delivery_id.encode(),
            value=body, headers={"nova-webhook": webhook.id.encode()}, lane="alerts",
            error_type="WebhookUndelivered",
            reason=f"{outcome.reason} after {outcome.attempts} attempts"[:2000],
            failed_at=now_ms())
        await self.producer.send("deadletter", delivery_id, letter)


def _retry_after(r: httpx.Response) -> float:
    value = r.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else 0.0
