"""``/api/v2/ws``: live events per identity over a WebSocket (protocol ``nova.live.v1``).

Authentication is the bearer token of every other route, never in the URL (URLs end up in
logs, histories and ``Referer`` headers): either in the first frame, ``{"type": "auth",
"token": …}`` (what browsers do, since they cannot set headers on a WebSocket), or as a
subprotocol, ``Sec-WebSocket-Protocol: nova.live.v1, nova.bearer.<token>`` (the answer names
only ``nova.live.v1``). A token that proves nothing counts against the source address in the
authentication throttle, as on every route. The connection closes with 4401 when the token
expires.

Then the client subscribes (``gateway.live.messages`` has the frames, ``docs/live.md`` the
schema). Asking for another identity's events is refused with a 403 problem in an ``error``
frame and leaves an ``IDENTITY_BOUNDARY`` audit fact, as a foreign id does on any route; the
connection stays open with its previous subscription. Operators may ask for every identity's
(``"identities": ["*"]``) or named ones.

Each connection has two tasks: the receiver reads the client's frames; the sender drains the
connection's outbox (``gateway.live.hub.Subscriber``) to the socket, so the only thing a slow
client can hold up is its own sender. When the outbox overflows, the hub drops it and the
connection is closed with 4413, after what the socket already holds.

The browser's cross-site WebSocket problem does not arise: nothing here reads a cookie, so a
page of another site can open the socket but never authenticate it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Final

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from gateway.live import messages as wire
from gateway.live.hub import Filter, Subscribed, Subscriber
from gateway.live.messages import AuthFrame, FrameError, PingFrame, SubscribeFrame
from gateway.services import Services
from nova.auth.tokens import Principal, UnprovenTokenError, verify_token
from nova.domain.roles import OPERATOR
from nova.errors import AuthError, LimitError

log = logging.getLogger(__name__)

router = APIRouter(tags=["live"])

CLOSE_WAIT_S: Final = 2.0


class _Closed(Exception):
    """End the connection with this close code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@router.websocket("/api/v2/ws")
