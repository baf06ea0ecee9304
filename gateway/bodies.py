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

One conversion is not a guess: JSON has a single number type, and JSON Schema's ``integer`` is
any number without a fractional part, so ``5000.0`` *is* the integer 5000 in the contract
(schemathesis sends it as a valid ``wait_ms``). An ``int`` field takes a whole JSON number
written with a fraction; ``5000.5``, ``"5000"`` and ``true`` stay 422.

A date-time is the other: JSON has none, so it is a string (JSON Schema's ``date-time``, RFC
3339) that must be parsed, and :data:`AwareDateTime` parses only that: a string written as a
date and a time with its offset, never a number taken for a Unix time.
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Final, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from nova.domain.identity_format import is_subject


class StrictBody(BaseModel):
    """A request body: unknown fields, coercions and non-finite numbers are 422."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers_are_integers(cls, data: Any) -> Any:
        """``5000.0`` for an ``int`` field is the integer 5000 (module docstring)."""
        if not isinstance(data, dict):
            return data
        whole = {
            name: int(value)
            for name, value in data.items()
            if type(value) is float and value.is_integer() and name in cls.model_fields
            and _takes_int(cls.model_fields[name].annotation)
        }
        return {**data, **whole} if whole else data


def _takes_int(annotation: Any) -> bool:
    """``int`` or ``int | None``, constrained or not (``Annotated[int, Field(ge=1)] | None``);
    a field that also takes a float needs no conversion."""
    union = get_origin(annotation) in (Union, types.UnionType)
    members = [get_args(m)[0] if get_origin(m) is Annotated else m
               for m in (get_args(annotation) if union else (annotation,))]
    return int in members and float not in members


def _subject(value: str) -> str:
    if not is_subject(value):
        raise ValueError(
            "must be 1 to 128 printable characters (no control characters), not space-padded"
        )
    return value


# A user id as tokens carry it in ``sub`` (``nova.domain.identity_format``).
SubjectStr = Annotated[str, AfterValidator(_subject), Field(
    min_length=1, max_length=128,
    description="1 to 128 printable characters (no control, format, private-use, unassigned or "
    "separator characters but the space), not space-padded",
)]


_DATE_TIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]")


def _date_time_text(value: Any) -> Any:
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise ValueError("must be an RFC 3339 date-time with its offset, such as "
                         "2026-12-01T09:30:00+01:00")
    return value


# A point in time a body names: RFC 3339 text with an offset (module docstring).
AwareDateTime = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_date_time_text)]
