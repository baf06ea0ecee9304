"""The base of every JSON body the gateway accepts: closed, strictly typed, finite.

Pydantic's default (lax) mode converts what it can: ``"5000"`` and ``5000.0`` become the
integer 5000, ``"true"`` and ``1`` become True, ``Infinity`` is a float. A client that sends
``"wait_ms": "5000"`` has a bug, and a gateway that guesses what it meant hides it; worse, two
implementations of one contract (this gateway and a schemathesis run, a client library) then
disagree about what is valid. Every request body model derives from :class:`StrictBody`:

- ``extra="forbid"``: an unknown field is a 422, so a misspelt option never silently does
  nothing and a body cannot smuggle a field such as ``identity_id``;
- ``strict=True``: a JSON value must already have the field's type (an integer for ``int``;
  an integer or a float for ``float``; a string for ``str``; an array for a list);
- ``allow_inf_nan=False``: Python's JSON parser accepts ``NaN`` and ``Infinity``, which no
  amount or bound may be.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from nova.domain.identity_format import is_subject


class StrictBody(BaseModel):
    """A request body: unknown fields, coercions and non-finite numbers are 422."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _subject(value: str) -> str:
    if not is_subject(value):
        raise ValueError(
            "must be 1 to 128 printable characters (no control characters), not space-padded"
        )
    return value


# A user id as tokens carry it in ``sub`` (``nova.domain.identity_format``).
SubjectStr = Annotated[str, AfterValidator(_subject)]
