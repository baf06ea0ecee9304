"""The gateway ``nova up`` serves in its own process comes back there after its server ended:
its listening socket and its services (Kafka clients, the embedded ClickHouse, the sink) are
released, then built again on the same port and data dir (``nova.cli.stack.InProcessGateway``,
restarted by the supervisor as ``tests/unit/test_supervisor.py`` shows).

A process may own one chdb path, and this test's process already holds the session's
(``conftest.clickhouse``), so the gateway opens that path, in a database of its own: each
start opens a new handle on it and each stop closes that handle."""

from __future__ import annotations

import httpx
import pytest

from analytics.client import ClickHouse
from nova.cli.stack import InProcessGateway
from nova.settings import Settings

pytestmark = pytest.mark.integration


async def test_a_gateway_whose_server_ended_serves_again_in_the_same_process(
    settings: Settings, clickhouse: ClickHouse,
) -> None:
    gateway = InProcessGateway(settings.model_copy(update={"clickhouse_dsn": clickhouse.dsn}))
    await gateway.start()
    try:
        async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=30) as http:
            assert (await http.get("/ready")).json()["clickhouse"] == "ok"
            ended = gateway.task
            assert gateway.server is not None
            gateway.server.should_exit = True  # its server ends, as on its own
            await ended
            await gateway.start()
            assert gateway.task is not ended
            ready = await http.get("/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["clickhouse"] == "ok"  # chdb opened again by this process
    finally:
        await gateway.stop(5)
    assert gateway.task.done()
