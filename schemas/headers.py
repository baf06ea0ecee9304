"""Record headers: what a reader may learn about a pipeline record without decoding its value.

Every pipeline record (the hand-offs ``requests`` … ``completed`` and ``pending``) carries,
besides ``nova-schema`` (the writer schema, ``schemas.codec``), the few facts its readers filter
on, so that the gateway's read models and the live feeds skip or route a record from its
headers alone and decode a value only when they need it (decoding every record of every topic
was a third of the gateway's CPU, issue 9):

- ``nova-request``: the request id (also the key);
- ``nova-identity``: the identity the request belongs to;
- ``nova-status``: the record's status (``accepted``, ``in_flight``, ``held``, ``completed``…);
- ``nova-lane``: the lane that wrote the record (absent on ``requests``, written by the gateway);
- ``nova-keyed``: ``1`` when the request came with an Idempotency-Key.

Headers are a convenience for readers, never the truth: the value decides. Records written
before the headers existed have none; a reader falls back to decoding the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

REQUEST = "nova-request"
IDENTITY = "nova-identity"
STATUS = "nova-status"
LANE = "nova-lane"
KEYED = "nova-keyed"

RawHeaders = Iterable[tuple[str, bytes | None]] | Mapping[str, bytes] | None


def header(headers: RawHeaders, name: str) -> str | None:
    """The value of header ``name`` as text, or None when the record does not carry it."""
    if headers is None:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key == name and value is not None:
            return bytes(value).decode("utf-8", "replace")
    return None
