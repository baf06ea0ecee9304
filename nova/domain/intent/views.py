"""The readings of one prompt that lane A classifies: as written, and with each disguise undone.

People who want a risky action to run unheld write it so that a keyword match misses it:
look-alike letters from other scripts ("pay" written with a Cyrillic a, U+0430), zero-width
or spacing tricks ("d e l e t e", "de\u200blete"), leetspeak ("d3l3t3"), or the instruction
itself hidden in base64, hex, percent-encoding, ROT13 or backwards. Rather than teach every
rule each disguise, lane A classifies several *views* of the text and keeps the riskiest
reading; a view that only exists because a disguise was undone says so in the reasons ("after
undoing leetspeak").

Every view is computed in time linear in the text, and decoding is bounded (number of
payloads, their size, one level of nesting), so a 100,000-character prompt costs a few views,
not a combinatorial search.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

from nova.domain.textnorm import fold

MAX_PAYLOADS: Final = 8  # encoded payloads decoded per view
MAX_PAYLOAD_CHARS: Final = 20_000


@dataclass(frozen=True, slots=True)
class View:
    """One reading of the prompt. ``disguise`` names what was undone (None: as written);
    ``hidden`` is True for text that was encoded (base64, hex, ...) in the prompt."""

    text: str
    disguise: str | None = None
    hidden: bool = False


# Format characters (zero-width, bidi overrides, soft hyphen, word joiner...) carry no letters.
_FORMAT_CATEGORIES: Final = frozenset({"Cf"})
_KEEP_MARKS: Final = frozenset("\u0300\u0301\u0302\u0308\u0327\u0303")  # French/Spanish accents
_ALPHABETS: Final = ("LATIN", "GREEK", "CYRILLIC", "ARABIC", "HEBREW")
_PUNCT: Final = str.maketrans(
    {
        "\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"',
        "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
        "\u00a0": " ", "\u202f": " ", "\u2009": " ",
    }
)  # fmt: skip


def clean(text: str) -> str:
    """Compatibility forms folded (NFKC: full-width, ligatures, math letters), format
    characters and stray combining marks removed, quotes and dashes unified. Case and the
    accents French uses are kept (the lemmatiser needs them)."""
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _FORMAT_CATEGORIES)
    text = unicodedata.normalize("NFKC", text)
    decomposed = unicodedata.normalize("NFD", text)
    if any(unicodedata.combining(c) and c not in _KEEP_MARKS for c in decomposed):
        # Marks stacked on Latin, Greek or Cyrillic letters are disguises (d̶e̶l̶e̶t̶e̶), and
        # Arabic or Hebrew vowel points are optional (حوّل is حول); in Thai or Hindi the
        # marks are vowels, part of the word, and stay.
        kept: list[str] = []
        base_is_alphabet = False
        for c in decomposed:
            if not unicodedata.combining(c):
                base_is_alphabet = unicodedata.name(c, "").startswith(_ALPHABETS)
                kept.append(c)
            elif c in _KEEP_MARKS or not base_is_alphabet:
                kept.append(c)
        text = unicodedata.normalize("NFC", "".join(kept))
    return text.translate(_PUNCT)


@cache
def _homoglyph_table() -> dict[int, str]:
    """Non-Latin characters that look like an ASCII letter or digit, from Unicode's
    confusables data (shipped by ``confusable_homoglyphs``), mapped to that character."""
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    table: dict[int, str] = {}
    for char, entries in data.items():
        if len(char) != 1 or char.isascii():
            continue
        try:
            if unicodedata.name(char).startswith("LATIN"):
                continue  # é, ñ, ß are letters of French and its neighbours, not disguises
        except ValueError:
            continue
        for entry in entries:
            target = entry["c"]
            if len(target) == 1 and target.isascii() and target.isalnum():
                table[ord(char)] = target
                break
    return table


def unhomoglyph(text: str) -> str:
    """Look-alike letters of other scripts (Cyrillic a U+0430, Greek omicron, ...) replaced by
    Latin ones."""
    return text.translate(_homoglyph_table())


# "d e l e t e", "p.a.y", "s-e-n-d", "d_e_l_e_t_e": three or more single letters joined by one
# repeated separator.
_SPACED = re.compile(r"(?<![^\W\d_])(?:[^\W\d_]([ .\-_*·|/+~])){2,40}[^\W\d_](?![^\W\d_])")


def unspace(text: str) -> str:
    """Letters spelled out one by one, joined back into words."""

    def join(m: re.Match[str]) -> str:
        sep = m.group(1)
        parts = m.group(0).split(sep)
        return "".join(parts) if all(len(p) == 1 for p in parts) else m.group(0)

    return _SPACED.sub(join, text)


_LEET: Final = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s",
     "!": "i", "|": "l", "€": "e"}
)  # fmt: skip
_LEET_L: Final = str.maketrans({"1": "l", "|": "l", "!": "l"})
_LEET_WORD = re.compile(
    r"(?<![\w@$!|€])[\w@$!|€]*[^\W\d_][\w@$!|€]*(?![\w@$!|€])"
)
_LEET_CHARS: Final = frozenset("0134578@$!|€")


def unleet(text: str, one_as: str = "i") -> str:
    """Digits and symbols standing for letters inside words ("d3l3t3" → "delete"), but never
    in numbers, amounts or addresses. ``one_as`` reads "1" as "i" or as "l"."""

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        if not (_LEET_CHARS & set(word)):
            return word
        if "@" in word[1:] and text[m.end() : m.end() + 1] == ".":
            return word  # an e-mail address: bob@example.com
        letters = sum(c.isalpha() for c in word)
        if letters < 2 or word.rstrip("€$").isdigit():
            return word
        if word.upper() == word and sum(c.isdigit() for c in word) >= letters:
            return word  # "BE71", "Q3", "4B729": codes and IBAN prefixes, not leetspeak
        if one_as == "l":
            word = word.translate(_LEET_L)
        return word.translate(_LEET)

    return _LEET_WORD.sub(fix, text)


# -- hidden payloads ----------------------------------------------------------------------------
_B64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,20000}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = re.compile(
    r"(?<![0-9A-Fa-f])(?:0x)?(?:[0-9A-Fa-f]{2}[ :]?){6,10000}(?![0-9A-Fa-f])"
    r"|(?:\\x[0-9A-Fa-f]{2}){4,10000}"
)
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2}[^%\s]{0,3}){3,5000}")
_ROT13_HINT = re.compile(r"\brot[\s-]?13\b|\bcaesar\b|\bcesar\b", re.IGNORECASE)
_REVERSE_HINT = re.compile(
    r"\bbackwards?\b|\breversed?\b|\bin reverse\b|\ba l'envers\b|\bà l'envers\b|\binvers[ée]e?s?\b|"
    r"\bmirror(?:ed)?\b",
    re.IGNORECASE,
)


def _readable(raw: bytes) -> str | None:
    """The payload as text when it is mostly letters and spaces (an instruction, not binary)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < 4:
        return None
    printable = sum(c.isprintable() or c in "\n\t" for c in text)
    plain = sum(c.isalnum() or c in " .,;:!?'-€$£@/()" for c in text)
    words = re.findall(r"[^\W\d_]{2,}", text)
    if printable < 0.97 * len(text) or plain < 0.85 * len(text) or len(words) < 2:
        return None
    return text


