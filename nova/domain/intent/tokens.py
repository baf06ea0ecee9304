"""Tokens of one view of a prompt, grouped into clauses.

A token keeps its lowercase surface with accents ("payé", the participle) and its folded key
("paye", which is also the imperative), plus whether the user capitalised it (a name, when it
is not the first word). Cues (amounts, IBANs, addresses) are single tokens whose key is the
cue's tag ("<amount>"). French elisions and clitics are split off ("l'envoyer" → "l'",
"envoyer"; "envoie-le" → "envoie", "le") and English contractions expanded ("don't" → "do",
"n't"), because negation and mood live in those pieces.

Clauses: sentences split at strong punctuation and line breaks, then at commas, dashes and
coordinating conjunctions ("and", "then", "but", "et", "puis", "mais"), because each of those
can start a new order: "summarise the thread, then delete it". ``origin`` records how a clause
began, since only a sentence's first clause can be a bare nominal order ("Virement de 200 € à
Marie").
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from nova.domain.intent.cues import Cue, CueKind, find_cues
from nova.domain.textnorm import fold

_fold = lru_cache(maxsize=65_536)(fold)  # words repeat across prompts, views and lanes


@dataclass(frozen=True, slots=True)
class Tok:
    s: str  # lowercase surface, accents kept
    k: str  # folded key
    cue: CueKind | None = None
    cap: bool = False
    code: bool = False  # inside `backticks` or a ``` block: code, not words addressed to Nova


Origin = Literal["sentence", "comma", "colon", "conjunction"]


@dataclass(frozen=True, slots=True)
class Clause:
    toks: tuple[Tok, ...]
    origin: Origin
    question: bool  # its sentence ends with "?"
    sentence: int  # index of its sentence


_WORD = re.compile(
    r"[^\W\d_]+(?:[-'/][^\W\d_]+)*'?|\d+(?:[.,:/]\d+)*|\n|[^\w\s]",
)
# Code written inline: snake_case names, dotted calls, calls with parentheses (send_email(),
# os.remove, requests.delete(url)). Their words are code, not orders.
_IDENTIFIER = re.compile(
    r"\b[A-Za-z][A-Za-z0-9]{0,40}(?:_[A-Za-z0-9]{1,40}){1,6}\b(?:\(\))?"
    r"|\b[A-Za-z_][A-Za-z0-9_]{0,40}(?:\.[A-Za-z_][A-Za-z0-9_]{0,40}){1,4}\(?"
    r"|\b[A-Za-z_][A-Za-z0-9_]{0,40}\([^()\n]{0,80}\)"
)
# Texting French and English shorthands, spelled out so frames and verbs recognise them.
_SHORTHAND: Final = {
    "px": ["peux"], "pe": ["peux"], "peu": ["peux"], "pk": ["pourquoi"], "pq": ["pourquoi"],
    "jsuis": ["je", "suis"], "chui": ["je", "suis"], "jpeux": ["je", "peux"],
    "jveux": ["je", "veux"], "jdois": ["je", "dois"], "jvais": ["je", "vais"],
    "stp": ["stp"], "svp": ["svp"], "mtn": ["maintenant"], "auj": ["aujourd'hui"],
    "dmn": ["demain"], "qd": ["quand"], "pr": ["pour"], "ds": ["dans"], "tt": ["tout"],
    "msg": ["message"], "mess": ["message"], "u": ["you"], "ur": ["your"], "pls": ["please"],
    "plz": ["please"], "thx": ["thanks"], "asap": ["asap"], "tmrw": ["tomorrow"],
    "rn": ["now"], "bc": ["because"], "w/": ["with"],
}
_ELISIONS: Final = ("jusqu'", "lorsqu'", "puisqu'", "qu'", "l'", "d'", "j'", "n'", "m'", "t'",
                    "s'", "c'")  # fmt: skip
_EN_CONTRACTIONS: Final = {
    "n't": "n't", "'ll": "will", "'d": "would", "'re": "are", "'ve": "have", "'m": "am",
    "'s": "'s",
}  # fmt: skip
_NEG_BARE: Final = {
    "dont": "do", "doesnt": "does", "didnt": "did", "cant": "can", "wont": "will",
    "shouldnt": "should", "isnt": "is", "arent": "are", "wasnt": "was", "havent": "have",
    "hasnt": "has", "couldnt": "could", "wouldnt": "would", "mustnt": "must",
}  # fmt: skip
_CLITICS: Final = frozenset(
    "moi toi le la les lui leur nous vous y en tu il elle on je ils elles t-il t-elle t-on "
    "ce".split()
)
_KEEP_WHOLE: Final = frozenset({"aujourd'hui", "quelqu'un", "presqu'ile", "o'clock"})
_COMPOUNDS: Final = {"e-mail": "email", "e-mails": "emails", "top-up": "topup", "re-send": "resend",
                     "cc'd": "cc", "bcc'd": "bcc"}  # fmt: skip

_STRONG: Final = frozenset(".!?;\n")
_SOFT: Final = frozenset({",", "-", ":", "(", ")", "/", "|", "*", "•", "…", "→", ">"})
_CONJUNCTIONS: Final = frozenset(
    "and then but also et puis ensuite mais ainsi apres after afterwards &".split()
)


@lru_cache(maxsize=65_536)
def _split(word: str) -> tuple[str, ...]:
    return tuple(_split_word(word))


def _split_word(word: str) -> list[str]:
    """Elisions, clitics and contractions as separate pieces."""
    if word in _KEEP_WHOLE:
        return [word]
    if word in _SHORTHAND:
        return list(_SHORTHAND[word])
    if word in _COMPOUNDS:
        return [_COMPOUNDS[word]]
    if word in _NEG_BARE:
        return [_NEG_BARE[word], "n't"]
    for suffix, expanded in _EN_CONTRACTIONS.items():
        if word.endswith(suffix) and len(word) > len(suffix):
            stem = word[: -len(suffix)]
            if suffix == "n't":
                stem = {"ca": "can", "wo": "will", "sha": "shall"}.get(stem, stem)
                return [stem, "n't"]
            if stem == "let" and suffix == "'s":
                return ["let", "us"]
            return [*_split_word(stem), expanded]
    for elision in _ELISIONS:
        if word.startswith(elision) and len(word) > len(elision):
            return [elision, *_split_word(word[len(elision) :])]
    if "-" in word:
        parts = word.split("-")
        # French imperative clitics: envoie-le, occupe-toi, peux-tu, vas-y, dis-moi.
        if len(parts) >= 2 and all(p in _CLITICS or p == "t" for p in parts[1:]):
            return [parts[0], *(p for p in parts[1:] if p != "t")]
    if word.endswith("'"):
        return [word[:-1], '"'] if len(word) > 1 else ['"']  # a quote mark stays a quote
    return [word]


@lru_cache(maxsize=65_536)  # words repeat: each distinct one is split and folded once
def _word_tokens(raw: str, code: bool) -> tuple[Tok, ...]:
    """The tokens of one written word; only the first piece keeps its capital."""
    cap = raw[:1].isupper()
    out: list[Tok] = []
    for piece in _split(raw.lower()):
        out.append(Tok(piece, _fold(piece) if piece != "\n" else "\n", None, cap, code))
        cap = False
    return tuple(out)


def tokenize(text: str) -> list[Tok]:
    """Tokens of ``text`` (one view), with cues as single tokens."""
    cues = find_cues(text)
    out: list[Tok] = []
    cursor = 0
    code = False
    identifiers = [m.span() for m in _IDENTIFIER.finditer(text)]  # sorted, disjoint
    starts = [s for s, _ in identifiers]
    for cue in (*cues, Cue("MASK", len(text), len(text))):
        segment = text[cursor : cue.start]
        for m in _WORD.finditer(segment):
            raw = m.group(0)
            if raw == "`":
                code = not code
                continue
            at = cursor + m.start()
            k = bisect_right(starts, at) - 1
            in_identifier = k >= 0 and at < identifiers[k][1]
            out.extend(_word_tokens(raw, code or in_identifier))
        if cue.end > cue.start:
            kind = cue.kind
            if kind == "MASK":  # a placeholder left by masking: [IBAN_1] is an IBAN
                name = text[cue.start + 1 : cue.end].rsplit("_", 1)[0]
                kind = {"IBAN": "IBAN", "CARD": "CARD", "EMAIL": "EMAIL", "PHONE": "PHONE"}.get(
                    name, "MASK"
                )  # type: ignore[assignment]
            tag = f"<{kind.lower()}>"
            out.append(Tok(tag, tag, kind, False))
        cursor = cue.end
    return out


def _ellipses(tokens: list[Tok]) -> list[Tok]:
    """"just... disappeared": a run of dots (or …) is a pause, not the end of a sentence."""
    out: list[Tok] = []
    for tok in tokens:
        if tok.k in (".", "…") and out and out[-1].k in (".", "…", "<pause>"):
            if out[-1].k != "<pause>":
                out[-1] = Tok("…", "<pause>")
            continue
        out.append(tok)
    return [t for t in out if t.k != "<pause>"]


def clauses(tokens: list[Tok]) -> list[Clause]:
    """Clauses of a token list (see the module docstring)."""
    sentences: list[list[Tok]] = []
    questions: list[bool] = []
    current: list[Tok] = []
    tokens = _ellipses(tokens)
    for tok in tokens:
        if tok.k in _STRONG:
            if current:
                sentences.append(current)
                questions.append(tok.k == "?")
            elif tok.k == "?" and questions:
                questions[-1] = True
            current = []
        else:
            current.append(tok)
    if current:
        sentences.append(current)
        questions.append(False)

    out: list[Clause] = []
    for index, (sentence, question) in enumerate(zip(sentences, questions, strict=True)):
        origin: Origin = "sentence"
        part: list[Tok] = []
        for tok in sentence:
            if tok.cue is None and (tok.k in _SOFT or tok.k in _CONJUNCTIONS):
                if part:
                    out.append(Clause(tuple(part), origin, question, index))
                    part = []
                    origin = (
                        "colon" if tok.k == ":" else "comma" if tok.k in _SOFT else "conjunction"
                    )
                elif tok.k in _CONJUNCTIONS and origin == "sentence" and out:
                    origin = "conjunction"
                continue
            part.append(tok)
        if part:
            out.append(Clause(tuple(part), origin, question, index))
    return out
