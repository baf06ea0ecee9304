"""The per-identity rate limit is one limit across gateways: what another gateway admitted is
taken from this gateway's bucket, and what this one admits is published for the others.

Pure parts only (clock and producer passed in); the two-gateway path on a real broker is
``tests/integration/test_shared_rate_limit.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.ratelimit import IdentityRateLimiter, SharedAdmissions
from nova.errors import KafkaUnavailableError, LimitError
from nova.records import Admission
from nova.settings import load_settings
from schemas import load_schema_set


class Producer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        self.fail = fail

    async def send(self, topic: str, key: str, record: Any) -> None:
        if self.fail:
            raise KafkaUnavailableError("Kafka is down")
        self.sent.append((topic, key, record))


def shared(limiter: IdentityRateLimiter, producer: Producer, wall: list[float]) -> SharedAdmissions:
    return SharedAdmissions(load_settings(environment="test"), load_schema_set(), limiter,
                            producer, wall_clock=lambda: wall[0])  # type: ignore[arg-type]


def admission(gateway: str, at_s: float, **counts: int) -> dict[str, Any]:
    return Admission(gateway=gateway, at_ms=int(at_s * 1000), counts=counts).to_avro()


def test_another_gateways_admissions_use_up_this_gateways_bucket() -> None:
    now = [0.0]
    limiter = IdentityRateLimiter(6, clock=lambda: now[0])
    view = shared(limiter, Producer(), [1000.0])
    view.apply("admissions", admission("gw-b", 1000.0, alice=5))
    limiter.check("alice")  # the sixth request of the minute
    with pytest.raises(LimitError) as refused:
        limiter.check("alice")
    assert refused.value.limit == "identity:alice:rpm"
    limiter.check("bob")  # another identity's bucket is untouched


def test_its_own_admissions_are_not_counted_twice_and_old_ones_are_mostly_refilled() -> None:
    now = [0.0]
    limiter = IdentityRateLimiter(60, clock=lambda: now[0])
    wall = [1000.0]
    view = shared(limiter, Producer(), wall)
    view.apply("admissions", admission(view.gateway_id, 1000.0, alice=60))
    assert limiter.remaining("alice") == pytest.approx(60)
    view.apply("admissions", admission("gw-b", 1000.0 - 45, alice=40))  # 45 s ago: a quarter owed
    assert limiter.remaining("alice") == pytest.approx(50)
    view.apply("admissions", admission("gw-c", 1000.0 - 90, alice=40))  # refilled long ago
    assert limiter.remaining("alice") == pytest.approx(50)


async def test_what_it_admits_is_published_once_and_kept_while_kafka_is_down() -> None:
    limiter = IdentityRateLimiter(600)
    producer = Producer(fail=True)
    view = shared(limiter, producer, [1000.0])
    for _ in range(3):
        limiter.check("alice")
    limiter.check("bob")
    await view.publish()  # refused: nothing lost
    assert producer.sent == []
    producer.fail = False
    limiter.check("alice")
    await view.publish()
    [(topic, key, record)] = producer.sent
    assert (topic, key) == ("admissions", view.gateway_id)
    assert record.counts == {"alice": 4, "bob": 1}
    await view.publish()  # nothing admitted since: no record
    assert len(producer.sent) == 1
