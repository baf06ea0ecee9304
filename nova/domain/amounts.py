"""The amount of money a prompt states, for rules such as "two approvers above 1,000".

Lane A already finds amounts as risk cues (``nova.domain.intent.cues``: "1 200,50 €", "$1,200",
"EUR 500", "2k€", "five hundred euros"); this module reads their value. The largest stated
amount counts, whatever its currency (rules compare numbers as written: a rule of an identity
that pays in several currencies names the smallest threshold it means).

Fail closed: an amount that is there but cannot be read as a number (spelt out in words,
"cinq cents euros") is :data:`UNREADABLE`, larger than any threshold, so a four-eyes rule
still fires. A prompt stating no amount at all gives None, which rules also treat as above
their threshold: "pay the invoice" may be for any sum.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Final

from nova.domain.intent.cues import find_cues

UNREADABLE: Final = math.inf

_DIGITS = re.compile(r"\d(?:[\d \u00a0.,'\u2019]*\d)?")
_MULTIPLIER = re.compile(r"\d\s?([kKmM])(?![a-zA-Z])|\b(k€|keur|ke|kusd|grand)\b", re.IGNORECASE)


def parse_amount(text: str) -> float:
    """The value of one amount cue's text; :data:`UNREADABLE` when it has no digits."""
    m = _DIGITS.search(text)
    if m is None:
        return UNREADABLE
    number = re.sub(r"[ \u00a0'\u2019]", "", m.group(0))
    last = max(number.rfind(","), number.rfind("."))
    if last != -1 and len(number) - last - 1 in (1, 2):  # "1.200,50", "12,5": decimals
        whole, decimals = number[:last], number[last + 1 :]
    else:  # "1,200", "1.200.000": thousands separators only
        whole, decimals = number, ""
    whole = re.sub(r"[.,]", "", whole) or "0"
    value = float(f"{whole}.{decimals or 0}")
    unit = _MULTIPLIER.search(text)
    if unit is not None:
        letter = (unit.group(1) or unit.group(2)).lower()
        value *= 1_000_000 if letter == "m" else 1_000
    return value


def stated_amount(texts: Iterable[str]) -> float | None:
    """The largest amount any of ``texts`` states; None when none states one."""
    found: float | None = None
    for text in texts:
        for cue in find_cues(text):
            if cue.kind == "AMOUNT":
                value = parse_amount(text[cue.start : cue.end])
                found = value if found is None else max(found, value)
    return found
