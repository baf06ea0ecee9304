"""The per-identity rate limit holds across gateways: two gateways on one broker share it.

Gateway one admits an identity's whole minute; once its admissions have reached gateway two
(a few hundred milliseconds: polled, not slept), gateway two refuses that identity with 429
problem+json and ``Retry-After``, and still admits another identity. Per-process buckets would
have let the identity submit its rate again at the second gateway.
"""

from __future__ import annotations

from typing import Any

import pytest

from nova.kafka.launcher import free_port
from nova.settings import Settings
from tests.integration.conftest import RESPOND_ASYNC, eventually, serve_gateway

pytestmark = pytest.mark.integration

RPM = 6  # a minute's worth is the burst: six requests, then one every ten seconds


async def test_an_identity_over_its_rate_at_one_gateway_is_refused_at_the_other(
    settings: Settings, clickhouse: Any,
) -> None:
    limited = settings.model_copy(update={"gateway_rpm_per_identity": RPM})
    ch = clickhouse.with_database(settings.clickhouse_database)
    second_settings = limited.model_copy(update={"gateway_port": free_port(), "run_sink": False})
    async with serve_gateway(limited, ch) as one, serve_gateway(second_settings, ch) as two:
        alice = {**one.auth("identity-alice", "member"), **RESPOND_ASYNC}
        for i in range(RPM):
            r = await one.http.post("/api/v2/nova/requests", headers=alice,
                                    json={"prompt": f"Summarise note {i}"})
            assert r.status_code == 202, r.text

        async def two_knows() -> bool:
            r = await two.http.get("/api/v2/llm/monitoring/rate-limits", headers=alice)
            assert r.status_code == 200, r.text
            return bool(r.json()["identity"]["remaining_now"] < 1)

        await eventually(two_knows, 30, 0.1, message="gateway two to learn gateway one's count")
        refused = await two.http.post("/api/v2/nova/requests", headers=alice,
                                      json={"prompt": "One more, elsewhere"})
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["limit"] == "identity:identity-alice:rpm"

        bob = {**two.auth("identity-bob", "member"), **RESPOND_ASYNC}
        other = await two.http.post("/api/v2/nova/requests", headers=bob,
                                    json={"prompt": "Summarise this thread"})
        assert other.status_code == 202, other.text

        # and the other way round: what gateway two admits counts at gateway one
        for i in range(RPM - 1):
            r = await two.http.post("/api/v2/nova/requests", headers=bob,
                                    json={"prompt": f"Summarise note {i}"})
            assert r.status_code == 202, r.text

        async def one_knows() -> bool:
            r = await one.http.get("/api/v2/llm/monitoring/rate-limits", headers=bob)
            return bool(r.json()["identity"]["remaining_now"] < 1)

        await eventually(one_knows, 30, 0.1, message="gateway one to learn gateway two's count")
        r = await one.http.post("/api/v2/nova/requests", headers=bob,
                                json={"prompt": "One more, elsewhere"})
        assert r.status_code == 429, r.text
