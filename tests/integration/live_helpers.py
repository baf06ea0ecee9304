"""A WebSocket client of ``/api/v2/ws`` for the live tests, and a module-scoped stack.

The stack is one gateway (no sink unless asked: the feed reads Kafka, not ClickHouse) and one
worker subprocess on their own topic prefix, shared by a test module; tests stay apart by using
their own identities.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from analytics.client import ClickHouse
from nova.kafka.launcher import free_port
from nova.llm.fake_server import FakeServerThread
from tests.integration.conftest import (
    RESPOND_ASYNC,
    Gateway,
    SessionBroker,
    WorkerProcess,
    eventually,
    provisioned,
    serve_gateway,
)


def unique(name: str) -> str:
    return f"identity-{name}-{uuid.uuid4().hex[:8]}"


@dataclass
class LiveClient:
    """One connection: frames as they arrive, events by request."""

    ws: ClientConnection
    frames: list[dict[str, Any]] = field(default_factory=list)
    _events: list[dict[str, Any]] = field(default_factory=list)

    async def recv(self, timeout_s: float = 30.0) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout_s))
        self.frames.append(frame)
        if frame["type"] == "event":
            self._events.append(frame)
        return frame

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Read until the connection closes (raises ``ConnectionClosed`` then)."""
        while True:
            await self.recv(timeout_s)

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def subscribe(self, **options: Any) -> dict[str, Any]:
        await self.send(type="subscribe", **options)
        return await self.expect("subscribed", "error")

    async def expect(self, *kinds: str, timeout_s: float = 30.0) -> dict[str, Any]:
        while True:
            frame = await self.recv(timeout_s)
            if frame["type"] in kinds:
                return frame

    async def until(self, done: Callable[[list[dict[str, Any]]], bool],
                    timeout_s: float = 90.0) -> list[dict[str, Any]]:
        """Read frames until ``done(events so far)``; the events (``type: event``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not done(self._events):
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"timed out; events so far: {self._events[-20:]}")
            await self.recv(left)
        return self.events()

    def events(self, request_id: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self._events if request_id is None or f["request_id"] == request_id]

    def trail(self, request_id: str) -> list[str]:
        """``topic`` (with ``:lane:status`` for lanes) of each event of one request."""
        out = []
        for e in self.events(request_id):
            lane = e["data"].get("lane")
            out.append(f"{e['topic']}:{lane}:{e['data']['status']}" if lane else e["topic"])
        return out

    def completed(self, *request_ids: str) -> bool:
        done = {e["request_id"] for e in self._events if e["topic"] == "pipeline.complete"}
        return set(request_ids) <= done


async def warm_up(gw: Gateway, timeout_s: float = 240.0) -> None:
    """One request through the seven lanes: the worker is up and has its partitions (its
    start takes a while on a loaded machine; the tests' own deadlines start after it)."""
    r = await gw.http.post("/api/v2/nova/requests", json={"prompt": "Summarise this"},
                           headers={**gw.auth(unique("warmup"), "member"), **RESPOND_ASYNC})
    assert r.status_code == 202, r.text
    rid = r.json()["request_id"]

    async def done() -> bool:
        view = gw.services.tracker.get(rid)
        return view is not None and view.finished

    await eventually(done, timeout_s, 0.2, message="the worker to serve a first request")


def ws_url(gw: Gateway) -> str:
    return gw.url.replace("http://", "ws://") + "/api/v2/ws"


def small_socket(gw: Gateway, receive_buffer: int = 8192) -> socket.socket:
    """A connected socket whose receive buffer stays small (no autotuning): a client that
    stops reading is felt by the gateway after kilobytes, not after the kernel's megabytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", gw.settings.gateway_port))
    return sock


@contextlib.asynccontextmanager
async def live(gw: Gateway, token: str | None, **connect_options: Any
               ) -> AsyncIterator[LiveClient]:
    """A connection that sent ``token`` in its auth frame (None: sends nothing)."""
    async with connect(ws_url(gw), subprotocols=[Subprotocol("nova.live.v1")],
                       **connect_options) as ws:
        client = LiveClient(ws)
        if token is not None:
            await client.send(type="auth", token=token)
            ready = await client.expect("ready")
            assert ready["protocol"] == "nova.live.v1"
        yield client


@contextlib.asynccontextmanager
async def live_stack(broker: SessionBroker, clickhouse: ClickHouse, data_dir: Any,
                     fake_llm: FakeServerThread, **overrides: Any
                     ) -> AsyncIterator[tuple[Gateway, WorkerProcess]]:
    tag = uuid.uuid4().hex[:10]
    overrides = {"run_sink": False, **overrides}  # the pipeline tests' stack runs the sink
    settings = provisioned(broker.settings(
        environment="test", data_dir=data_dir, topic_prefix=f"t{tag}", topic_partitions=4,
        clickhouse_database=f"t_{tag}", gateway_port=free_port(), log_level="warning",
        llm_fake_url=fake_llm.url, checkpoint_sweep_s=0.5, **overrides))
    async with serve_gateway(settings, clickhouse.with_database(settings.clickhouse_database)
                             ) as gw:
        worker = WorkerProcess(settings).start()
        try:
            await warm_up(gw)
            yield gw, worker
        finally:
            worker.stop()
