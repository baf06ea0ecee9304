"""One text normalisation shared by every keyword and phrase table.

Intent rules and built-in governance detections both match against user text that may arrive
in French or English, with or without accents, with typographic apostrophes, or with
zero-width characters slipped in to defeat a naive substring match. Normalising once, the same
way, keeps the tables small (written lowercase, without accents) and makes a rule that matches
in one module match in the other.
"""

from __future__ import annotations

import re
import unicodedata

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_APOSTROPHES = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "œ": "oe", "Œ": "oe", "æ": "ae",
     "Æ": "ae"}
)
_SPACES = re.compile(r"\s+")


_last_fold: tuple[str, str] = ("", "")


def fold(text: str) -> str:
    """Casefold, strip accents and zero-width characters, unify apostrophes and whitespace,
    spell out the ligatures French writes as letters ("œil" is "oeil").

    NFKD first so that compatibility forms (full-width letters, ligatures) and accented letters
    decompose; the combining marks are then dropped, so "Résumer" and "resumer" are one word.

    The last text folded is remembered (by identity, so the check costs nothing): lane D folds
    the same prompt once per rule with text patterns, and a 100,000-character prompt takes
    tens of milliseconds to fold, which a hundred rules must not multiply.
    """
    global _last_fold
    last_text, last_folded = _last_fold
    if text is last_text:
        return last_folded
    folded = _fold(text)
    _last_fold = (text, folded)
    return folded


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_ZERO_WIDTH))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", stripped.translate(_APOSTROPHES).casefold()).strip()
