"""The delivery log: every delivery that succeeded or was dead-lettered, by delivery id.

Written by :mod:`gateway.alerts.delivery` once a delivery has ended (``acks=all``: on Kafka
before the dispatcher moves on), read back from a week ago when the gateway starts. The
dispatcher commits its read position only now and then, so after a restart it reads some
events again; their alerts are found here and not sent twice. The one window left is a crash
between a receiver's 2xx and this record: that delivery is repeated once, with the same
``Nova-Delivery-Id``, which a receiver can drop.

It also remembers the last provider alert per provider, so "recovered" after a restart still
knows the provider was down.
"""

from __future__ import annotations

from typing import Any, Final

from nova.kafka.tail import TopicTail
from nova.records import Delivery, now_ms

KEEP_MS: Final = 7 * 24 * 3600 * 1000


class DeliveryLog(TopicTail):
    TOPICS = ("deliveries",)
    START = "beginning"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ended: dict[str, Delivery] = {}
        self.providers: dict[str, tuple[int, str]] = {}  # provider → (ts, last status alerted)

    def since_ms(self) -> int | None:
        return now_ms() - KEEP_MS

    def done(self, delivery_id: str) -> bool:
        return delivery_id in self.ended

    def record(self, delivery: Delivery) -> None:
        """Fold one delivery (ours, at once, or any gateway's, as it is read)."""
        self.ended[delivery.delivery_id] = delivery
        if delivery.kind in ("provider.down", "provider.recovered"):
            status = "down" if delivery.kind == "provider.down" else "healthy"
            seen = self.providers.get(delivery.subject)
            if seen is None or seen[0] <= delivery.ts:
                self.providers[delivery.subject] = (delivery.ts, status)

    def apply(self, topic: str, data: dict[str, Any]) -> None:
        self.record(Delivery.from_avro(data))
