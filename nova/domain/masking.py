"""Masking: personal and financial identifiers never reach a provider, yet the answer can use them.

A request to pay an IBAN is legitimate; sending the IBAN to a third-party model is not needed
to draft the transfer, and it cannot be taken back once sent. So before a provider sees the
text, every identifier found by ``scan_identifiers`` (IBAN, card number, e-mail address, phone
number, national identifier) in the prompt and in each context item is replaced by a
placeholder, and the answer's placeholders are put back afterwards:

* **Stable placeholders.** ``[IBAN_1]``, ``[CARD_1]``, ``[EMAIL_1]``, ``[PHONE_1]``,
  ``[NATIONAL_ID_1]``. One value gets one placeholder in every text of the request, compared in
  canonical form (``canonical_value``: IBAN compact uppercase, card digits, e-mail lowercase,
  phone in E.164 where the country is plain), so "FR76 3000 ..." in the prompt and
  "fr7630006..." in a thread message are one ``[IBAN_1]`` and the model can say "pay [IBAN_1]"
  and mean the one the user meant. Numbers follow first occurrence, per kind.
* **No collisions.** A placeholder that already occurs literally in the input (a user quoting a
  previous masked answer, or someone planting ``[IBAN_1]`` to get a real IBAN substituted into
  an answer) is never handed out: numbering skips to the next free number, and ``unmask``
  replaces only the placeholders this masking created.
* **Who sees what.** The provider sees placeholders only. The approver at a checkpoint sees the
  original request (lane D keeps it); ``Mask.value`` is what an action executes with.

Credentials are not masked: governance refuses a request that carries one. ``redact_credentials``
exists for logs, where a credential must not appear either.

Pure functions on immutable records: no I/O, so lanes can mask and unmask anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from nova.domain.detections import (
    IDENTIFIER_KINDS,
    IdentifierKind,
    canonical_value,
    scan_credentials,
    scan_identifiers,
)
from nova.errors import ProcessingError

PLACEHOLDER_LABELS: Final[dict[IdentifierKind, str]] = {
    "iban": "IBAN",
    "payment_card": "CARD",
    "email": "EMAIL",
    "phone": "PHONE",
    "national_id": "NATIONAL_ID",
}
_KINDS: Final[dict[str, IdentifierKind]] = {kind: kind for kind in IDENTIFIER_KINDS}

# Any string shaped like one of our placeholders, literal or ours.
PLACEHOLDER_PATTERN: Final = re.compile(
    r"\[(?:IBAN|CARD|EMAIL|PHONE|NATIONAL_ID)_[1-9][0-9]{0,8}\]"
)


@dataclass(frozen=True, slots=True)
class Mask:
    """One masked identifier.

    ``value`` is the canonical form (what two spellings of one value share, and what an action
    executes with); ``written`` is the value as it first appeared, which ``unmask`` restores so
    the user reads their own spelling back. Neither is in the repr: a mask logged by mistake
    must not leak what it hides.
    """

    placeholder: str
    kind: IdentifierKind
    value: str = field(repr=False)
    written: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class MaskResult:
    """The masked texts, in input order, and every mask used, in order of first occurrence."""

    texts: tuple[str, ...]
    masks: tuple[Mask, ...]

    def mask_for(self, placeholder: str) -> Mask | None:
        """The mask behind ``placeholder``, or None when this masking did not create it."""
        return next((m for m in self.masks if m.placeholder == placeholder), None)


_MAX_PASSES: Final = 8


class _Numbering:
    """Placeholders handed out so far, by value, and the last number used per label."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.last = dict.fromkeys(PLACEHOLDER_LABELS.values(), 0)
        self.by_value: dict[tuple[IdentifierKind, str], Mask] = {}

    def mask_for(self, kind: IdentifierKind, written: str) -> Mask:
        key = (kind, canonical_value(kind, written))
        mask = self.by_value.get(key)
        if mask is None:
            label = PLACEHOLDER_LABELS[kind]
            number = self.last[label] + 1
            while f"[{label}_{number}]" in self.taken:
                number += 1
            self.last[label] = number
            mask = Mask(f"[{label}_{number}]", kind, key[1], written)
            self.by_value[key] = mask
        return mask


def _mask_once(text: str, numbering: _Numbering) -> tuple[str, bool]:
    parts: list[str] = []
    cursor = 0
    for detection in scan_identifiers(text):
        start, end = detection.span
        mask = numbering.mask_for(_KINDS[detection.kind], text[start:end])
        parts.append(text[cursor:start])
        parts.append(mask.placeholder)
        cursor = end
    parts.append(text[cursor:])
    return "".join(parts), cursor > 0


def mask_texts(texts: Sequence[str]) -> MaskResult:
    """Replace every identifier in ``texts`` by its placeholder, one placeholder per value.

    ``texts`` are the prompt and each context item, masked together so a value has the same
    placeholder in all of them. A masked text is scanned again until nothing is found: taking
    a value out changes what surrounds its neighbours, and whatever then reads as an identifier
    is masked too, so none is left for the provider. (A pass only replaces characters the user
    typed, never a placeholder, so passes converge; ``ProcessingError`` if they do not.)
    """
    if isinstance(texts, str):
        raise TypeError("mask_texts takes a sequence of texts, not a single string")
    taken = {m.group(0) for text in texts for m in PLACEHOLDER_PATTERN.finditer(text)}
    numbering = _Numbering(taken)
    masked: list[str] = []
    for text in texts:
        current, changed = _mask_once(text, numbering)
        passes = 1
        while changed:
            if passes == _MAX_PASSES:
                raise ProcessingError("masking did not converge; refusing to send the text")
            current, changed = _mask_once(current, numbering)
            passes += 1
        masked.append(current)
    return MaskResult(texts=tuple(masked), masks=tuple(numbering.by_value.values()))


def unmask(text: str, masks: Sequence[Mask]) -> str:
    """``text`` (a provider's answer) with each placeholder of ``masks`` restored.

    One pass: a restored value is never itself searched for placeholders, and a placeholder-
    shaped string that is not in ``masks`` stays as it is.
    """
    written = {m.placeholder: m.written for m in masks}
    return PLACEHOLDER_PATTERN.sub(lambda m: written.get(m.group(0), m.group(0)), text)


def redact_credentials(text: str) -> str:
    """``text`` with each credential replaced by ``[REDACTED:<kind>]``, for logs."""
    parts: list[str] = []
    cursor = 0
    for detection in scan_credentials(text):
        start, end = detection.span
        parts.append(text[cursor:start])
        parts.append(f"[REDACTED:{detection.kind}]")
        cursor = end
    parts.append(text[cursor:])
    return "".join(parts)
