"""``/api/v2/ws`` on the real stack: a gateway and a worker on a real broker, one per module.

Every event a client receives here came from Kafka through the gateway's feed: the requests
are real requests through the seven lanes, the flood is records written to the events topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from analytics.client import ClickHouse
from nova.kafka.producer import RecordProducer
from nova.llm.fake_server import FakeServerThread
from nova.records import AuditFact, LaneTiming, PipelineRecord
from tests.integration.conftest import (
    RESPOND_ASYNC,
    Gateway,
    SessionBroker,
    WorkerProcess,
    eventually,
)
from tests.integration.live_helpers import (
    LiveClient,
    live,
    live_stack,
    small_socket,
    unique,
    ws_url,
)
from tests.integration.pipeline_checks import read_records

pytestmark = pytest.mark.integration

LANES = [f"lane.complete:{x}:ok" for x in "ABCDEFG"]
HARMLESS = "Summarise this thread about the roadmap"
PAYMENT = "Pay invoice INV-88 of 420 EUR to ACME"


@pytest.fixture(scope="module")
async def stack(broker: SessionBroker, clickhouse: ClickHouse, fake_llm: FakeServerThread,
                tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[tuple[Gateway, WorkerProcess]]:
    async with live_stack(broker, clickhouse, tmp_path_factory.mktemp("live") / "data",
                          fake_llm, live_auth_timeout_s=1.0) as running:
        yield running


@pytest.fixture
def gw(stack: tuple[Gateway, WorkerProcess]) -> Gateway:
    return stack[0]


async def submit(gw: Gateway, identity: str, prompt: str = HARMLESS, *, sub: str | None = None,
                 status: int = 202) -> dict[str, Any]:
    wait = {"wait_ms": 60_000} if status == 423 else {}
    prefer = RESPOND_ASYNC if status == 202 else {}
    r = await gw.http.post("/api/v2/nova/requests", json={"prompt": prompt, **wait},
                           headers={**gw.auth(identity, "member", sub=sub), **prefer})
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_events_arrive_in_order_per_request_and_only_to_their_identity(gw: Gateway) -> None:
    alice, bob = unique("alice"), unique("bob")
    async with (live(gw, gw.token(alice, "member")) as a,
                live(gw, gw.token(bob, "member")) as b,
                live(gw, gw.token(unique("ops"), "operator")) as op):
        assert (await a.subscribe())["identities"] == [alice]
        await b.subscribe()
        watching = await op.subscribe(identities=["*"], topics=["pipeline.start",
                                                                 "pipeline.complete"])
        assert watching["identities"] == ["*"]
        mine = [(await submit(gw, alice))["request_id"] for _ in range(3)]
        theirs = (await submit(gw, bob))["request_id"]
        await a.until(lambda _: a.completed(*mine))
        await b.until(lambda _: b.completed(theirs))
        await op.until(lambda _: op.completed(*mine, theirs))
        for rid in mine:
            assert a.trail(rid) == ["pipeline.start", *LANES, "pipeline.complete"], rid
        assert b.trail(theirs) == ["pipeline.start", *LANES, "pipeline.complete"]
        # ...and never the other's, with every frame read so far
        assert {e["identity"] for e in a.events()} == {alice}
        assert {e["identity"] for e in b.events()} == {bob}
        assert {e["request_id"] for e in b.events()} == {theirs}
        assert {e["topic"] for e in op.events()} == {"pipeline.start", "pipeline.complete"}
        done = [e for e in a.events() if e["topic"] == "pipeline.complete"]
        assert {e["data"]["status"] for e in done} == {"completed"}
        positions = [e["position"] for e in a.events()]
        assert len(set(positions)) == len(positions)


async def test_another_identitys_events_are_refused_and_audited(gw: Gateway) -> None:
    alice, bob = unique("alice"), unique("bob")
    async with live(gw, gw.token(bob, "member", "approver", "admin", "analyst")) as b:
        refused = await b.subscribe(identities=[alice])
        assert refused["type"] == "error"
        assert refused["problem"]["status"] == 403
        assert alice not in json.dumps(refused)
        star = await b.subscribe(identities=["*"])  # an admin is its identity's, not everyone's
        assert star["problem"]["status"] == 403
        # the connection is still usable, and still only bob's
        await b.subscribe()
        rid = (await submit(gw, alice))["request_id"]
        own = (await submit(gw, bob))["request_id"]
        await b.until(lambda _: b.completed(own))
        assert rid not in {e["request_id"] for e in b.events()}

    async def audited() -> list[AuditFact]:
        facts = await read_records(gw.settings, "facts", AuditFact)
        return [f for f in facts if f.kind == "IDENTITY_BOUNDARY" and f.identity_id == bob
                and json.loads(f.detail)["resource_kind"] == "live_events"]

    facts = await eventually(audited, 30, message="IDENTITY_BOUNDARY facts")
    owners = sorted(json.loads(f.detail)["owner_identity"] for f in facts)
    assert owners == sorted([alice, "*"])


async def test_a_held_payment_reaches_approvers_and_its_submitter_not_other_members(
    gw: Gateway,
) -> None:
    alice = unique("alice")
    approver = gw.token(alice, "member", "approver", sub="user-carol")
    async with (live(gw, approver) as carol,
                live(gw, gw.token(alice, "member", sub="user-dave")) as dave,
                live(gw, gw.token(alice, "member", sub="user-alice")) as submitter):
        for client in (carol, dave, submitter):
            await client.subscribe()
        held = await submit(gw, alice, PAYMENT, sub="user-alice", status=423)
        rid, cp = held["request_id"], held["checkpoint_id"]

        def created(events: list[dict[str, Any]]) -> bool:
            return any(e["topic"] == "checkpoint.created" for e in events)

        [announced] = [e for e in await carol.until(created) if e["topic"] == "checkpoint.created"]
        assert announced["data"]["checkpoint_id"] == cp
        assert announced["data"]["fired_rules"]
        assert PAYMENT not in json.dumps(announced)  # the prompt is read over HTTP, not here
        await submitter.until(created)
        r = await gw.http.post(f"/api/v2/governance/checkpoints/{cp}/approve",
                               json={"reason": "ok"},
                               headers={"Authorization": f"Bearer {approver}"})
        assert r.status_code == 200, r.text
        for client in (carol, dave, submitter):
            await client.until(lambda _, c=client: c.completed(rid))  # type: ignore[misc]
        assert carol.trail(rid) == [
            "pipeline.start", *LANES[:4], "lane.complete:E:held", "checkpoint.created",
            "checkpoint.decided", "lane.complete:E:approved", *LANES[5:], "pipeline.complete"]
        assert submitter.trail(rid) == carol.trail(rid)
        assert dave.trail(rid) == [t for t in carol.trail(rid) if not t.startswith("checkpoint")]
        [decided] = [e for e in carol.events(rid) if e["topic"] == "checkpoint.decided"]
        assert decided["data"]["decision"] == "approve"
        assert decided["data"]["actor"] == "user-carol"


async def test_a_reconnecting_client_resumes_where_it_left(gw: Gateway) -> None:
    alice = unique("alice")
    token = gw.token(alice, "member")
    async with live(gw, token) as first:
        await first.subscribe()
        before = (await submit(gw, alice))["request_id"]
        await first.until(lambda _: first.completed(before))
        last = first.events()[-1]["position"]
    missed = (await submit(gw, alice))["request_id"]  # while nobody listens

    async def finished() -> bool:
        view = gw.services.tracker.get(missed)
        return view is not None and view.finished

    await eventually(finished, 90, message="the missed request to finish")
    async with live(gw, token) as again:
        resumed = await again.subscribe(after=last)
        assert resumed["resume"] == "exact"
        assert resumed["replayed"] == 9
        await again.until(lambda _: again.completed(missed))
        assert again.trail(missed) == ["pipeline.start", *LANES, "pipeline.complete"]
        assert before not in {e["request_id"] for e in again.events()}


async def test_a_client_that_stops_reading_is_closed_and_costs_a_bounded_queue(
    gw: Gateway,
) -> None:
    """The slow client reads nothing while the flood lasts; the fast one gets every event.

    The flood is finished requests written to ``completed`` (nine messages each: the start,
    seven lanes, the end) until the gateway drops the slow client: more than the kernel's
    socket buffers and the queue hold together (a few megabytes on loopback; uncompressed, or
    the flood would fit).
    """
    flood = unique("flood")
    hub = gw.services.live.hub
    limit = gw.settings.live_queue_max
    dropped = hub.dropped_slow
    token = gw.token(flood, "member")
    async with (live(gw, token, max_queue=1, sock=small_socket(gw), compression=None,
                     ping_interval=None) as slow,
                live(gw, token, max_queue=None) as fast):
        await slow.subscribe()
        await fast.subscribe()
        producer = RecordProducer(gw.settings)
        await producer.start()
        peak = 0

        async def sample() -> None:  # what the hub holds for its clients, while it all runs
            nonlocal peak
            while True:
                peak = max(peak, hub.stats()["queued"])
                await asyncio.sleep(0.001)

        def finished(i: int) -> tuple[str, PipelineRecord]:
            rid = f"flood-{uuid.uuid4().hex}-{i}"
            return rid, PipelineRecord(
                request_id=rid, identity_id=flood, user_id="user-flood", submitted_at=0,
                prompt="flood", status="completed", lanes=tuple(
                    LaneTiming(lane=x, status="ok", started_at=0, duration_ms=1.0)
                    for x in "ABCDEFG"))

        async def overflowed() -> bool:
            return bool(hub.dropped_slow > dropped)

        sampler = asyncio.create_task(sample())
        n = 0
        try:
            while n < 10_000 and not await overflowed():
                await asyncio.gather(*(producer.send("completed", *finished(n + i))
                                       for i in range(250)))
                n += 250
                with contextlib.suppress(AssertionError):
                    await eventually(overflowed, 1.0, 0.05)
            assert await overflowed(), f"{n} requests did not overflow the slow client"
            assert hub.dropped_slow == dropped + 1
            assert hub.stats()["subscribers"] == 1  # the slow one has left the hub
            # the slow one now reads: what its socket held, then the close code
            with pytest.raises(ConnectionClosed) as closed:
                await slow.drain()
            everything = await fast.until(lambda events: len(events) >= 9 * n, 120)
        finally:
            sampler.cancel()
            await producer.stop()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4413
        assert len(slow.events()) < 9 * n
        assert len(everything) == 9 * n
        assert 0 < peak <= 2 * limit  # two subscribers' queues at most, never the flood


# -- authentication ----------------------------------------------------------------------
async def test_the_token_may_come_as_a_subprotocol_and_is_never_echoed(gw: Gateway) -> None:
    alice = unique("alice")
    token = gw.token(alice, "member")
    offered = [Subprotocol("nova.live.v1"), Subprotocol(f"nova.bearer.{token}")]
    async with connect(ws_url(gw), subprotocols=offered) as ws:
        assert ws.subprotocol == "nova.live.v1"
        assert ws.response is not None
        assert token not in str(ws.response.headers)
        client = LiveClient(ws)
        assert (await client.expect("ready"))["identity"] == alice


async def test_a_token_in_the_url_is_not_read(gw: Gateway) -> None:
    token = gw.token(unique("alice"), "member")
    async with connect(f"{ws_url(gw)}?token={token}&access_token={token}") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4408


@pytest.mark.parametrize(("first", "code"), [
    ({"type": "auth", "token": "not-a-jwt"}, 4401),
    ({"type": "subscribe"}, 4400),
    ("{not json", 4400),
])
async def test_a_bad_first_frame_closes_with_a_code(gw: Gateway, first: Any, code: int) -> None:
    async with connect(ws_url(gw)) as ws:
        await ws.send(first if isinstance(first, str) else json.dumps(first))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code


async def test_an_expired_or_forged_token_closes_with_4401(gw: Gateway) -> None:
    now = datetime.now(UTC)
    secret = gw.settings.jwt_secret.get_secret_value()
    claims = {"iss": gw.settings.jwt_issuer, "aud": gw.settings.jwt_audience, "sub": "user-x",
              "identity": unique("alice"), "roles": ["member"]}
    expired = jwt.encode({**claims, "iat": int((now - timedelta(hours=2)).timestamp()),
                          "exp": int((now - timedelta(hours=1)).timestamp())}, secret)
    forged = jwt.encode({**claims, "iat": int(now.timestamp()),
                         "exp": int((now + timedelta(minutes=5)).timestamp())}, "x" * 40)
    for token in (expired, forged):
        async with connect(ws_url(gw)) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401


async def test_a_bad_subscription_is_a_422_problem_and_the_connection_stays(gw: Gateway) -> None:
    async with live(gw, gw.token(unique("alice"), "member")) as a:
        bad_options: list[dict[str, Any]] = [
            {"topics": ["pipeline.gossip"]}, {"identities": []}, {"after": 7}, {"shout": True}]
        for bad in bad_options:
            answer = await a.subscribe(**bad)
            assert answer["type"] == "error", bad
            assert answer["problem"]["status"] == 422, bad
            assert answer["problem"]["errors"]
        await a.send(type="ping")
        assert (await a.expect("pong"))["position"]
        await a.ws.send("x" * (70 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            await a.expect("never")
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
