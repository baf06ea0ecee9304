"""Lane A's reading of one prompt: every action it mentions, and whether it orders each one.

For each view (``nova.domain.intent.views``) and each clause (``nova.domain.intent.tokens``),
every word that could name an action (a verb form of ``nova.domain.intent.lexicon``, an action
noun, a cue such as an amount with a recipient) becomes a :class:`Mention` with a *mood*:

=============  ==========================================================  ===========
mood           when                                                         counts?
=============  ==========================================================  ===========
``order``      imperative or infinitive order, polite request, wish,         yes
               "you will", causative ("get it paid"), light verb + action
               noun ("make a payment"), nominal order with cues
``unsure``     a risky reading the frames cannot rule out                   yes (hold)
``question``   asked about: "how do I", "what happens if", "explain"        no
``negated``    "don't send", "sans l'envoyer" (but not "don't forget to")   no
``reported``   past or passive: "paid last month", "who deleted"            no
``content``    inside something to draft: "write an email asking to pay"    no
``statement``  someone else acts, or the user describes their own plans     no
``mentioned``  a noun that is only named: "the payment history"             no
=============  ==========================================================  ===========

The request's action is the riskiest counted mention; "when unsure between a risky and a safe
reading, hold" is the ``unsure`` mood, and risky verb defaults in the lexicon. Every mention,
counted or not, leaves a reason, so an auditor reads why "draft a reply but do not send it" ran
and "do not wait, delete it now" was held.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from itertools import pairwise
from typing import Final, Literal

from nova.domain.intent import frames as F
from nova.domain.intent.cues import MONEY_CUES, RECIPIENT_CUES
from nova.domain.intent.lexicon import (
    ACTION_NOUNS,
    CLASSES,
    CONTEXT_REFERENCES,
    PRONOUN_OBJECTS,
    RECORD_NOUNS,
    VERBS_EN,
    VERBS_FR,
    Action,
    Verb,
)
from nova.domain.intent.morphology import Form
from nova.domain.intent.tokens import Clause, Tok, clauses, tokenize
from nova.domain.intent.views import View

Mood = Literal[
    "order", "unsure", "question", "negated", "reported", "content", "statement", "mentioned"
]
COUNTED: Final[frozenset[str]] = frozenset({"order", "unsure"})
RISKY: Final[frozenset[str]] = frozenset({"SEND", "DELETE", "TRANSFER", "PAYMENT"})
_RANK: Final = {"READ": 0, "WRITE": 1, "SEND": 2, "DELETE": 3, "TRANSFER": 4, "PAYMENT": 5}
WINDOW: Final = 12  # tokens after a verb that may be its object
WISH: Final = "wished or required ("
PREPARED: Final = "prepared to be run (a payment set up)"
_PREPARED_NOUNS: Final = frozenset(
    """virement virements transfer transfers wire wires paiement paiements payment payments
    versement versements transfert transferts""".split()
)
_EXECUTE_VERBS: Final = frozenset(
    """valider valide valides validez executer execute executes executez lancer lance
    confirmer confirme envoyer envoie validate execute run submit confirm send process
    approve""".split()
)
_FUNCTION_WORDS: Final = (
    F.FILLERS | F.SUBJECTS_SELF | F.SUBJECTS_YOU | F.SUBJECTS_OTHER | F.AUX_PAST | F.AUX_PASSIVE
    | F.MODAL_ORDER | F.DETERMINERS | F.PREPOSITIONS | F.NEGATIONS | F.SKIP
    | frozenset("or ou and et but mais then if si when quand once so because as while".split())
)


def _noun_like(tok: Tok) -> bool:
    """A content word that is not a verb of the lexicon: before a verb form, it makes that
    form a noun ("the water bill", "my phone text")."""
    return tok.cue is None and tok.k not in _FUNCTION_WORDS and tok.k.replace("-", "").isalpha() \
        and not verb_entries(tok)


_QUOTES: Final = frozenset({'"', "'", "«", "»", "“", "”"})
_RUN_VERBS: Final = frozenset("run execute exec type tape lance execute executez lancez".split())


def _is_quote(toks: Sequence[Tok], i: int) -> bool:
    """The word is quoted ("the word 'delete'", « répondre à tous »): named, not used. Quoted
    means an odd number of quote marks before it in the clause and one after it."""
    before = sum(1 for t in toks[max(0, i - 8) : i] if t.k in _QUOTES)
    after = any(t.k in _QUOTES for t in toks[i + 1 : i + 8])
    return before % 2 == 1 and after


@dataclass(frozen=True, slots=True)
class Mention:
    """One action word of the prompt and how it is meant."""

    action: Action
    mood: Mood
    word: str
    why: str
    disguise: str | None = None
    hidden: bool = False
    self_wish: bool = False  # "I need to pay ...": the user's own need, maybe only context
    clause: int = -1  # index of its clause in its view

    @property
    def counted(self) -> bool:
        return self.mood in COUNTED


@dataclass(frozen=True, slots=True)
class Reading:
    """Everything lane A found in one prompt."""

    mentions: tuple[Mention, ...]
    defers_to_context: bool
    composes: bool  # a drafting verb was ordered (WRITE)


@cache
def _index() -> dict[str, tuple[tuple[Verb, Form], ...]]:
    index: dict[str, list[tuple[Verb, Form]]] = {}
    for verb in (*VERBS_EN, *VERBS_FR):
        for form_key, form in verb.forms.items():
            index.setdefault(form_key, []).append((verb, form))
        for pp in verb.participles:
            index.setdefault(pp, []).append((verb, "pp"))
    return {k: tuple(v) for k, v in index.items()}


def risky_forms() -> frozenset[str]:
    """Folded forms of verbs that can carry a risky action, of three letters or more (for
    disguised-text detection: "yap" backwards, "cnl" in ROT13)."""
    return frozenset(
        k
        for k, entries in _index().items()
        if len(k) >= 3 and any(v.kind == "action" and v.default in RISKY for v, _ in entries)
    )


def verb_entries(tok: Tok) -> tuple[tuple[Verb, Form], ...]:
    """Lexicon verbs this token can be a form of; French participles told apart by accent."""
    entries = _index().get(tok.k, ())
    if not entries and "-" in tok.k:
        entries = _index().get(tok.k.replace("-", ""), ()) or _index().get(
            tok.k.rsplit("-", 1)[1], ()
        )
    if not entries:
        return ()
    out: list[tuple[Verb, Form]] = []
    for verb, form in entries:
        if verb.lang == "fr" and form == "fin" and tok.s.endswith(("é", "ée", "és", "ées")):
            form = "pp"
        out.append((verb, form))
    return tuple(out)


@cache
def _class_index() -> dict[str, frozenset[str]]:
    """Word → the object classes it belongs to (one lookup per token instead of one per class)."""
    index: dict[str, set[str]] = {}
    for name, words in CLASSES.items():
        for word in words:
            index.setdefault(word, set()).add(name)
    return {word: frozenset(names) for word, names in index.items()}


def _classes(toks: Sequence[Tok], names_from: int = 1) -> set[str]:
    """Object classes and literal keys present in ``toks`` (see ``lexicon.CLASSES``); a
    capitalised unknown word from index ``names_from`` on is a name (a sentence's first word
    is capitalised anyway; a verb's object window starts mid-sentence)."""
    found: set[str] = set()
    for i, t in enumerate(toks):
        found.add(t.k)
        if t.k.isdigit() and len(t.k) >= 2:
            found.add("NUMBER")
        if t.cue is not None:
            found.add(t.cue)
            if t.cue in RECIPIENT_CUES:
                found.add("RECIPIENT")
            if t.cue in ("IBAN", "CARD"):
                found.add("ACCOUNT")
            if t.cue == "CHANNEL" or t.cue == "HANDLE" or t.cue == "URL":
                found.add("CHANNEL")
            continue
        names = _class_index().get(t.k)
        if names:
            found |= names
        elif t.cap and i >= names_from and t.k not in _FUNCTION_WORDS and len(t.k) > 1 and (
            not verb_entries(t)
        ):
            found.add("RECIPIENT")  # a name: "send it to Marie"
    if "MESSAGE" in found or found & PRONOUN_OBJECTS:
        found.add("ITEM")
    return found


def _match(toks: Sequence[Tok], at: int, seq: tuple[str, ...]) -> bool:
    if at + len(seq) > len(toks):
        return False
    return all(w == "*" or toks[at + j].k == w for j, w in enumerate(seq))


Seqs = tuple[tuple[str, ...], ...]
_BY_FIRST: dict[int, tuple[Seqs, dict[str, Seqs]]] = {}


def _by_first(seqs: Seqs) -> dict[str, Seqs]:
    """``seqs`` indexed by first word (kept with ``seqs`` so the id stays theirs)."""
    entry = _BY_FIRST.get(id(seqs))
    if entry is None or entry[0] is not seqs:
        index: dict[str, list[tuple[str, ...]]] = {}
        for seq in seqs:
            index.setdefault(seq[0], []).append(seq)
        entry = (seqs, {k: tuple(v) for k, v in index.items()})
        _BY_FIRST[id(seqs)] = entry
    return entry[1]


def _find(toks: Sequence[Tok], seqs: Seqs, limit: int | None = None) -> int:
    """End index of the first of ``seqs`` found starting before ``limit``, or -1."""
    end = len(toks) if limit is None else limit
    index = _by_first(seqs)
    for at in range(end):
        for seq in index.get(toks[at].k, ()):
            if _match(toks, at, seq):
                return at + len(seq)
    return -1


def _starts(toks: Sequence[Tok], seqs: Seqs, at: int) -> int:
    """Length of the longest of ``seqs`` starting exactly at ``at`` (0 if none)."""
    if at >= len(toks):
        return 0
    best = 0
    for seq in _by_first(seqs).get(toks[at].k, ()):
        if len(seq) > best and _match(toks, at, seq):
            best = len(seq)
    return best


_ADVERBS: Final = frozenset(
    """just juste please also immediately now still really actually quickly first then simply
    definitely absolutely kindly maybe perhaps finally already soon vite bien aussi
    rapidement immediatement directement simplement d'abord tout vraiment seulement
    egalement finalement gentiment surtout""".split()
)
_NOT_ADVERBS: Final = frozenset(
    "family reply supply apply only fly rely ally bully italy july early daily july ugly "
    "belly jelly rally tally assembly holy".split()
)


@cache
def _ly_adverb(word: str) -> bool:
    return (
        len(word) > 4 and word.endswith("ly") and word not in _NOT_ADVERBS
        and word not in _index() and not any(word in w for w in CLASSES.values())
    )


def _is_adverb(tok: Tok) -> bool:
    """Adverbs sit between a frame and its verb without changing either ("could you possibly
    settle ..."): listed ones, and English -ly words that are not verbs or nouns we know."""
    return tok.k in _ADVERBS or _ly_adverb(tok.k)


_LONG_FILLERS: Final = ("please", "kindly", "quickly", "bonjour", "hello", "merci")


@cache
def _misspelt_filler(word: str) -> bool:
    """"pleae", "pleasse": a typed-in-a-hurry filler still opens an order."""
    return len(word) >= 5 and word.isalpha() and not _known_word(word) and any(
        _within(word, f, 2) for f in _LONG_FILLERS
    )


def _head(toks: Sequence[Tok]) -> int:
    """Index of the first token after fillers, vocatives, adverbs and time expressions."""
    i = 0
    while i < len(toks):
        k = toks[i].k
        if k in F.FILLERS or k in ("s'", "te") or _is_adverb(toks[i]) or k.endswith("-ci") or (
            i == 0 and _misspelt_filler(k)
        ):
            i += 1
        elif k in ("this", "next", "ce", "cette", "cet", "every", "chaque") and i + 1 < len(
            toks
        ) and (toks[i + 1].k in F.TEMPORAL or toks[i + 1].k.endswith("-ci")):
            i += 2  # "this month pay it", "ce mois-ci fais-le"
        else:
            break
    return i


@dataclass
class _Scan:
    """State of one clause scan."""

    clause: Clause
    toks: tuple[Tok, ...]
    head: int
    info_from: int  # index from which everything is asked about (len(toks): never)
    request_end: int  # end of a request frame opening the clause (0: none)
    scope: str | None = None  # "read" or "compose" once such a verb is the clause's verb
    scope_at: int = -1
    wish: bool = False  # the opening frame is the user's own wish ("I need to ...")
    hint_end: int = 0  # end of "it would be great if": what follows is wished for


_LEADING_PREPOSITIONS: Final = frozenset(
    "a au aux de du pour dans sur par chez avec in for at to with from by on of".split()
)
_INVERSION: Final = F.MODAL_ORDER | F.AUX_PAST | F.AUX_PASSIVE | frozenset(
    {"do", "does", "did", "is", "are", "much", "many", "long", "to", "often", "soon"}
)


def _open_scan(clause: Clause) -> _Scan:
    toks = clause.toks
    head = _head(toks)
    info_from = len(toks)
    request_end = 0
    n = _starts(toks, F.REQUEST_FRAMES, head)
    wish = False
    if not n:
        n = _starts(toks, F.WISH_FRAMES, head)
        wish = bool(n)
    if n:
        request_end = head + n
    opener = head
    if opener < len(toks) and toks[opener].k in _LEADING_PREPOSITIONS:
        opener += 1  # "À quelle banque ...", "In which case ..."
    asks = False
    if not n and _starts(toks, F.INFO_OPENERS, opener):
        asks = toks[opener].k not in F.WH_WORDS or clause.question or (
            opener + 1 < len(toks) and toks[opener + 1].k in _INVERSION
        )
    if not n and not asks and clause.question and opener < len(toks) and (
        toks[opener].k in F.AUX_QUESTION
    ):
        asks = True  # "Does moving notes keep their tags?"
    if asks:
        info_from = head
    else:
        for start in range(len(toks)):
            if _starts(toks, F.INFO_ANYWHERE, start):
                info_from = start
                break
    hint = _find(toks, F.HINT_FRAMES, limit=min(len(toks), head + 3))
    if hint < 0 and not clause.question and _starts(toks, F.HINT_OPENERS, head):
        hint = head + _starts(toks, F.HINT_OPENERS, head)
    if hint > 0 and hint < len(toks) and toks[hint].k in F.SUBJECTS_SELF | {"j'"}:
        hint = -1  # "I wish I knew why ...": the user's own state, not an outcome to bring about
    if hint > 0:
        info_from = len(toks)
    scan = _Scan(clause, toks, head, info_from, request_end, wish=wish, hint_end=max(hint, 0))
    if head < len(toks) and toks[head].k in _PRESENTING:
        scan.scope = "read"  # "Here's my fetch call: ...": material to look at
    return scan


_CHAIN: Final = F.NEGATION_CHAIN | frozenset({"you", "u", "him", "her", "them"})


def _negation(toks: Sequence[Tok], i: int) -> tuple[bool, bool]:
    """(negated, ordered by a double negation) for the verb at ``i``."""
    # "supprime pas", "delete nothing"; "ne ... plus" too. "plus" alone is "more".
    if i + 1 < len(toks) and toks[i + 1].k in F.NEGATION_AFTER and (
        toks[i + 1].k != "plus" or any(t.k in ("ne", "n'") for t in toks[max(0, i - 3) : i])
    ):
        return True, False
    if i + 2 < len(toks) and toks[i + 1].k in PRONOUN_OBJECTS and toks[i + 2].k in ("pas",
                                                                                       "jamais"):
        return True, False
    if i >= 2 and toks[i - 1].k in ("mind", "about") and toks[i - 2].k in ("never", "forget"):
        return True, False  # "never mind sending", "forget about paying"
    for j in range(i - 1, max(-1, i - 8), -1):
        k = toks[j].k
        if k not in F.NEGATIONS:
            continue
        if k == "pas" and j > 0 and toks[j - 1].k not in F.FILLERS and toks[j - 1].k not in (
            "surtout", "mais", "et", "ou", "donc", "non",
        ):
            continue  # "ne ... pas" is marked by "ne"; a "pas" after a verb negates that verb
        # The verb this negation governs: the first non-skippable token after it.
        g = j + 1
        while g < i and (toks[g].k in F.SKIP or toks[g].k in F.NEGATIONS or _is_adverb(toks[g])):
            g += 1
        if k in ("instead", "rather", "plutot") and g < i and toks[g].k in ("of", "than", "que"):
            g += 1
        while g < i:
            if toks[g].k in F.POSITIVE_AFTER_NEGATION:
                return False, True
            if toks[g].k in _CHAIN:
                g += 1
                while g < i and (toks[g].k in F.SKIP or toks[g].k in ("you", "que", "tu")):
                    g += 1
                continue
            break
        if g == i:
            doubled = sum(1 for t in toks[max(0, j - 2) : j + 1] if t.k in ("n't", "not", "no"))
            return doubled < 2, doubled >= 2  # "don't not send it": sent
        return False, False
    return False, False


_BACK_SKIP: Final = F.SKIP - F.INFINITIVE_MARKERS - {"to"}


def _back(toks: Sequence[Tok], i: int, skip: frozenset[str] = _BACK_SKIP) -> int:
    """Index of the first meaningful token before ``i`` (-1 at the clause start)."""
    j = i - 1
    while j >= 0 and (
        toks[j].k in skip or toks[j].k in ("not", "n't", "ne", "n'", "pas") or _is_adverb(toks[j])
    ):
        j -= 1
    return j


_CLITIC_SKIP: Final = frozenset(
    "le la les l' lui leur me m' te t' se s' y en nous vous ne n' moi toi".split()
)
_ARTICLES: Final = frozenset(
    "le la les l' un une des du mon ma mes ton ta tes son sa ses notre nos votre vos leur leurs "
    "ce cet cette ces".split()
)


def french_noun_reading(toks: Sequence[Tok], i: int) -> bool:
    """"la facture", "la paie", "le compte": a French finite form after an article is a noun,
    unless a subject pronoun makes the article a clitic ("je la paie")."""
    if i == 0 or toks[i - 1].k not in _ARTICLES:
        return False
    before = toks[i - 2].k if i >= 2 else ""
    return before not in F.SUBJECTS_SELF | F.SUBJECTS_YOU | F.SUBJECTS_OTHER | {"ne", "n'"}


_OBLIGATION: Final[Seqs] = (
    ("needs",), ("need",), ("must",), ("should",), ("has", "to"), ("have", "to"),
    ("to",), ("doit",), ("doivent",), ("faut",), ("devra",), ("devrait",),
    ("que",), ("soit",), ("want",), ("wants",),
)


_ASIDES: Final[Seqs] = (
    ("au", "passage"), ("by", "the", "way"), ("btw",), ("while", "you", "are", "at", "it"),
    ("pendant", "que", "tu", "y", "es"), ("tant", "que", "tu", "y", "es"), ("et", "aussi"),
    ("oh", "and"), ("also",), ("sinon",), ("ps",), ("p.s.",),
)


def _hinted_move(classes: set[str]) -> Action | None:
    """What a wished outcome does, from what it names: money into an account moves money,
    money to someone pays, something for someone sends it."""
    money = bool(classes & {"MONEY", "AMOUNT"})
    if money and classes & {"ACCOUNT", "IBAN"}:
        return "TRANSFER"
    if money and "RECIPIENT" in classes:
        return "PAYMENT"
    if "MESSAGE" in classes and "RECIPIENT" in classes:
        return "SEND"
    return None


def _aside(toks: Sequence[Tok], i: int) -> bool:
    """The verb at ``i`` follows an aside that turns to the assistant ("au passage règle ...")."""
    for start in range(max(0, i - 5), i):
        for seq in _ASIDES:
            if _match(toks, start, seq) and start + len(seq) >= i - 1:
                return True
    return False


def _governor(toks: Sequence[Tok], marker: int) -> int:
    """The verb an infinitive marker depends on, looking back over the person asked: "asking
    Bob to pay", "demander à mon employeur de virer", "tell the whole team to delete"."""
    for g in range(marker - 1, max(-1, marker - 7), -1):
        t = toks[g]
        if t.k in F.CONTENT_GOVERNORS or t.k in F.ORDER_GOVERNORS:
            return g
        entries = verb_entries(t)
        if entries and not (g > 0 and (toks[g - 1].k in F.DETERMINERS
                                       or toks[g - 1].k in F.PREPOSITIONS)):
            return g  # "told me by email to wire": "email" is a noun, "told" governs
    return _back(toks, marker)


def _mood_of_verb(scan: _Scan, i: int, form: Form, verb: Verb) -> tuple[Mood, str]:
    """Mood of the verb at ``i`` from its form and the words before it."""
    toks = scan.toks
    if form in ("past", "pp") and scan.head < len(toks) and toks[scan.head].k in (
        "why", "pourquoi"
    ) and any(t.k in F.SUBJECTS_YOU for t in toks[scan.head : i]) and any(
        t.k in ("n't", "not", "ne", "n'", "pas") for t in toks[scan.head : i + 2]
    ):
        return "unsure", "a rhetorical question that orders (why haven't you ... yet?)"
    negated, double = _negation(toks, i)
    if negated:
        return "negated", "negated"
    if i >= scan.info_from:
        return "question", "asked about, not ordered"
    if scan.scope is not None and scan.scope_at < 0 and _aside(toks, i):
        return "unsure", "an order slipped into the material (au passage, by the way)"
    if scan.scope is not None and scan.scope_at < 0:  # after "fix this query: DELETE FROM ..."
        if scan.scope == "compose":
            return "content", "material to work on, quoted after a colon"
        return "mentioned", "material to read, quoted after a colon"
    if scan.hint_end and i >= scan.hint_end:
        return "unsure", "wished for (it would be great if ...)"
    if _is_quote(toks, i):
        if scan.head < len(toks) and toks[scan.head].k in _RUN_VERBS:
            return "unsure", "a quoted command to run"
        return "mentioned", "quoted word"
    if scan.scope is not None and 0 <= scan.scope_at < i and not negated and (
        _back(toks, i) > scan.scope_at
    ):
        if scan.scope == "compose":
            return "content", "inside something to draft"
        return "mentioned", "object of a request to read"
    prev = i - 1
    while prev >= 0 and (_is_adverb(toks[prev]) or toks[prev].k in _CLITIC_SKIP):
        prev += -1
    before = toks[prev].k if prev >= 0 else ""

    if form in ("past", "pp"):
        if before in F.AUX_PASSIVE and _find(toks[max(0, prev - 3) : prev + 1], _OBLIGATION) >= 0:
            return "unsure", "to be done (passive order)"
        # Causative: "get the invoice paid", "I want these deleted" (an object between).
        window = toks[max(0, i - 6) : i]
        heads = [n for n, t in enumerate(window) if t.k in F.CAUSATIVE]
        if heads and heads[-1] < len(window) - 1 and before not in F.AUX_PAST | F.CAUSATIVE and (
            before not in F.SUBJECTS_SELF
        ) and any(t.k in ("i", "we", "you", "je", "tu", "veux", "voudrais", "want", "need",
                          "get", "have", "make", "fais", "faites")
                  for t in toks[max(0, i - 12) : i]):
            return "order", "causative order (get it done)"
        return "reported", "past or passive: reports, does not order"
    if form == "ing":
        if before in ("stop", "avoid", "without", "quit", "of", "than", "refrain"):
            return "negated", f"negated ({before} ...ing)"
        if before in ("start", "keep", "continue", "begin", "finish", "try", "go", "proceed",
                      "with", "resume", "mind"):
            return "order", f"ordered ({before} ...ing)"
        if before in F.PREPOSITIONS or before in F.DETERMINERS:
            return "mentioned", "named as an activity"
        if before in ("am", "is", "are", "was", "were", "be", "been"):
            return "statement", "describes an activity in progress"
        if prev < scan.head or prev < 0:
            return "unsure", "clause opens with it"
        if prev >= 0 and _noun_like(toks[prev]):
            return "mentioned", "named as an activity"
        return "unsure", "could be an order"
    if form in ("s3", "p3"):
        return "statement", "third person: describes, does not order"
    if form == "ppr":
        return "mentioned", "a participle (en payant, payant)"
    if form == "fut" and before in ("je", "j'", "nous", "on"):
        return "statement", "the user's own plan"
    if form in ("impf", "cond") and before not in F.SUBJECTS_YOU:
        return "statement", "hypothetical or past"
    if verb.lang == "fr" and form == "fin" and french_noun_reading(toks, i):
        return "mentioned", "a noun after its article"
    if verb.lang == "fr" and form == "fin" and before in F.AUX_PAST:
        return "reported", "past (j'ai fait, a fait)"

    if double:
        return "order", "ordered (double negation: don't forget to)"
    if scan.request_end and i >= scan.request_end and (
        i == scan.request_end or _back(toks, i) < scan.request_end
    ):
        return "order", f"{WISH}{toks[scan.request_end - 1].k})" if scan.wish else "requested"
    j = _back(toks, i)
    prevk = toks[j].k if j >= 0 else ""
    if verb.lang == "fr" and form == "inf" and prevk in ("faire", "fais", "fait", "fasse") and (
        j > 0 and toks[j - 1].k in ("me", "m'", "te", "t'", "se", "s'", "nous", "vous")
    ):
        return "statement", "se faire + infinitive: it happens to the subject (se faire virer)"
    if j >= 0 and form in ("inf", "base") and any(
        f in ("pp", "past") for _, f in verb_entries(toks[j])
    ):
        return "reported", "after a past participle (had it done, s'est fait ...)"
    if prevk in F.INFINITIVE_MARKERS and verb.lang == "fr" and form != "inf":
        return "mentioned", f"'{prevk} {toks[i].k}': a noun after a preposition"
    if prevk == "pour" and form == "inf" and any(t.k in F.DRAFT_NOUNS for t in toks[:j]):
        return "content", "what a draft is for (un brouillon ... pour relancer)"
    if prevk in F.INFINITIVE_MARKERS:
        g = _governor(toks, j)
        gk = toks[g].k if g >= 0 else ""
        governor = verb_entries(toks[g]) if g >= 0 else ()
        if (governor and all(f in ("past", "pp") for _, f in governor)) or gk in F.PAST_GOVERNORS:
            return "reported", f"after a past verb ({gk} to ...)"
        if gk in F.CONTENT_GOVERNORS or any(v.kind == "compose" for v, _ in governor):
            return "content", "what someone is asked to do, in a message"
        if any(v.kind == "read" for v, _ in governor) or gk in ("how", "comment", "where", "what",
                                                              "when", "whether", "learn"):
            return "question", "asked about, not ordered"
        subject_before = any(
            t.k in F.SUBJECTS_SELF or t.k in F.SUBJECTS_OTHER or t.k == "j'"
            for t in toks[max(0, g - 3) : g]
        )
        if subject_before and gk not in F.SELF_WISH and not (
            scan.request_end and g < scan.request_end
        ):
            return "statement", f"what the subject does or tries ({gk} to ...)"
        if gk in F.ORDER_GOVERNORS or any(v.kind in ("action", "generic", "light") for v, _ in
                                           governor):
            return "order", f"ordered ({gk} to ...)"
        if scan.request_end and g < scan.request_end:
            return "order", "requested"
        if any(t.k in F.SUBJECTS_SELF or t.k in F.SUBJECTS_OTHER or t.k == "j'"
               for t in toks[max(0, g - 3) : g]):
            return "statement", "what the subject does it for (j'arrive pour signaler ...)"
        if scan.clause.question:
            return "question", "an infinitive in a question (is it better to ...?)"
        return "unsure", "infinitive with no clear governor"
    if prevk in F.SUBJECTS_YOU:
        if j > 0 and toks[j - 1].k in ("did", "have", "has", "had", "as", "avez", "avais"):
            return "reported", "past action of the assistant"
        return "order", "addressed to you"
    if prevk in F.SUBJECTS_OTHER:
        return "statement", "someone else acts"
    if prevk in F.SUBJECTS_SELF:
        if form == "fin" and prevk == "on":
            return "unsure", "let's (on ...)"
        return "statement", "the user describes their own action"
    if prevk in F.MODAL_ORDER or prevk in F.SELF_WISH:
        k = _back(toks, j, F.SKIP | F.MODAL_ORDER | F.SELF_WISH)
        if j > 0 and toks[j - 1].k in F.SUBJECTS_YOU:
            k = j - 1  # "u can pay", "tu peux payer": you, not a noun further back
        subject = toks[k].k if k >= 0 else ""
        if subject in F.SUBJECTS_OTHER or (
            k >= scan.head and k >= 0 and subject not in F.SUBJECTS_SELF
            and subject not in F.SUBJECTS_YOU and _noun_like(toks[k])
        ):
            return "statement", "someone else may act"
        if subject in F.SUBJECTS_SELF and prevk in (
            "will", "shall", "vais", "va", "allons", "can", "peux", "could",
        ):
            return "statement", "the user's own plan"
        if subject in F.SUBJECTS_SELF or subject in ("j'",):
            return "order", f"{WISH}{prevk})"
        return "order", f"required ({prevk})"
    if prevk in ("let", "us", "lets"):
        return "order", "let's"
    if prevk in F.AUX_PAST and form in ("base", "inf"):
        return "question", "asked about (auxiliary)"
    if prevk in F.DETERMINERS:
        return "mentioned", "used as a noun"
    if j < scan.head or j < 0 or (scan.request_end and j < scan.request_end) or (
        toks[j].k in F.TEMPORAL and _back(toks, j, F.SKIP | F.TEMPORAL) < scan.head
    ):
        if scan.clause.question and not scan.request_end and form in ("base", "inf", "fin"):
            return "unsure", "terse question-order"
        return "order", "imperative"
    if scan.scope == "read" and scan.scope_at < i:
        return "mentioned", "object of a request to read"
    if scan.scope == "compose" and scan.scope_at < i:
        return "content", "inside something to draft"
    if verb.lang == "en" and j >= 1 and toks[j - 1].k in F.DETERMINERS and form == "base" and (
        toks[j].k in F.TEMPORAL or _noun_like(toks[j])
    ):
        return "mentioned", f"'{toks[j - 1].k} {prevk} {toks[i].k}': a noun phrase"
    if j >= 0 and _noun_like(toks[j]) and toks[j].k not in F.TEMPORAL:
        if verb.lang == "fr" and scan.request_end and (
            toks[scan.request_end - 1].k in ("que", "qu'")
            or any(t.k == "que" for t in toks[max(0, j - 12) : j])
        ):
            return "order", "wished (que ... + verb)"
        return "mentioned", f"after '{prevk}': a noun, not a verb"
    return "unsure", "could be an order"


def _particle(toks: Sequence[Tok], i: int, verb: Verb) -> tuple[Verb, int] | None:
    """The phrasal variant of ``verb`` at ``i`` ("top it up", "let the landlord know")."""
    for particle, variant in verb.particles:
        seq = tuple(particle.split())
        tight = seq[0].startswith("^")
        if tight:
            seq = (seq[0][1:], *seq[1:])
        for gap in range(0, 1 if tight else 4):
            at = i + 1 + gap
            if at + len(seq) > len(toks):
                break
            if any(t.k in _PARTICLE_STOPS for t in toks[i + 1 : at]):
                break  # another clause or an infinitive in between: not this verb's particle
            if _match(toks, at, seq):
                return variant, at + len(seq)
    return None


_PARTICLE_STOPS: Final = frozenset("to and that que qui which who de d' pour".split())


def _sense(verb: Verb, objects: set[str]) -> tuple[Action | None, bool]:
    """(action, uncertain) of ``verb`` given its object classes."""
    for sense in verb.senses:
        if sense.applies(objects):
            return sense.action, False
    return verb.default, bool(verb.senses) and verb.default in RISKY


def _object_classes(
    toks: Sequence[Tok], i: int, end: int, doc: set[str], sentence: Sentence,
    verb: Verb | None = None,
) -> set[str]:
    window = list(toks[end : end + WINDOW])
    objects = _classes(window, names_from=0)
    first = next((t for t in window if t.k not in F.DETERMINERS), None)
    if first is not None and first.k in ("me", "moi", "myself", "m'") and not objects & {
        "CHANNEL", "EMAIL", "PHONE", "email", "mail", "sms", "text", "whatsapp", "courriel",
    } and not any(t.cue == "AMOUNT" for t in window[1:3]):
        objects.add("SELF")
    if window and window[0].k in ("him", "her") and (len(window) == 1 or not _noun_like(
        window[1]
    )):
        objects.add("RECIPIENT")  # "answer her", not "answer her email" (her: a possessive)
    if i > 0 and toks[i - 1].k in ("me", "m'") and not any(t.cue == "AMOUNT" for t in window):
        objects.add("SELF")  # "tu peux me rappeler", "envoie-moi"
    if window and ((window[0].cap and window[0].k not in F.FILLERS) or window[0].k in (
        "him", "her", "lui", "leur"
    ) or window[0].k in CLASSES["RECIPIENT"]):
        objects.add("DIRECT_RECIPIENT")  # "copy Bob on the email", not "copy the team note"
    if any(t.k in ("from", "at", "chez") and n + 1 < len(window) and window[n + 1].cap
           for n, t in enumerate(window)):
        objects.add("SHOP")  # "from Domino's", "chez Picard": a vendor
    # "dis-lui", "tu lui diras", "écris-leur": the clitic is the person addressed.
    if (i > 0 and toks[i - 1].k in ("lui", "leur")) or (first is not None and first.k in (
        "lui", "leur") and end < len(toks) and toks[end].k in ("lui", "leur")):
        objects.add("RECIPIENT")
    # French clitic object before the verb: "le payer", "les supprimer", "me l'envoyer".
    clitic = i > 0 and toks[i - 1].k in ("le", "la", "les", "l'", "lui", "leur", "y", "en")
    if first is None or first.k in PRONOUN_OBJECTS or clitic:
        objects |= doc - {"SELF", "RECIPIENT"}
        objects.add("ITEM")
    if sentence.about_text:
        objects.add("TEXT")  # "dans ma liste de courses, enlève le lait"
    mover = verb is not None and verb.lemma.split()[0] in _MOVE_VERBS
    if crosses_spheres(sentence, window, destination_enough=mover):
        objects.add("SPHERE")
    else:
        objects.discard("SPHERE")
    if objects & F.STALE and "DATA" in objects:
        objects.add("STALE")
    return objects


_PRIVATE_SIDE: Final = frozenset(
    """personal private perso personnel personnelle prive privee home family own mine maison
    famille familiale familial familiaux familiales side side-project persos enfants enfant
    kids children child wife husband femme mari""".split()
)
_WORK_SIDE: Final = frozenset(
    """business work professional pro company office corporate job employer clinic firm agency
    boulot travail professionnel professionnelle entreprise societe bureau boite taf
    workspace asso association club shared team sales crm partage partagee commun commune
    equipe pros hr rh client clients customer customers patient patients colleague colleagues
    collegue collegues""".split()
)


@dataclass(frozen=True, slots=True)
class Sentence:
    """What a sentence says about spheres and edited text, computed once per sentence (the
    verbs of a 100,000-character prompt must not each rescan it)."""

    toks: tuple[Tok, ...]
    both_sides: bool  # a work side and a personal side are named, or a named space is left
    inside: bool  # "inside my personal space, ...": a move within one sphere
    about_text: bool  # "dans ma liste de courses, ...": the objects are the user's own text

    @classmethod
    def of(cls, toks: Sequence[Tok]) -> Sentence:
        keys = [t.k for t in toks]
        present = set(keys)
        # "sur mon compte à moi" says the destination is the user's own.
        private = bool(present & _PRIVATE_SIDE) or ("a", "moi") in set(pairwise(keys))
        both = (private and bool(present & _WORK_SIDE)) or _from_space(toks)
        inside = bool(keys) and keys[0] in ("inside", "within", "in", "dans") and bool(
            set(keys[:5]) & (_PRIVATE_SIDE | _WORK_SIDE)
        )
        about_text = bool(keys) and keys[0] in ("in", "dans", "from", "de", "sur", "on") and any(
            k in CLASSES["TEXT"] for k in keys[:6]
        )
        return cls(tuple(toks), both, inside, about_text)


def crosses_spheres(
    sentence: Sentence, window: Sequence[Tok], destination_enough: bool = True
) -> bool:
    """Records move from one of the user's spheres (work, personal) into another: both sides
    named in the sentence, a move out of a named space into another, or a move into the
    user's own space from wherever they are ("into my personal space"); not a move inside
    one space ("inside my personal space, move ... into the Cooking folder")."""
    if sentence.both_sides:
        return True
    if sentence.inside or not destination_enough:
        return False
    for j, t in enumerate(window):
        if t.k in ("into", "to", "onto", "vers", "dans", "sur", "in", "a") and any(
            w.k in _PRIVATE_SIDE or w.k in _WORK_SIDE for w in window[j + 1 : j + 7]
        ):
            return True
    return False


_SPACES: Final = frozenset("workspace space sphere identity espace identite".split())
# Verbs whose destination alone says records leave a sphere ("move X into my personal space").
_MOVE_VERBS: Final = frozenset(
    """move copy migrate export import transfer sync synchronise synchronize duplicate clone
    pull push bring shift mirror replicate merge drop take back deplacer copier recopier migrer
    exporter importer transferer synchroniser dupliquer rapatrier basculer fusionner ramener
    passer""".split()
)


def _from_space(sentence: Sequence[Tok]) -> bool:
    """"... from the Sales workspace into ...": a move out of one space into another (one pass)."""
    source_at = -1
    for j, t in enumerate(sentence):
        if source_at < 0 and t.k in ("from", "de", "du", "depuis") and any(
            a.k in _SPACES for a in sentence[j + 1 : j + 6]
        ):
            source_at = j
        elif source_at >= 0 and j > source_at + 1 and t.k in (
            "into", "to", "onto", "dans", "vers", "sur"
        ):
            return True
    return False


@dataclass
class _ClauseResult:
    mentions: list[Mention]
    defers: bool
    composes: bool
    executes: bool
    scope: str | None
    info: bool  # the clause is asked about from its head


def _executes(toks: Sequence[Tok], head: int) -> bool:
    """The clause is "do it" / "go ahead" / "same again": execute what was mentioned."""
    n = _starts(toks, F.EXECUTE_PHRASES, head)
    if not n:
        return False
    rest = toks[head + n :]
    return not any(verb_entries(t) or t.k in ACTION_NOUNS for t in rest)


def _read_clause(
    clause: Clause, doc: set[str], view: View, sentence: Sentence,
    inherited_scope: str | None, inherited_info: bool, runs_code: bool = False,
    subject: str | None = None,
) -> _ClauseResult:
    """Mentions and flags of one clause (see the module docstring)."""
    scan = _open_scan(clause)
    toks = scan.toks
    if inherited_info and not scan.request_end and not _starts(toks, F.EXECUTE_PHRASES,
                                                                scan.head):
        scan.info_from = min(scan.info_from, scan.head)
    if inherited_scope is not None:
        scan.scope, scan.scope_at = inherited_scope, -1
    mentions: list[Mention] = []
    defers = composes = False
    executes = _executes(toks, scan.head)
    if _find(toks, F.CONTEXT_DEFERRAL) >= 0:
        defers = True

    seen: set[tuple[str, str, str, str]] = set()

    def add(action: Action, mood: Mood, word: str, why: str) -> None:
        if (action, mood, word, why) in seen:
            return  # the same word read the same way again in this clause adds nothing
        seen.add((action, mood, word, why))
        mentions.append(
            Mention(action, mood, word, why, view.disguise, view.hidden, why.startswith(WISH))
        )

    i = 0
    used_until = -1
    while i < len(toks):
        tok = toks[i]
        if i <= used_until or tok.cue is not None:
            i += 1
            continue
        if scan.hint_end and i == scan.hint_end and not mentions and not any(
            v.kind in ("read", "compose") for v, _ in verb_entries(tok)
        ):
            hinted = _hinted_move(_classes(toks[scan.hint_end :], names_from=0))
            if hinted is not None:
                add(hinted, "unsure", "outcome", "a wished outcome that moves money or data")
        if scan.hint_end and i >= scan.hint_end and tok.k in _OUTCOMES:
            add(_OUTCOMES[tok.k], "unsure", tok.s, "a wished or regretted outcome (were gone, "
                "stayed unpaid)")
            i += 1
            continue
        if tok.code and not runs_code:
            i += 1  # `res.send()`, `rm -rf`: code being discussed, not an order to Nova
            continue
        if tok.k in _KEEP_FORMS:
            negated, _ = _negation(toks, i)
            negated |= any(t.k in ("opposite", "contrary", "inverse", "contraire")
                           for t in toks[max(0, i - 4) : i])  # "do the opposite of keeping"
            if negated and _object_classes(toks, i, i + 1, doc, sentence) & {
                "DATA", "ITEM", "MESSAGE", "SUBSCRIPTION", "MONEY"
            }:
                add("DELETE", "unsure", tok.s, "not to be kept: to be got rid of")
            i += 1
            continue
        mise = _mise(toks, i)
        if mise is not None:
            _noun_mention(scan, i, mise, add)
            i += 1
            continue
        entries = verb_entries(tok)
        if not entries and i == scan.head and scan.clause.origin != "conjunction" and (
            tok.k not in ACTION_NOUNS and not _known_word(tok.s)
        ) and (len(tok.k) >= 5 or (i + 1 < len(toks) and toks[i + 1].k in F.DETERMINERS)):
            entries = _misspelt(tok)  # "delet all", "snd the report", "pai la facture"
        noun_action = ACTION_NOUNS.get(tok.k)
        if not entries and noun_action is None:
            i += 1
            continue
        prev_k = toks[i - 1].k if i > 0 else ""
        as_noun = noun_action is not None and (
            not entries or prev_k in F.DETERMINERS or (prev_k in F.PREPOSITIONS and prev_k != "to")
        )
        if as_noun and noun_action is not None:
            _noun_mention(scan, i, noun_action, add)
            i += 1
            continue
        verb, form = _pick(entries)
        if verb.outcome and not (scan.hint_end and i >= scan.hint_end):
            i += 1  # "have", "avoir": an action only as a wished outcome ("make sure he has ...")
            continue
        if tok.k == "partir" and prev_k == "a":
            i += 1  # "à partir de": from
            continue
        if verb.lang == "en" and form in ("base", "s3") and (
            prev_k in F.DETERMINERS or (prev_k in F.PREPOSITIONS and prev_k not in ("to", "on"))
        ):
            i += 1  # "the delete button", "a clear answer": not a verb
            continue
        mood, why = _mood_of_verb(scan, i, form, verb)
        if tok.code:
            mood, why = "unsure", "a command the prompt asks to run"
        elif mood == "order" and _helped_reply(scan, i, verb):
            mood, why = "content", "help me reply: the user replies, Nova drafts"
        elif subject is not None and mood == "order" and _back(toks, i) < scan.head:
            # "I'll review it and post it myself": the conjoined verb keeps its subject.
            mood, why = "statement", f"{subject} does it (shared subject)"
        if mood == "order" and _emphatic_self(toks, i):
            mood, why = "statement", "the user does it themselves (myself, moi-même)"
        end = i + 1
        phrasal = _particle(toks, i, verb)
        if phrasal is not None:
            verb, end = phrasal
        objects = _object_classes(toks, i, end, doc, sentence, verb)
        if verb.intransitive:
            objects |= _classes(toks[scan.head : i])
        at_head = _back(toks, i) < scan.head or (scan.request_end and _back(toks, i) <
                                                  scan.request_end)
        if verb.kind == "read":
            if mood in ("order", "unsure") and scan.scope is None and at_head:
                scan.scope, scan.scope_at = "read", i
            action, uncertain = _sense(verb, objects)
            if action in RISKY:
                add(action, "unsure" if uncertain else mood, tok.s, why)
            i = end
            continue
        if verb.kind == "compose":
            action, uncertain = _sense(verb, objects)
            prepared = _light_target(toks, end)
            if action in RISKY:
                add(action, mood if mood != "order" or not uncertain else "unsure", tok.s, why)
            elif mood in ("order", "unsure") and prepared is not None and (
                verb.lemma in ("prepare", "preparer", "prep")
                and toks[prepared[0]].k in _PREPARED_NOUNS
            ):
                # "Prépare le virement pour le loyer": in a bank, preparing a transfer sets it
                # up to run; unless the sentence says not to run it ("mais ne le valide pas").
                add(prepared[1], "unsure", f"{tok.s} {toks[prepared[0]].s}", PREPARED)
                used_until = prepared[0]
            elif mood in ("order", "unsure"):
                composes = True
                if scan.scope is None:
                    scan.scope, scan.scope_at = "compose", i
            i = end
            continue
        if verb.defers and mood in ("order", "unsure") and _refers_to_context(toks, end):
            defers = True
        if verb.kind == "light":
            target = None if _composes_noun(toks, end) else _light_target(toks, end)
            if target is not None:
                noun_i, noun_act = target
                add(noun_act, mood, f"{tok.s} {toks[noun_i].s}", f"{why} ({tok.s} + action noun)")
                used_until = noun_i
            elif mood in ("order", "unsure") and _composes_noun(toks, end):
                composes = True
                if scan.scope is None:
                    scan.scope, scan.scope_at = "compose", i
            elif mood in ("order", "unsure") and at_head and _pronoun_object(toks, end):
                executes = True
            action, uncertain = _sense(verb, objects)
            if action in RISKY and target is None:
                add(action, "unsure" if uncertain and mood == "order" else mood, tok.s, why)
            i = end
            continue
        if verb.lemma in ("give", "donner", "filer", "grab", "get") and "SELF" in objects and (
            scan.scope is None and at_head
        ):
            scan.scope, scan.scope_at = "read", i  # "give me a report of ...": show me
        if mood not in ("negated", "order", "unsure"):
            # Hints count whoever speaks: "the plumber is still waiting for his money".
            hint = _hint(toks, i, verb, form, objects)
            if hint is not None:
                add(hint, "unsure", tok.s, "someone is waiting to be paid (a hint to pay)")
                i = end
                continue
        action, uncertain = _sense(verb, objects)
        if verb.kind == "generic" and action is None and mood in ("order", "unsure") and (
            at_head and _pronoun_object(toks, end) and verb.defers
        ):
            executes = True
        if action is None:
            i = end
            continue
        if action in RISKY:
            if mood == "order" and (uncertain or verb.kind == "generic"):
                mood, why = "unsure", f"{why}; the object leaves the meaning open"
            add(action, mood, tok.s if verb.lemma.count(" ") == 0 else verb.lemma, why)
        elif action == "WRITE" and mood in ("order", "unsure"):
            composes = True
            if scan.scope is None and at_head:
                scan.scope, scan.scope_at = "compose", i
        i = end
    return _ClauseResult(mentions, defers, composes, executes, scan.scope,
                         scan.info_from <= scan.head < len(toks))


_OUTCOMES: Final[dict[str, Action]] = {
    **dict.fromkeys("gone vanished disparu disparus disparue disparues".split(), "DELETE"),
    **dict.fromkeys("unpaid impaye impayee impayes impayees".split(), "PAYMENT"),
    **dict.fromkeys("unsent unanswered".split(), "SEND"),
}
_KEEP_FORMS: Final = F.KEEP_VERBS | frozenset(
    "keeps kept keeping saves saved retains stores gardes gardons conserves".split()
)
_MISE: Final[tuple[tuple[tuple[str, ...], Action], ...]] = (
    (("en", "ligne"), "SEND"), (("en", "copie"), "SEND"), (("au", "courant"), "SEND"),
    (("a", "la", "poubelle"), "DELETE"), (("a", "la", "corbeille"), "DELETE"),
    (("a", "zero"), "DELETE"), (("de", "cote"), "TRANSFER"),
)


def _mise(toks: Sequence[Tok], i: int) -> Action | None:
    """"Mise en ligne du communiqué": a French nominal order built on "mise"."""
    if toks[i].k not in ("mise", "remise"):
        return None
    for seq, action in _MISE:
        if _match(toks, i + 1, seq):
            return action
    return None


@cache
def _risky_by_start() -> dict[tuple[str, int], tuple[tuple[str, tuple[tuple[Verb, Form], ...]],
                                                      ...]]:
    """Risky verb forms by (first letter, length): typos rarely touch the first letter."""
    table: dict[tuple[str, int], list[tuple[str, tuple[tuple[Verb, Form], ...]]]] = {}
    for key, entries in _index().items():
        if len(key) >= 4 and any(v.kind == "action" and v.default in RISKY for v, _ in entries):
            table.setdefault((key[0], len(key)), []).append((key, entries))
    return {n: tuple(v) for n, v in table.items()}


def _misspelt(tok: Tok) -> tuple[tuple[Verb, Form], ...]:
    """A risky verb the user mistyped ("delet", "supprme", "trasnfer") at the head of a clause:
    one edit away (two for long words), and not a word of English or French itself."""
    return _misspelt_word(tok.k)


@lru_cache(maxsize=65_536)  # a long prompt repeats its words: each is compared once
def _misspelt_word(word: str) -> tuple[tuple[Verb, Form], ...]:
    if len(word) < 3 or not word.isalpha() or word in _FUNCTION_WORDS or _known_word(word):
        return ()
    budget = 1 if len(word) < 8 else 2
    table = _risky_by_start()
    for n in range(len(word) - budget, len(word) + budget + 1):
        for key, entries in table.get((word[0], n), ()):
            if _within(word, key, budget):
                # A hurried imperative: read it as the order form, whatever form it is near.
                return tuple((v, "fin" if v.lang == "fr" else "base") for v, f in entries
                             if v.kind == "action")
    return ()


def _within(a: str, b: str, budget: int) -> bool:
    """Damerau-Levenshtein distance of ``a`` and ``b`` is at most ``budget`` (small words)."""
    if abs(len(a) - len(b)) > budget:
        return False
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for x in range(1, len(a) + 1):
        cur = [x] + [0] * len(b)
        for y in range(1, len(b) + 1):
            cost = 0 if a[x - 1] == b[y - 1] else 1
            cur[y] = min(prev[y] + 1, cur[y - 1] + 1, prev[y - 1] + cost)
            if x > 1 and y > 1 and a[x - 1] == b[y - 2] and a[x - 2] == b[y - 1]:
                cur[y] = min(cur[y], prev2[y - 2] + 1)
        if min(cur) > budget:
            return False
        prev2, prev = prev, cur
    return prev[len(b)] <= budget


@cache
def _known_word(word: str) -> bool:
    import simplemma

    return bool(simplemma.is_known(word, lang="en") or simplemma.is_known(word, lang="fr"))


def _hint(
    toks: Sequence[Tok], i: int, verb: Verb, form: Form, objects: set[str]
) -> Action | None:
    """Someone else waiting for money, money owed to someone: a statement or question that
    asks to pay ("the plumber is still waiting for his money", "the 40 quid I owe her")."""
    if verb.lemma not in ("wait", "attendre", "owe", "expect") or not objects & {
        "MONEY", "AMOUNT"
    }:
        return None
    if verb.lemma == "owe" and any(t.k in ("how", "combien", "much", "what") for t in toks[:i]):
        return None  # "how much does each person owe?": arithmetic
    if form in ("inf", "base") and verb.lemma != "owe":
        return None  # "should I pay now or wait?": the user's own choice
    j = _back(toks, i, _BACK_SKIP | {"still", "toujours", "encore", "is", "are", "been"})
    subject = toks[j].k if j >= 0 else ""
    if verb.lemma != "owe" and subject in F.SUBJECTS_SELF | F.SUBJECTS_YOU | {"j'"}:
        return None
    return "PAYMENT"


_SELF_EMPHASIS: Final = frozenset(
    "myself ourselves moi-meme nous-memes moi-même nous-mêmes".split()
)


def _helped_reply(scan: _Scan, i: int, verb: Verb) -> bool:
    """"help me respond to a friend", "aide-moi à répondre": advice or a draft for the user."""
    frame = tuple(t.k for t in scan.toks[scan.head : scan.request_end])
    return frame[:2] in (("help", "me"), ("aide", "moi")) and verb.lemma.split()[0] in (
        "respond", "reply", "answer", "write", "repondre", "ecrire", "tell", "dire"
    )


def _emphatic_self(toks: Sequence[Tok], i: int) -> bool:
    """"mail it myself", "je le posterai moi-même": the user will do it, not Nova."""
    return any(t.k in _SELF_EMPHASIS for t in toks[i + 1 : i + 5])


def _pick(entries: tuple[tuple[Verb, Form], ...]) -> tuple[Verb, Form]:
    """Of several verbs sharing a form, the one that can carry the most risk."""
    order = {"action": 0, "light": 1, "generic": 2, "compose": 3, "read": 4}
    return min(entries, key=lambda e: (order[e[0].kind], -_RANK.get(e[0].default or "READ", 0)))


def _refers_to_context(toks: Sequence[Tok], start: int) -> bool:
    window = toks[start : start + 6]
    return any(t.k in CONTEXT_REFERENCES for t in window) or _find(window, F.CONTEXT_DEFERRAL) >= 0


_COMPOSE_NOUNS: Final = frozenset(
    """jeu role-play roleplay scenario story histoire scene dialogue poem poeme
    list liste summary resume draft brouillon plan table tableau recap outline memo template
    modele schedule planning itinerary itineraire menu chart graphique presentation point
    description comparison comparatif overview synthese analyse analysis proposal proposition
    checklist""".split()
)


def _composes_noun(toks: Sequence[Tok], start: int) -> bool:
    """"make a list", "fais-moi un résumé": a light verb producing content."""
    for t in toks[start : start + 5]:
        if t.k in _COMPOSE_NOUNS:
            return True
        if t.k not in F.DETERMINERS and t.k not in ("me", "moi", "us", "nous", "m'") and (
            not _is_adverb(t)
        ):
            return False
    return False


def _pronoun_object(toks: Sequence[Tok], start: int) -> bool:
    """The verb's object is only "it"/"ça"/"ahead" ("do it", "fais-le", "go ahead")."""
    rest = [t for t in toks[start:] if t.k not in _ADVERBS and t.k not in F.FILLERS]
    if not rest:
        return True
    return len(rest) == 1 and rest[0].k in PRONOUN_OBJECTS | {"ahead", "so"}


_NOUN_ADJECTIVES: Final = frozenset(
    """standing recurring automatic monthly weekly yearly new quick small big large first last
    permanent direct one-off single bank wire instant express urgent
    permanent automatique mensuel mensuelle hebdomadaire annuel nouveau nouvelle petit petite
    gros grosse premier premiere dernier derniere instantane bancaire unique""".split()
)


def _light_target(toks: Sequence[Tok], start: int) -> tuple[int, Action] | None:
    """The action noun a light verb takes ("make a payment", "procède au virement")."""
    for j in range(start, min(len(toks), start + 5)):
        action = ACTION_NOUNS.get(toks[j].k)
        if action is not None:
            nxt = toks[j + 1].k if j + 1 < len(toks) else ""
            if nxt in RECORD_NOUNS:
                return None
            return j, action
        if toks[j].k in _NOUN_ADJECTIVES:
            continue
        gerund = [v for v, f in verb_entries(toks[j]) if f == "ing" and v.kind == "action"]
        if gerund and gerund[0].default in RISKY:
            return j, gerund[0].default  # "set up auto-forwarding", "start deleting"
        if (verb_entries(toks[j]) or _noun_like(toks[j])) and toks[j].k not in (
            "with", "ahead", "avec", "au", "aux",
        ):
            return None  # another verb or noun comes first: "un tableau des achats"
    return None


Add = Callable[[Action, Mood, str, str], None]


def _noun_mention(scan: _Scan, i: int, action: Action, add: Add) -> None:
    """An action noun: an order when it heads the sentence with cues, else only named."""
    toks = scan.toks
    nxt = toks[i + 1].k if i + 1 < len(toks) else ""
    word = toks[i].s
    if scan.scope is not None and scan.scope_at < i:
        add(action, "content" if scan.scope == "compose" else "mentioned", word,
            "inside material to work on")
        return
    if nxt in RECORD_NOUNS:
        add(action, "mentioned", word, f"'{word} {nxt}' names a record")
        return
    if i >= scan.info_from:
        add(action, "question", word, "asked about")
        return
    lead = [t for t in toks[max(scan.head, i - 4) : i] if t.k not in F.DETERMINERS
            and t.k not in _ADVERBS] or ([] if i - scan.head <= 4 else [toks[scan.head]])
    rest = toks[i + 1 : i + 1 + WINDOW]
    cues = {t.cue for t in rest if t.cue is not None}
    named = any(t.cap for t in rest) or bool(_classes(rest) & {"RECIPIENT", "ACCOUNT"})
    if scan.request_end and i >= scan.request_end and all(
        t.k in F.DETERMINERS or t.k in _ADVERBS for t in toks[scan.request_end : i]
    ):
        add(action, "order", word, "requested (I'd like a ...)")
        return
    head_of_sentence = scan.clause.origin == "sentence" and not lead
    if not lead and nxt in _ARTICLES | {"the", "my", "a", "this", "these", "our"} and (
        not scan.clause.question
    ):
        add(action, "unsure", word, "an action noun used as a verb (\"envoi le pdf\")")
        return
    objects = _classes(rest)
    if head_of_sentence and not scan.clause.question and (
        cues & (MONEY_CUES | RECIPIENT_CUES) or named
        or (objects & {"MONEY", "DATA", "SUBSCRIPTION"} and any(t.k in F.TEMPORAL | {
            "aujourd'hui", "maintenant", "now", "asap", "urgent", "please", "stp", "svp"}
            for t in rest))
        or (objects & {"DATA"} and not rest[3:])
    ):
        add(action, "unsure", word, "nominal order (action noun with its object)")
        return
    add(action, "mentioned", word, "named, not ordered")


_PRESENTING: Final = frozenset("voici voila here below ci-dessous attached ci-joint".split())


def _instruction(results: Sequence[_ClauseResult]) -> bool:
    """A sentence that may be an instruction: nothing in it is asked, read, drafted, negated,
    reported or said of someone else."""
    for r in results:
        if r.info or r.scope is not None:
            return False
        if any(m.mood in ("negated", "reported", "question", "content", "statement")
               for m in r.mentions):
            return False
    return True


def _cue_mentions(
    facts: Sentence, question: bool, view: View, asked_elsewhere: bool = False
) -> list[Mention]:
    """Risk cues in an instruction whose verb the lexicon does not know: "get 300 € to Marie",
    "Account 'Main' → 'Payroll', 18,500 EUR", "Un petit mot sur #general"."""
    sentence = facts.toks
    cues = {t.cue for t in sentence if t.cue is not None}
    classes = _classes(sentence)
    head = _head(sentence)
    framed = _starts(sentence, F.REQUEST_FRAMES, head) or _starts(sentence, F.WISH_FRAMES, head)
    first = sentence[head] if head < len(sentence) else None
    if first is not None and first.k in _PRESENTING:
        return []  # "Voici nos ventes : Nord 120 k€ ...": material, not an instruction
    if not framed and first is not None and (
        first.k in F.SUBJECTS_OTHER or first.k in F.SUBJECTS_SELF
    ):
        return []
    verbless = not any(
        verb_entries(t) and not (j and (sentence[j - 1].k in F.DETERMINERS))
        for j, t in enumerate(sentence)
    )
    if verbless and asked_elsewhere:
        return []  # "Mon IBAN : BE71 ... . C'est bien un IBAN valide ?": the data asked about
    money = cues & MONEY_CUES
    recipient = bool(classes & {"RECIPIENT", "ACCOUNT"}) or "IBAN" in cues or any(
        t.k in ("->", ">", "→") for t in sentence
    )
    if money and recipient and not question:
        action: Action = "TRANSFER" if "IBAN" in cues or "ACCOUNT" in classes else "PAYMENT"
        why = "money cue with a recipient in an instruction"
        return [Mention(action, "unsure", "/".join(sorted(money)).lower(), why, view.disguise,
                        view.hidden)]

    if "DATA" in classes and crosses_spheres(facts, sentence, False) and not question:
        return [Mention("TRANSFER", "unsure", "spheres", "records asked to cross spheres",
                        view.disguise, view.hidden)]
    channel_word = verbless and "CHANNEL" in classes and "MESSAGE" in classes
    if (cues & {"EMAIL", "PHONE", "HANDLE", "CHANNEL"} or channel_word) and not question:
        return [Mention("SEND", "unsure", "recipient", "external recipient in an instruction",
                        view.disguise, view.hidden)]
    return []


def _negated_execution(toks: Sequence[Tok]) -> bool:
    """"ne le valide pas", "don't send it", "sans l'exécuter": running it is excluded."""
    return any(t.k in _EXECUTE_VERBS and _negation(toks, n)[0] for n, t in enumerate(toks))


def _terse_bill(toks: Sequence[Tok], all_clauses: Sequence[Clause], view: View) -> list[Mention]:
    """"The invoice is from ACME. 1,200 EUR. Today.": no verb to read, a bill, an amount and
    nothing asked; the likeliest reading is "pay it", and when unsure lane A holds."""
    if any(c.question for c in all_clauses) or len(toks) > 40:
        return []
    if any(verb_entries(t) and not (n and toks[n - 1].k in F.DETERMINERS)
           for n, t in enumerate(toks) if t.k not in ("is", "are", "be")):
        return []
    classes = _classes(toks)
    if classes & {"AMOUNT", "IBAN"} and "MONEY" in classes:
        return [Mention("PAYMENT", "unsure", "bill", "a bill and an amount, tersely (pay it?)",
                        view.disguise, view.hidden)]
    return []


def _opening_subject(clause: Clause) -> str | None:
    """The subject pronoun a clause opens with ("I'll review it", "je le relirai"), if any:
    a verb conjoined to it ("... and post it") shares it."""
    head = _head(clause.toks)
    if head < len(clause.toks):
        k = clause.toks[head].k
        if k in F.SUBJECTS_SELF or k in F.SUBJECTS_OTHER or k in ("j'",):
            return "the user" if k in F.SUBJECTS_SELF or k == "j'" else "someone else"
    return None


_TAGS: Final = frozenset("non right ok okay hein no yes oui isn't n'est-ce pas".split())


def _is_tag(clause: Clause) -> bool:
    """"..., non ?", "..., right?": a question tag, not a question of its own."""
    return all(t.k in _TAGS or t.k in ("n't", "it", "est", "ce", "pas") for t in clause.toks)


def _read_group(
    group: Sequence[Clause], doc: set[str], view: View, sentence: Sentence, runs_code: bool
) -> list[_ClauseResult]:
    """The readings of one sentence's clauses, each inheriting scope, info and subject from
    the clauses before it."""
    results: list[_ClauseResult] = []
    scope: str | None = None
    info = after_colon = False
    subject: str | None = None
    for n, clause in enumerate(group):
        after_colon |= clause.origin == "colon"
        inherited = scope if after_colon else None
        shared = subject if clause.origin == "conjunction" else None
        r = _read_clause(clause, doc, view, sentence, inherited, info and n > 0, runs_code,
                         shared)
        subject = _opening_subject(clause)
        if r.info:
            info = True
        scope = r.scope or scope
        results.append(r)
    return results


def _relabelled(result: _ClauseResult, view: View) -> _ClauseResult:
    """``result`` read in another view: its mentions name that view's disguise."""
    if all(m.disguise == view.disguise and m.hidden == view.hidden for m in result.mentions):
        return result
    return replace(result, mentions=[
        replace(m, disguise=view.disguise, hidden=view.hidden) for m in result.mentions
    ])


def read_views(views: Sequence[View]) -> Reading:
    """Mentions of every view; defers/composes from any view."""
    mentions: list[Mention] = []
    defers = composes = False
    # A sentence's reading depends only on its clauses, the document's classes and whether the
    # prompt runs code; the views of a long prompt repeat most sentences unchanged, and a
    # prompt may repeat a sentence: each is read once, its mentions relabelled per view.
    # The readings of what the user wrote (not of decoded payloads) share one document: the
    # classes any of them shows, so "pay it" finds the invoice however it was spelled.
    memo: dict[tuple[object, ...], list[_ClauseResult]] = {}
    tokenized = [tokenize(view.text) for view in views]
    visible: set[str] = set()
    for view, toks in zip(views, tokenized, strict=True):
        if not view.hidden:
            visible |= _classes(toks)
    frozen_visible = frozenset(visible)
    for view, toks in zip(views, tokenized, strict=True):
        doc = _classes(toks) if view.hidden else set(visible)
        frozen_doc = frozenset(doc) if view.hidden else frozen_visible
        view_mentions: list[Mention] = []
        executes = False
        all_clauses = clauses(toks)
        by_sentence: dict[int, list[Clause]] = {}
        for clause in all_clauses:
            by_sentence.setdefault(clause.sentence, []).append(clause)
        questions: set[int] = set()
        clause_ids: list[int] = []
        pending_cues: list[tuple[Sentence, bool, int]] = []
        runs_code = any(toks[_head(c.toks)].k in _RUN_VERBS for c in all_clauses
                        if _head(c.toks) < len(c.toks) and not c.question)
        for group in by_sentence.values():
            key = (tuple((c.toks, c.origin, c.question) for c in group), frozen_doc, runs_code)
            known = memo.get(key)
            if known is None:
                sentence = Sentence.of([t for c in group for t in c.toks])
                results = memo[key] = _read_group(group, doc, view, sentence, runs_code)
            else:
                results = [_relabelled(r, view) for r in known]
            first_clause = len(clause_ids)
            clause_ids.extend(range(first_clause, first_clause + len(results)))
            for n, r in enumerate(results):
                view_mentions.extend(replace(m, clause=first_clause + n) for m in r.mentions)
                if r.info:
                    questions.add(first_clause + n)
                defers |= r.defers
                composes |= r.composes
                executes |= r.executes
            if group[-1].question and not _is_tag(group[-1]):
                questions.add(first_clause + len(results) - 1)
            if any(_negated_execution(c.toks) for c in group):
                # "Prépare le virement mais ne le valide pas": prepared, explicitly not run.
                clause_range = range(first_clause, first_clause + len(results))
                view_mentions = [
                    replace(m, mood="content", why="prepared but explicitly not to be run")
                    if m.why == PREPARED and m.clause in clause_range else m
                    for m in view_mentions
                ]
            if group[-1].question and any(r.info for r in results):
                # "Supprimer ou effacer : quel verbe est le plus correct ?": the infinitives
                # debated by the question are words, not orders.
                for n, clause in enumerate(group):
                    if not results[n].info and not _starts(clause.toks, F.REQUEST_FRAMES, 0):
                        marked = first_clause + n
                        view_mentions = [
                            replace(m, mood="question", why="debated in a question")
                            if m.clause == marked and m.counted else m
                            for m in view_mentions
                        ]
            retracted = next((n for n, clause in enumerate(group) if _find(
                clause.toks, F.RETRACTIONS, limit=1) >= 0), None)
            if retracted is not None:
                first_retracted = first_clause + retracted
                view_mentions = [
                    replace(m, mood="negated", why="retracted (oh wait, ...)")
                    if m.clause < first_retracted and m.counted else m
                    for m in view_mentions
                ]
            if not any(m.counted for r in results for m in r.mentions) and _instruction(results):
                sentence = Sentence.of([t for c in group for t in c.toks])
                pending_cues.append((sentence, group[-1].question, len(view_mentions)))
        asked = any(c.question for c in all_clauses)
        for sentence, question, _ in pending_cues:
            view_mentions.extend(_cue_mentions(sentence, question, view, asked and not question))
        if not any(m.counted for m in view_mentions):
            view_mentions.extend(_terse_bill(toks, all_clauses, view))
        if executes:
            promoted = [
                Mention(m.action, "unsure", m.word, f"{m.why}, then 'do it' asks for it",
                        m.disguise, m.hidden)
                if m.mood in ("question", "statement", "mentioned", "content", "reported",
                              "unsure")
                and m.action in RISKY else m
                for m in view_mentions
            ]
            if not any(m.action in RISKY for m in promoted) and "MONEY" in doc:
                promoted.append(Mention("PAYMENT", "unsure", "same again",
                                        "'do it again' about money", view.disguise, view.hidden))
            view_mentions = promoted
        if questions:
            # "I need to send a CV tomorrow. How long should the cover letter be?" The user's
            # own need is the background of a question in another sentence, not an order.
            view_mentions = [
                Mention(m.action, "statement", m.word, "the user's own need, stated before a "
                        "question", m.disguise, m.hidden)
                if m.self_wish and m.counted and (len(questions) > 1 or m.clause not in questions)
                else m
                for m in view_mentions
            ]
        mentions.extend(view_mentions)
    return Reading(tuple(mentions), defers, composes)