def _b64(candidate: str) -> str | None:
    if not (any(c.isdigit() for c in candidate) or candidate.endswith("=") or (
        any(c.isupper() for c in candidate) and any(c.islower() for c in candidate)
    )):
        return None
    body = candidate.rstrip("=")
    padded = body + "=" * (-len(body) % 4)
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            text = _readable(decoder(padded))
        except (binascii.Error, ValueError):
            continue
        if text is not None:
            return text
    return None


def _hex(candidate: str) -> str | None:
    digits = re.sub(r"0x|\\x|[ :]", "", candidate)
    if len(digits) % 2:
        return None
    try:
        return _readable(bytes.fromhex(digits))
    except ValueError:
        return None


def decoded_payloads(text: str) -> list[tuple[str, str]]:
    """(encoding, decoded text) for each readable payload hidden in ``text``, bounded."""
    found: list[tuple[str, str]] = []
    for name, pattern, decode in (
        ("base64", _B64, _b64),
        ("hex", _HEX, _hex),
    ):
        for m in pattern.finditer(text):
            if len(found) >= MAX_PAYLOADS:
                return found
            decoded = decode(m.group(0)[:MAX_PAYLOAD_CHARS])
            if decoded is not None:
                found.append((name, decoded))
    for m in _PERCENT.finditer(text):
        if len(found) >= MAX_PAYLOADS:
            break
        decoded = urllib.parse.unquote(m.group(0)[:MAX_PAYLOAD_CHARS])
        if decoded != m.group(0) and " " in decoded:
            found.append(("percent-encoding", decoded))
    return found


_PIECES = re.compile(
    r"[\"'«“]?([^\W\d_]{1,12})[\"'»”]?(?:\s?\+\s?[\"'«“]?([^\W\d_]{1,12})[\"'»”]?){1,6}"
)


def joined(text: str) -> str:
    """Words built from pieces ("'de' + 'lete'", "p" + "ay") written whole."""

    def join(m: re.Match[str]) -> str:
        pieces = re.findall(r"[^\W\d_]{1,12}", m.group(0))
        return "".join(pieces)

    return _PIECES.sub(join, text) if "+" in text else text


_LETTERS = re.compile(r"[^\W\d_]{1,12}")


def fused(text: str, risky_words: frozenset[str]) -> str:
    """Two pieces that make a risky verb when joined ("de lete", "sup primer"): each pair of
    neighbouring words separated by one space is tried, left to right, once."""
    if not risky_words:
        return text
    words = list(_LETTERS.finditer(text))
    out: list[str] = []
    cursor = 0
    n = 0
    while n + 1 < len(words):
        a, b = words[n], words[n + 1]
        if text[a.end() : b.start()] == " " and (a.group(0) + b.group(0)).lower() in risky_words:
            out.append(text[cursor : a.start()])
            out.append(a.group(0) + b.group(0))
            cursor = b.end()
            n += 2
            continue
        n += 1
    out.append(text[cursor:])
    return "".join(out)