async def live(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    offered = ws.scope.get("subprotocols") or []
    header_token = next((p[len(wire.BEARER_PREFIX):] for p in offered
                         if p.startswith(wire.BEARER_PREFIX)), None)
    await ws.accept(subprotocol=wire.PROTOCOL if wire.PROTOCOL in offered else None)
    try:
        principal = await _authenticate(ws, services, header_token)
        await _serve(ws, services, principal)
    except _Closed as closed:
        await _close(ws, closed.code, closed.reason)
    except WebSocketDisconnect:
        pass


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    if ws.application_state == WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(Exception):  # a client that reads nothing cannot stop us leaving
        await asyncio.wait_for(ws.close(code, reason), CLOSE_WAIT_S)


async def _receive_text(ws: WebSocket, timeout_s: float | None = None) -> str:
    """The next text frame (a binary or oversized one closes the connection)."""
    try:
        message = await asyncio.wait_for(ws.receive(), timeout_s)
    except TimeoutError as exc:
        raise _Closed(wire.AUTH_TIMEOUT, "no auth frame in time") from exc
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        raise _Closed(wire.BAD_FRAME, "frames are JSON text")
    if len(text) > wire.MAX_FRAME:
        raise _Closed(wire.TOO_BIG, "frame too large")
    return str(text)


async def _authenticate(ws: WebSocket, services: Services, token: str | None) -> Principal:
    if token is None:
        text = await _receive_text(ws, services.settings.live_auth_timeout_s)
        try:
            first = wire.parse_client_frame(text)
        except FrameError as exc:
            raise _Closed(wire.BAD_FRAME, "the first frame must be an auth frame") from exc
        if not isinstance(first, AuthFrame):
            raise _Closed(wire.BAD_FRAME, "the first frame must be an auth frame")
        token = first.token
    source = ws.client.host if ws.client is not None else "unknown"
    throttle = services.auth_throttle
    try:
        throttle.acquire("bearer", source)
    except LimitError as exc:
        raise _Closed(wire.THROTTLED, "too many failed credential checks") from exc
    try:
        principal = verify_token(services.settings, token)
    except UnprovenTokenError as exc:
        await throttle.failed("bearer", source)
        raise _Closed(wire.UNAUTHORIZED, str(exc)) from exc
    except AuthError as exc:
        throttle.release("bearer", source)
        raise _Closed(wire.UNAUTHORIZED, str(exc)) from exc
    throttle.release("bearer", source)
    try:
        await services.sessions.check(principal)  # logged out, or its API key revoked
    except AuthError as exc:
        raise _Closed(wire.UNAUTHORIZED, str(exc)) from exc
    return principal


async def _serve(ws: WebSocket, services: Services, principal: Principal) -> None:
    hub = services.live.hub
    closing: list[_Closed] = []

    def overflowed() -> None:
        closing.append(_Closed(wire.TOO_SLOW, "too slow: events were waiting beyond the limit"))

    outbox = Subscriber(services.settings.live_queue_max, overflowed)
    outbox.offer(wire.frame(
        "ready", protocol=wire.PROTOCOL, identity=principal.identity, sub=principal.sub,
        roles=sorted(principal.roles), gateway=hub.epoch, position=hub.position,
        expires_at=principal.expires_at.isoformat() if principal.expires_at else None))
    sender = asyncio.create_task(_send_loop(ws, outbox), name="live-sender")
    receiver = asyncio.create_task(_receive_loop(ws, services, principal, outbox),
                                   name="live-receiver")
    tasks: set[asyncio.Task[None]] = {sender, receiver}
    if principal.expires_at is not None:
        left = (principal.expires_at - datetime.now(UTC)).total_seconds()
        tasks.add(asyncio.create_task(_expire(left), name="live-expiry"))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and isinstance(task.exception(), _Closed | WebSocketDisconnect):
                raise task.exception()  # type: ignore[misc]
        if closing:
            raise closing[0]
    finally:
        hub.unsubscribe(outbox)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


async def _expire(left_s: float) -> None:
    await asyncio.sleep(max(0.0, left_s))
    raise _Closed(wire.UNAUTHORIZED, "token expired")


async def _send_loop(ws: WebSocket, outbox: Subscriber) -> None:
    """Drain the outbox; return once it has overflowed (its backlog is gone already).

    A client that reads nothing blocks this task in ``send_text`` (uvicorn waits while the
    transport is over its high-water mark) and nothing else: the hub has dropped its outbox,
    so what it holds is what the transport holds. The close frame follows the frames already
    written, so a client that reads again receives them, then 4413.
    """
    while (text := await outbox.next()) is not None:
        await ws.send_text(text)


async def _receive_loop(
    ws: WebSocket, services: Services, principal: Principal, outbox: Subscriber
) -> None:
    while True:
        text = await _receive_text(ws)
        try:
            frame = wire.parse_client_frame(text)
        except FrameError as exc:
            outbox.offer(wire.error_frame(422, "Invalid request", str(exc), "validation",
                                          errors=exc.errors))
            continue
        if isinstance(frame, PingFrame):
            outbox.offer(wire.frame("pong", position=services.live.hub.position))
        elif isinstance(frame, AuthFrame):
            outbox.offer(wire.error_frame(
                409, "Conflict", "this connection is authenticated already; open a new one to "
                "change tokens", "conflict"))
        else:
            await _subscribe(services, principal, outbox, frame)


async def _subscribe(
    services: Services, principal: Principal, outbox: Subscriber, frame: SubscribeFrame
) -> None:
    wanted = frozenset(frame.identities or [principal.identity])
    foreign = sorted(wanted - {principal.identity})
    if foreign and OPERATOR not in principal.roles:
        for owner in foreign:
            await services.boundary.violation(principal, "live_events", f"ws:{owner}", owner,
                                              operation="subscribe")
        outbox.offer(wire.error_frame(
            403, "Forbidden", "events of another identity are not yours to receive (operators "
            "may subscribe to every identity's)", "identity-boundary"))
        return
    flt = Filter(
        identity=principal.identity,
        sub=principal.sub,
        approver=principal.has_role("approver", "admin"),
        topics=frozenset(frame.topics),
        identities=wanted,
    )

    def greeting(result: Subscribed) -> str:
        return wire.frame("subscribed", topics=sorted(flt.topics), identities=sorted(wanted),
                          resume=result.resume, replayed=result.replayed,
                          position=result.position)

    services.live.hub.subscribe(outbox, flt, after=frame.after, since=frame.since,
                                greeting=greeting)
