"""Risk cues: the things in a prompt that make an instruction about money or other people.

An amount with a currency, an IBAN, a card number, an e-mail address, a phone number, a public
channel: none of them is an action, but each tells lane A what an ambiguous verb acts on
("get 300 € to Marie" moves money; "let bob@example.com know" sends) and each raises the risk
of an instruction it sits in. They are found before tokenisation and become one entity token
each, so "1 200,50 €" is one AMOUNT and not three numbers.

Shapes are deliberately loose: an IBAN with a wrong checksum in an order is still a cue (the
user may have mistyped it; the approver will see it), so validity checks belong to masking
(``nova.domain.detections``), not here. Every pattern is linear: bounded repetitions, no
nested quantifiers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

CueKind = Literal["AMOUNT", "IBAN", "CARD", "EMAIL", "PHONE", "URL", "HANDLE", "CHANNEL", "MASK"]


@dataclass(frozen=True, slots=True)
class Cue:
    kind: CueKind
    start: int
    end: int


_CURRENCY_WORDS: Final = (
    r"(?:eur|euros?|usd|dollars?|bucks|quid|gbp|pounds?|chf|francs?|yen|jpy|cad|aud|sek|nok|dkk|"
    r"pln|zloty|zlotys|btc|bitcoins?|eth|balles|boules|centimes|cents?|k€|keur|ke|kusd|pesos?|"
    r"reais|real|lire|roubles?|rubles?|rupees?|rupaye|rupiah|shilingi|shillings?|dong|"
    r"dirhams?|grand|forints?|cfa|fcfa|xof|kc|zl)"
)
_NUMBER: Final = r"\d{1,3}(?:[ \u00a0.,'’]\d{3}){0,4}(?:[.,]\d{1,2})?|\d{1,12}(?:[.,]\d{1,2})?"
_NUMBER_WORDS: Final = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
    r"forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|a\s+hundred|a\s+thousand|"
    r"un|une|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|quinze|vingt|trente|"
    r"quarante|cinquante|soixante|septante|huitante|octante|nonante|cent|cents|mille|million|"
    r"millions)"
)

_PATTERNS: Final[tuple[tuple[CueKind, re.Pattern[str]], ...]] = (
    ("MASK", re.compile(r"\[(?:IBAN|CARD|EMAIL|PHONE|NATIONAL_ID)_\d{1,4}\]")),
    ("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']{1,2000}", re.IGNORECASE)),
    (
        "EMAIL",
        re.compile(r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b"),
    ),
    (
        "IBAN",
        re.compile(
            r"\b[A-Z]{2}\d{2}(?:[ .-]?[A-Z0-9]{4}){2,7}(?:[ .-]?[A-Z0-9]{1,4})?\b", re.IGNORECASE
        ),
    ),
    ("CARD", re.compile(r"(?<!\d)\d{4}(?:[ .-]?\d{4}){2}[ .-]?\d{1,7}(?!\d)")),
    (
        "AMOUNT",
        re.compile(
            r"(?:[€$£¥₹₩₽]|\b(?:eur|usd|gbp|chf|cad|aud|jpy)\s?)\s?(?:" + _NUMBER + r")"
            r"(?:\s?[kKmM]\b)?"
            r"|(?<![\w.,])(?:" + _NUMBER + r")\s?(?:[kKmM]\s?)?(?:[€$£¥₹₩₽]|\b" + _CURRENCY_WORDS
            + r"\b)"
            r"|\b" + _NUMBER_WORDS + r"(?:[\s-]+(?:" + _NUMBER_WORDS + r"|and|et)){0,4}\s+"
            + _CURRENCY_WORDS + r"\b",
            re.IGNORECASE,
        ),
    ),
    (
        "PHONE",
        re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(0\)[ .-]?)?0?\d(?:[ .-]?\d{2}){4}(?!\d)"),
    ),
    ("PHONE", re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\d{2,4}){2,5}(?!\d)")),
    ("HANDLE", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{2,30}\b")),
    ("CHANNEL", re.compile(r"(?<![\w#&])#[A-Za-z][A-Za-z0-9_-]{1,60}")),
)

def find_cues(text: str) -> tuple[Cue, ...]:
    """Non-overlapping cues in ``text``, earlier patterns first (an IBAN is not also a phone)."""
    taken = bytearray(len(text))  # 1 where an earlier cue sits: linear, however many cues
    found: list[Cue] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if kind == "IBAN" and sum(c.isdigit() for c in m.group(0)) < 8:
                continue  # "FR12 ABCD EFGH" style words are not IBANs
            if taken[start] or taken[end - 1] or any(taken[start:end]):
                continue
            taken[start:end] = b"\x01" * (end - start)
            found.append(Cue(kind, start, end))
    found.sort(key=lambda c: c.start)
    return tuple(found)


# Cue kinds by what they say about an instruction.
MONEY_CUES: Final = frozenset({"AMOUNT", "IBAN", "CARD"})
RECIPIENT_CUES: Final = frozenset({"EMAIL", "PHONE", "HANDLE", "CHANNEL"})