def _reversed_words_hint(text: str, words: frozenset[str]) -> bool:
    return any(w[::-1] in words for w in re.findall(r"[^\W\d_]{4,}", text.lower()))


LONG_TEXT: Final = 4_000  # beyond this, a disguise worn by part of a text is undone there only
_SENTENCES: Final = re.compile(r"[^.!?\n]*(?:[.!?\n]+|$)")
_CHUNK: Final = re.compile(r"\S+")


@cache
def _known(word: str) -> bool:
    import simplemma

    return bool(simplemma.is_known(word, lang="en") or simplemma.is_known(word, lang="fr"))


def _rot13(word: str) -> str:
    return codecs.encode(word, "rot13")


def _reverse(word: str) -> str:
    return word[::-1]


def _undone_runs(
    text: str, undo: Callable[[str], str], risky_words: frozenset[str], reverse_order: bool
) -> str:
    """In a long text, the runs of words that read as words once ``undo`` is applied (and not
    as written) and hold a risky verb, each undone, one per line. A prompt that wears a
    disguise in one sentence keeps the others as written: undoing the whole text would turn
    them into gibberish that orders nothing, glued to the disguised order, at the price of
    reading the whole prompt again."""
    out: list[str] = []
    run: list[str] = []
    risky = False

    def flush() -> None:
        if run and risky:
            pieces = [undo(w) for w in run]
            out.append(" ".join(reversed(pieces) if reverse_order else pieces))

    for m in _CHUNK.finditer(text):
        chunk = m.group(0)
        letters = "".join(c for c in chunk if c.isalpha()).lower()
        if len(letters) <= 2:
            if run:
                run.append(chunk)
            continue
        undone = undo(letters)
        if fold(undone) in risky_words:
            run.append(chunk)
            risky = True
        elif _known(undone) and (run or not _known(letters)):
            run.append(chunk)  # a run starts at a word that means nothing as written
        else:
            flush()
            run, risky = [], False
    flush()
    return "\n".join(out)


def _undone(
    text: str, undo: Callable[[str], str], risky_words: frozenset[str], reverse_order: bool
) -> str:
    """``text`` with a disguise undone: whole when short, only where it is worn when long."""
    if len(text) > LONG_TEXT and risky_words:
        return _undone_runs(text, undo, risky_words, reverse_order)
    if reverse_order or undo is _rot13:
        return undo(text)  # the text backwards, or ROT13, as a whole
    return " ".join(undo(w) for w in text.split())


def sentences(text: str) -> list[str]:
    """``text`` cut after each run of sentence ends or line breaks (the pieces join back to
    it)."""
    return [m.group(0) for m in _SENTENCES.finditer(text) if m.group(0)]


def changed_sentences(views: Sequence[View]) -> Iterator[str]:
    """The text each view adds to the ones before it: a short view whole, a long one only in
    the sentences no earlier view holds. Undoing one disguise in a long prompt changes a few
    sentences; scanning the unchanged rest again finds nothing new."""
    known: set[str] = set()
    for view in views:
        if len(view.text) <= LONG_TEXT:
            yield view.text
            continue
        pieces = sentences(view.text)
        fresh = [p for p in pieces if p not in known]
        known.update(pieces)
        if fresh:
            yield "".join(fresh)


def views(text: str, risky_words: frozenset[str] = frozenset()) -> tuple[View, ...]:
    """Every reading of ``text`` worth classifying: as written (cleaned), then each disguise
    undone, then hidden payloads decoded (one level of nesting). Identical readings are kept
    once. ``risky_words`` (folded verb forms) lets a backwards-written order be noticed
    without a hint such as "read this backwards"."""
    base = clean(text)
    out: list[View] = [View(base)]
    seen = {base}

    def add(candidate: str, disguise: str, hidden: bool = False) -> None:
        if candidate not in seen:
            seen.add(candidate)
            out.append(View(candidate, disguise, hidden))

    homo = unhomoglyph(base)
    add(homo, "look-alike letters")
    spaced = unspace(homo)
    add(spaced, "spaced-out letters")
    add(unleet(spaced), "leetspeak")
    add(unleet(spaced, one_as="l"), "leetspeak")
    add(joined(homo), "a word built from pieces")
    add(fused(homo, risky_words), "a word split in two")
    if _ROT13_HINT.search(base):
        add(_undone(base, _rot13, risky_words, reverse_order=False), "ROT13", hidden=True)
    if _REVERSE_HINT.search(base) or _reversed_words_hint(base, risky_words):
        add(_undone(base, _reverse, risky_words, reverse_order=True), "text written backwards",
            hidden=True)
        add(_undone(base, _reverse, risky_words, reverse_order=False), "words written backwards",
            hidden=True)
    for layer in range(2):  # a payload may itself hold one more encoded payload
        for view in list(out):
            if layer and not view.hidden:
                continue
            for name, decoded in decoded_payloads(view.text):
                add(clean(decoded), f"decoded from {name}", hidden=True)
    return tuple(out)
