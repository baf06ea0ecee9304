"""The wire schema of ``/api/v2/ws`` (``nova.live.v1``), documented in ``docs/live.md``.

Every frame is one JSON object with a ``type``. A client sends ``auth`` (unless it offered its
token as a ``Sec-WebSocket-Protocol``), then ``subscribe`` (again at will: each replaces the
previous subscription), ``ping``; the gateway sends ``ready``, ``subscribed``, ``event``,
``pong`` and ``error`` frames. An ``error`` carries an RFC 9457 problem, as the HTTP routes do.

Events carry metrics and ids, never content: no prompt, context, answer or error text (those
are private content, read over HTTP by whoever may read them). A subscriber needing a held
request's prompt fetches the checkpoint (``GET /api/v2/governance/checkpoints/{id}``), which
applies its own access rules.

Close codes (the 4xxx ones mirror the HTTP status they stand for):

======  ====================================================================================
1001    the gateway is stopping: reconnect (to any gateway) and resume
1009    a client frame over :data:`MAX_FRAME` bytes
4400    a malformed frame before authentication (not JSON, not an ``auth`` frame)
4401    no valid token (bad, expired, or expired while connected): sign in again
4408    no ``auth`` frame within ``NOVA_LIVE_AUTH_TIMEOUT_S``
4413    too slow: more than ``NOVA_LIVE_QUEUE_MAX`` events waited for this client; reconnect
        and resume (the backlog is dropped, the gateway's memory stays bounded)
4429    too many failed credential checks from this address (``gateway.auth_throttle``)
======  ====================================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from gateway.bodies import StrictBody
from gateway.problems import PROBLEM_TYPE_BASE

PROTOCOL: Final = "nova.live.v1"
BEARER_PREFIX: Final = "nova.bearer."  # Sec-WebSocket-Protocol: nova.live.v1, nova.bearer.<jwt>
MAX_FRAME: Final = 64 * 1024

GOING_AWAY: Final = 1001
TOO_BIG: Final = 1009
BAD_FRAME: Final = 4400
UNAUTHORIZED: Final = 4401
AUTH_TIMEOUT: Final = 4408
TOO_SLOW: Final = 4413
THROTTLED: Final = 4429

LiveTopic = Literal[
    "pipeline.start",
    "lane.complete",
    "pipeline.complete",
    "checkpoint.created",
    "checkpoint.decided",
    "budget.warning",
    "budget.exceeded",
    "provider.health",
]
TOPICS: Final[tuple[LiveTopic, ...]] = get_args(LiveTopic)
CHECKPOINT_TOPICS: Final = frozenset({"checkpoint.created", "checkpoint.decided"})
SYSTEM_IDENTITY: Final = "system"  # provider health belongs to no identity: everyone sees it
EVERY_IDENTITY: Final = "*"


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One event as the adapter derives it from a record, before the hub numbers it.

    ``id`` is stable for the record it came from (topic, partition, offset, and the index
    within the record), so a client resuming at another gateway can drop what it already has.
    ``user_id`` is the submitter of the request, used to decide who may see a checkpoint; it
    is sent only where the HTTP API shows it too (``data``).
    """

    topic: LiveTopic
    id: str
    ts: int
    identity: str
    request_id: str | None
    data: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None

    def wire(self, position: str) -> str:
        """The ``event`` frame, serialised once and shared by every subscriber."""
        return json.dumps(
            {
                "type": "event",
                "topic": self.topic,
                "id": self.id,
                "position": position,
                "ts": self.ts,
                "identity": self.identity,
                "request_id": self.request_id,
                "data": self.data,
            },
            separators=(",", ":"),
        )


# -- client frames ------------------------------------------------------------------------
Token = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
IdentityRef = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Position = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class AuthFrame(StrictBody):
    type: Literal["auth"]
    token: Token


class SubscribeFrame(StrictBody):
    """``topics``: what to receive (default: every topic). ``identities``: whose events, by
    default the token's identity; ``["*"]`` is every identity's, for operators. ``after``:
    the ``position`` of the last event this client handled, to replay what it missed;
    ``since``: the ``ts`` of that event, used when ``after`` names another gateway."""

    type: Literal["subscribe"]
    topics: list[LiveTopic] = Field(default_factory=lambda: list(TOPICS), max_length=16)
    identities: list[IdentityRef] | None = Field(default=None, min_length=1, max_length=16)
    after: Position | None = None
    since: Annotated[int, Field(ge=0)] | None = None


class PingFrame(StrictBody):
    type: Literal["ping"]


ClientFrame = Annotated[AuthFrame | SubscribeFrame | PingFrame, Field(discriminator="type")]
_CLIENT: Final = TypeAdapter(ClientFrame)


class FrameError(ValueError):
    """A client frame that is not JSON or does not match the schema; ``errors`` as in a 422."""

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


def parse_client_frame(text: str) -> AuthFrame | SubscribeFrame | PingFrame:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FrameError("the frame is not JSON") from exc
    try:
        return _CLIENT.validate_python(data)
    except ValidationError as exc:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""),
                   "type": e.get("type", "")} for e in exc.errors()]
        raise FrameError("the frame does not match the nova.live.v1 schema", errors) from exc


# -- server frames ------------------------------------------------------------------------
def frame(kind: str, **body: Any) -> str:
    return json.dumps({"type": kind, **body}, separators=(",", ":"))


def error_frame(status: int, title: str, detail: str, slug: str, **extra: Any) -> str:
    """An ``error`` frame carrying an RFC 9457 problem (``gateway.problems`` types)."""
    problem = {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status,
               "detail": detail, **extra}
    return frame("error", problem=problem)
