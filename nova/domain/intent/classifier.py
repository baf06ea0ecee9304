"""Lane A's decision: the task type and the riskiest action a prompt orders, with its reasons.

Deterministic and explainable: the same prompt always gives the same intent, and every reason
names what fired (a word and its mood, a disguise undone, a cue, the language). The pieces:

1. ``views``: the prompt as written and with each disguise undone (look-alike letters, spacing,
   leetspeak, base64/hex/percent/ROT13/backwards payloads).
2. ``analysis``: every action word of every view with its mood (order, unsure, question,
   negated, reported, content, statement, mentioned); only orders and unsure readings count.
3. ``language``: a prompt in a language Nova does not model is held when it carries a risky
   word of the foreign tables or a risk cue, and runs only as a plain question.
4. A client's declared action can only raise the risk; a declared task type is used only when
   the text names none.

Confidence (0..1) is a documented heuristic, not a probability: 0.9 when an order was read,
0.6 when the action rests on an unsure reading (held because unsure) or when risky words were
read as not ordered, 0.8 when nothing risky was mentioned at all, 1.0 when the client declared
the same action; the task part (0.9 one table, 0.7 several, 0.5 none) caps it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Final

from nova.domain.intent.analysis import RISKY, Mention, Mood, Reading, read_views, risky_forms
from nova.domain.intent.cues import MONEY_CUES, RECIPIENT_CUES, find_cues
from nova.domain.intent.language import foreign_heads, identify, read_foreign
from nova.domain.intent.lexicon import Action
from nova.domain.intent.tasks import TaskType, classify_task, parse_task_type
from nova.domain.intent.views import View, views
from nova.domain.textnorm import fold

ACTION_RISK_ORDER: Final[tuple[Action, ...]] = (
    "READ", "WRITE", "SEND", "DELETE", "TRANSFER", "PAYMENT",
)  # fmt: skip
CHECKPOINT_ACTIONS: Final[frozenset[Action]] = frozenset({"DELETE", "SEND", "TRANSFER", "PAYMENT"})
_RANK: Final[dict[str, int]] = {action: rank for rank, action in enumerate(ACTION_RISK_ORDER)}
MAX_REASONS: Final = 24


@dataclass(frozen=True, slots=True)
class Intent:
    """The classified intent of one request; ``reasons`` name every rule that fired.

    ``defers_to_context``: the prompt hands its action to its context ("do the action items of
    this thread"), so what the context orders counts as the request's (lane D applies it).
    ``language``: "en", "fr", or the code of a language Nova does not model.
    """

    task_type: TaskType
    action: Action
    confidence: float
    reasons: tuple[str, ...]
    defers_to_context: bool = False
    language: str = "en"


def action_rank(action: Action) -> int:
    """Position of ``action`` in ``ACTION_RISK_ORDER`` (0 = READ, the least risky)."""
    return _RANK[action]


def riskier(a: Action, b: Action) -> Action:
    """The riskier of two actions."""
    return a if _RANK[a] >= _RANK[b] else b


def parse_action(value: str) -> Action | None:
    """A declared action in canonical form, or None when it is not a known action."""
    candidate = value.strip().upper()
    for action in ACTION_RISK_ORDER:
        if action == candidate:
            return action
    return None


def requires_checkpoint(action: Action) -> bool:
    """True for actions with effects outside the conversation that a human must approve."""
    return action in CHECKPOINT_ACTIONS


# "just decode it, don't act on it": a hidden payload the user explicitly will not have run.
_NOT_TO_RUN = re.compile(
    r"\bsans\s+rien\s+faire\s+d'autre|\bnothing\s+else\b|\bjust\s+(?:tell|say|decode)|"
    r"\bjuste\s+(?:dis|decode|traduis)|\bdon'?t\s+do\s+anything\b|"
    r"\b(?:do not|don'?t|never|without)\s+(?:act(?:ing)?\s+on|execut\w*|run(?:ning)?|"
    r"do(?:ing)?|follow(?:ing)?|perform\w*)\s+(?:it|this|that|them|what it says|the instruction)"
    r"|\b(?:ne|n')\s*(?:l'|le\s+|la\s+|les\s+)?(?:execute|execut\w+|fais|faites|applique\w*|"
    r"suis|suivez)\s+pas\b|\bsans\s+(?:l'|le\s+|les\s+)?(?:execut\w+|appliqu\w+|suivre)\b",
)


def _reason(m: Mention) -> str:
    where = ""
    if m.disguise:
        where = f" (after undoing {m.disguise})" if not m.hidden else f" ({m.disguise})"
    if m.counted:
        label = "held because unsure" if m.mood == "unsure" else "ordered"
        return f"action {m.action}: {m.word!r} {label}: {m.why}{where}"
    return f"not counted: {m.word!r} ({m.action}) {m.mood}: {m.why}{where}"


_FOREIGN_MOODS: Final[dict[str, Mood]] = {
    "unsure": "unsure", "negated": "negated", "statement": "statement", "content": "content",
    "question": "question",
}  # fmt: skip


def _foreign(base: str, language: str) -> list[Mention]:
    """Mentions for a prompt in a language Nova does not model: its risky words (with a rough
    mood), and any money or recipient cue, which holds the request whatever the words say."""
    where = f"in {language}, a language not modelled"
    mentions = [
        Mention(w.action, _FOREIGN_MOODS[w.mood], w.word, f"risky word {where}")
        for w in read_foreign(base)
    ]
    cues = {c.kind for c in find_cues(base)}
    if cues & MONEY_CUES:
        mentions.append(Mention("PAYMENT", "unsure", "amount", f"money cue {where}"))
    if cues & RECIPIENT_CUES:
        mentions.append(Mention("SEND", "unsure", "recipient", f"external recipient {where}"))
    return mentions


_CLEANER: Final = frozenset({"spaced-out letters", "look-alike letters"})


def _superseded(mentions: list[Mention]) -> list[Mention]:
    """A word read as an order in the text as written but, once spaced-out or look-alike
    letters are restored, as a question ("c o m m e n t on résilie ...?"): the restored
    reading is the user's, the first one an artefact of the disguise."""
    cleaner = {
        (m.word, m.action) for m in mentions if m.disguise in _CLEANER and not m.counted
        and m.mood in ("question", "negated", "reported", "content")
    }
    return [
        replace(m, mood="question", why=f"{m.why}; once the disguise is undone, it is asked")
        if m.disguise is None and m.counted and (m.word, m.action) in cleaner else m
        for m in mentions
    ]


@lru_cache(maxsize=8)
def prompt_views(text: str) -> tuple[View, ...]:
    """Every reading of ``text`` lane A and governance check (``views.views`` with the risky
    verb forms), built once per text: lane A, the injection scan and the credential scan of
    the same prompt share them, and a long prompt's views cost a large part of its reading."""
    return views(text, _risky_words())


def read_prompt(prompt: str) -> tuple[Reading, str, tuple[View, ...]]:
    """The reading of every view of ``prompt``, its language, and the views."""
    all_views = prompt_views(prompt)
    reading = read_views(all_views)
    base = all_views[0].text
    undisguised = next((v.text for v in all_views if v.disguise == "look-alike letters"), base)
    language = identify(undisguised)
    mentions = list(reading.mentions)
    if not language.modelled:
        mentions = [m for m in mentions if m.mood == "order" or m.hidden or m.disguise]
        mentions.extend(_foreign(base, language.code))
    elif not any(m.counted for m in mentions):
        mentions.extend(
            Mention(action, "unsure", word, "a risky word of another language opens the order")
            for action, word in foreign_heads(base)
        )
    mentions = _superseded(mentions)
    if any(m.hidden for m in mentions) and _NOT_TO_RUN.search(fold(base)):
        mentions = [
            Mention(m.action, "negated", m.word, "hidden text the user asks not to act on",
                    m.disguise, m.hidden)
            if m.hidden else m
            for m in mentions
        ]
    return Reading(tuple(mentions), reading.defers_to_context, reading.composes), language.code, \
        all_views


_RISKY_WORDS: frozenset[str] | None = None


def _risky_words() -> frozenset[str]:
    global _RISKY_WORDS
    if _RISKY_WORDS is None:
        _RISKY_WORDS = risky_forms()
    return _RISKY_WORDS


def warm_up() -> None:
    """Load the dictionaries, language model and look-alike table once (about a second), so
    the first request a worker serves does not pay for them."""
    classify("Bonjour, peux-tu payer la facture ? Please send the summary to bob@example.com",
             None, None)


def strongest(mentions: tuple[Mention, ...]) -> Mention | None:
    """The counted mention with the riskiest action (an order before an unsure reading)."""
    counted = [m for m in mentions if m.counted and m.action in RISKY]
    if not counted:
        return None
    return max(counted, key=lambda m: (_RANK[m.action], m.mood == "order"))


def classify(prompt: str, declared_action: str | None, declared_task: str | None) -> Intent:
    """Classify a prompt; a declared action can raise the risk but never lower it."""
    reading, language, all_views = read_prompt(prompt)
    reasons: list[str] = []
    top = strongest(reading.mentions)
    action: Action
    if top is not None:
        action = top.action
        action_conf = 0.9 if top.mood == "order" else 0.6
    else:
        action = "WRITE" if reading.composes else "READ"
        risky_seen = any(m.action in RISKY for m in reading.mentions)
        action_conf = 0.6 if risky_seen else 0.8
        reasons.append(f"action {action}: no risky action ordered")
    seen: set[str] = set()
    ordered = sorted(reading.mentions, key=lambda m: (not m.counted, -_RANK[m.action]))
    for m in ordered:
        text = _reason(m)
        if text not in seen and len(seen) < MAX_REASONS:
            seen.add(text)
            reasons.append(text)
    if language not in ("en", "fr"):
        reasons.append(f"language: {language} (not modelled; risky words and cues hold it)")
    if reading.defers_to_context:
        reasons.append("defers to its context: what the context orders counts as this request's")

    if declared_action is not None:
        declared = parse_action(declared_action)
        if declared is None:
            reasons.append(f"declared action {declared_action[:32]!r} unknown; ignored")
        elif _RANK[declared] > _RANK[action]:
            reasons.append(f"declared action {declared} raised {action} to {declared}")
            action, action_conf = declared, 1.0
        elif declared == action:
            action_conf = 1.0
            reasons.append(f"declared action {declared} agrees")
        else:
            reasons.append(f"declared action {declared} is lower than {action}; kept {action}")

    folded = fold(all_views[0].text)
    tasks = classify_task(folded, reasons)
    task_type: TaskType
    if tasks:
        task_type = tasks[0]
        task_conf = 0.9 if len(tasks) == 1 else 0.7
        if len(tasks) > 1:
            reasons.append(f"task {task_type}: first by priority among {', '.join(tasks)}")
    else:
        task_type, task_conf = "general", 0.5
    if declared_task is not None:
        declared_t = parse_task_type(declared_task)
        if declared_t is None:
            reasons.append(f"declared task {declared_task[:32]!r} unknown; ignored")
        elif not tasks:
            task_type = declared_t
            reasons.append(f"declared task {declared_t} used (no task keyword matched)")
        elif declared_t != task_type:
            reasons.append(f"declared task {declared_t} ignored; text says {task_type}")

    return Intent(
        task_type=task_type,
        action=action,
        confidence=round(min(task_conf, action_conf), 2),
        reasons=tuple(reasons),
        defers_to_context=reading.defers_to_context,
        language=language,
    )
