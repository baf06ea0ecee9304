"""How long a submission waits for its answer: ``wait_ms``, RFC 7240 ``Prefer``, or the default.

The original system answers a request with its outcome (200 with the result, 423 at a
checkpoint), and its clients expect no less; Nova's pipeline is asynchronous, so a submission
waits for the outcome a while and answers 202 (the request as it stands, to be followed with
``GET /api/v2/nova/requests/{id}``) only when the outcome takes longer. How long:

1. the body's ``wait_ms``, when it has one: the API's own, explicit parameter;
2. else the ``Prefer`` header (RFC 7240): ``respond-async`` answers 202 at once; ``wait=N``
   waits up to N seconds (at most :data:`MAX_WAIT_MS`); both together wait N seconds, then
   answer 202 (RFC 7240 §4.1 and §4.3);
3. else the server's ``NOVA_DEFAULT_WAIT_MS`` (10 s).

When a preference decided the wait, the answer says so in ``Preference-Applied``
(``respond-async``, ``wait=10``; a capped wait names the wait applied). Per RFC 7240 §2, a
preference this server does not know (``return=minimal``) is ignored and only the first
instance of a repeated one counts; a known one with a value it cannot take (``wait=soon``,
``wait=-1``, ``respond-async=yes``) is a :class:`PreferError`, a 422 at the edge: a client that
asks for something specific and is silently given something else has a bug it cannot see.
Pure: no I/O, table-tested in ``tests/unit/gateway/test_prefer.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from nova.errors import NovaError

PREFERENCE_APPLIED: Final = "Preference-Applied"
MAX_WAIT_MS: Final = 120_000  # the longest any submission waits (wait_ms, Prefer or default)
RESPOND_ASYNC: Final = "respond-async"
WAIT: Final = "wait"
_SECONDS: Final = re.compile(r"^[0-9]{1,9}$")


class PreferError(NovaError, ValueError):
    """A ``Prefer`` preference Nova knows, with a value it cannot take (422)."""


@dataclass(frozen=True, slots=True)
class Wait:
    """How long to wait, and the ``Preference-Applied`` value when a preference decided it."""

    ms: int
    applied: str | None = None


def preferences(values: Sequence[str]) -> dict[str, str | None]:
    """The preferences of every ``Prefer`` header value: name (lower case) → value (None when
    it has none); the first instance of a name wins, parameters after ``;`` are dropped."""
    found: dict[str, str | None] = {}
    for header in values:
        for item in header.split(","):
            head = item.split(";", 1)[0].strip()
            if not head:
                continue
            name, has_value, value = head.partition("=")
            name = name.strip().lower()
            word = value.strip()
            if len(word) >= 2 and word[0] == word[-1] == '"':
                word = word[1:-1]
            found.setdefault(name, word if has_value else None)
    return found


def choose_wait(wait_ms: int | None, prefer: Sequence[str], default_ms: int) -> Wait:
    """The wait of a submission (module docstring); :class:`PreferError` for a bad value."""
    prefs = preferences(prefer)
    asynchronous = RESPOND_ASYNC in prefs
    if asynchronous and prefs[RESPOND_ASYNC] is not None:
        raise PreferError(f"Prefer: {RESPOND_ASYNC} takes no value (got "
                          f"{RESPOND_ASYNC}={prefs[RESPOND_ASYNC]}); send it alone")
    seconds: int | None = None
    if WAIT in prefs:
        raw = prefs[WAIT]
        if raw is None or not _SECONDS.match(raw):
            raise PreferError(f"Prefer: wait={raw or ''} is not a number of seconds; send "
                              "wait=N with N a whole number of seconds, e.g. wait=10")
        seconds = min(int(raw), MAX_WAIT_MS // 1000)
    if wait_ms is not None:
        return Wait(wait_ms)
    if seconds is not None:
        applied = f"{RESPOND_ASYNC}, {WAIT}={seconds}" if asynchronous else f"{WAIT}={seconds}"
        return Wait(seconds * 1000, applied)
    if asynchronous:
        return Wait(0, RESPOND_ASYNC)
    return Wait(min(default_ms, MAX_WAIT_MS))
