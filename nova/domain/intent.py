"""Lane A: what does this request want to do, and how risky is that?

The classification is deterministic keyword/regex tables in English and French (the product is
French-origin), not a model: governance downstream must be explainable and replayable, and the
same prompt must always give the same intent. Every match leaves a reason naming the rule that
fired, so an auditor can see why a request was stopped.

Risk order of actions, lowest to highest (``ACTION_RISK_ORDER``)::

    READ < WRITE < SEND < DELETE < TRANSFER < PAYMENT

READ and WRITE stay within the identity's own data; SEND lets data leave it; DELETE destroys
data; TRANSFER and PAYMENT move money. When a prompt matches several action tables the
riskiest one wins, because under-estimating risk skips a human checkpoint while over-estimating
it only asks for one.

A client may declare an action and a task type. The declared action is a hint that can only
*raise* the risk (final action = max(classified, declared)): a client that says READ for "delete
my files" must not switch governance off. The declared task type is used only when the text
gave no task evidence at all, for the same reason (rules may match on task types). Unknown
declared values are ignored with a reason; the gateway is where they are rejected.

Confidence (0..1) is a documented heuristic, not a probability: the task part is 0.9 when one
task table matched, 0.7 when several did (priority decided), 0.5 when none did; the action part
is 0.9 when an action table matched, 0.6 when the action defaulted to READ, 1.0 when the client
declared an action at least as risky as the classified one. Confidence is the lower of the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, get_args

from nova.domain.textnorm import fold

TaskType = Literal["code", "creative", "analysis", "search", "translation", "general"]
Action = Literal["READ", "WRITE", "SEND", "DELETE", "TRANSFER", "PAYMENT"]

TASK_TYPES: Final[frozenset[str]] = frozenset(get_args(TaskType))
ACTION_RISK_ORDER: Final[tuple[Action, ...]] = (
    "READ",
    "WRITE",
    "SEND",
    "DELETE",
    "TRANSFER",
    "PAYMENT",
)
CHECKPOINT_ACTIONS: Final[frozenset[Action]] = frozenset({"DELETE", "SEND", "TRANSFER", "PAYMENT"})

_RANK: Final[dict[str, int]] = {action: rank for rank, action in enumerate(ACTION_RISK_ORDER)}


@dataclass(frozen=True, slots=True)
class Intent:
    """The classified intent of one request; ``reasons`` name every rule that fired."""

    task_type: TaskType
    action: Action
    confidence: float
    reasons: tuple[str, ...]


def _rx(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


# Tables are matched against ``fold(prompt)``: lowercase, no accents. Stems with ``\w*`` cover
# French conjugations (supprimer, supprime, supprimez, suppression).
_ACTION_TABLE: Final[tuple[tuple[Action, tuple[re.Pattern[str], ...]], ...]] = (
    (
        "PAYMENT",
        _rx(
            r"\bpay(?:s|ing|ment|ments)?\b(?!\s+attention)",
            r"\bpaid\b",
            r"\bpa(?:yer|ie|ye|ies|yez|iement|iements)\b",
            r"\binvoices?\b",
            r"\bfactur\w*",
            r"\breglements?\b",
            r"\b(?:buy|buys|buying|bought|purchas\w*|order(?:s|ing)?\s+\d)",
            r"\b(?:achet\w*|achat\w*|command(?:er|ez|e)\s+\d)",
            r"\bsubscrib\w*\s+to\b",
        ),
    ),
    (
        "TRANSFER",
        _rx(
            r"\btransfer(?!\s+learning)\w*",
            r"\bvirements?\b",
            r"\bwire\s+(?:money|funds|\$|\d)",
            r"\bmove\s+(?:the\s+)?(?:funds|money)\b",
            r"\bdeplac\w*\s+(?:les\s+|des\s+)?fonds\b",
        ),
    ),
    (
        "DELETE",
        _rx(
            r"\bdelet\w*",
            r"\bremov\w*",
            r"\berase\w*",
            r"\bwipe\w*",
            r"\bpurge\w*",
            r"\bsupprim\w*",
            r"\beffac\w*",
            r"\bdrop\s+(?:table|database|schema)\b",
            r"\brm\s+-rf\b",
        ),
    ),
    (
        "SEND",
        _rx(
            r"\bsend\w*",
            r"\bsent\b",
            r"^e-?mail\b",
            r"\be-?mail\s+(?:it|this|that|these|them|him|her|us|me|the|to|a|an)\b",
            r"\bpost\s+(?:it\s+|this\s+)?(?:to|on)\b",
            r"\benvo(?:i|y)\w*",
            r"\btransmet\w*",
            r"\bforward\w*\s+(?:it|this|that|these|them|the|to|a|an)\b",
            r"\breply\s+(?:to|all)\b",
            r"\bshare\s+(?:it|this|that|these|them|the)\b.*\bwith\b",
            r"\btransf[eè]r\w*\s+(?:ce|cet|cette|ces)\s+(?:mail|message|courriel)",
            r"\bpubli(?:er|e|ez)\b",
        ),
    ),
    (
        "WRITE",
        _rx(
            r"\bwrit(?:e|es|ing)\b",
            r"\bcreat\w*",
            r"\bupdat\w*",
            r"\bmodif\w*",
            r"\bedit\w*",
            r"\binsert\w*",
            r"\brename\w*",
            r"\becri(?:re|s|t|vez|ve)\b",
            r"\bcre(?:er|e|es|ez)\b",
            r"\bmet(?:s|tre|tez)\s+a\s+jour\b",
            r"\bajout\w*",
        ),
    ),
)

# Priority order decides when several task tables match: "translate this python function" is
# a translation of code, routed as code because code needs the stronger model.
_TASK_TABLE: Final[tuple[tuple[TaskType, tuple[re.Pattern[str], ...]], ...]] = (
    (
        "code",
        _rx(
            r"\bcode\b",
            r"\bfunctions?\b",
            r"\bfonctions?\b",
            r"\bbugs?\b",
            r"\bpython\b",
            r"\bstack\s*trace\b",
            r"\btraceback\b",
            r"\bsql\b",
            r"\bjavascript\b|\btypescript\b",
            r"\bcompile\w*",
            r"\bregex\b",
        ),
    ),
    (
        "translation",
        _rx(r"\btranslat\w*", r"\btradu\w*", r"\bin\s+(?:english|french)\b", r"\ben\s+anglais\b"),
    ),
    (
        "search",
        _rx(
            r"\bsearch\w*",
            r"\bfind\b",
            r"\blook\s+up\b",
            r"\blookup\b",
            r"\brecherch\w*",
            r"\btrouve\w*",
            r"\bcherche\w*",
        ),
    ),
    (
        "analysis",
        _rx(
            r"\banaly[sz]\w*",
            r"\bsummari[sz]\w*",
            r"\bsummary\b",
            r"\bcompar\w*",
            r"\bresum\w*",
            r"\bsynthes\w*",
            r"\bevaluat\w*|\bevalu\w*",
        ),
    ),
    (
        "creative",
        _rx(
            r"\bpoem\w*",
            r"\bpoeme\w*",
            r"\bstor(?:y|ies)\b",
            r"\bhistoire\w*",
            r"\bslogan\w*",
            r"\blyrics\b",
            r"\bchanson\w*",
            r"\bconte\b",
        ),
    ),
)


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


def parse_task_type(value: str) -> TaskType | None:
    """A declared task type in canonical form, or None when it is not a known task type."""
    candidate = value.strip().lower()
    for task in get_args(TaskType):
        if task == candidate:
            return task  # type: ignore[no-any-return]
    return None


def requires_checkpoint(action: Action) -> bool:
    """True for actions with effects outside the conversation that a human must approve."""
    return action in CHECKPOINT_ACTIONS


def _classify_action(folded: str, reasons: list[str]) -> Action | None:
    found: Action | None = None
    for action, patterns in _ACTION_TABLE:
        for pattern in patterns:
            match = pattern.search(folded)
            if match:
                reasons.append(f"action {action}: matched {match.group(0)!r}")
                found = action if found is None else riskier(found, action)
                break
    return found


def _classify_task(folded: str, reasons: list[str]) -> list[TaskType]:
    matched: list[TaskType] = []
    for task, patterns in _TASK_TABLE:
        for pattern in patterns:
            match = pattern.search(folded)
            if match:
                reasons.append(f"task {task}: matched {match.group(0)!r}")
                matched.append(task)
                break
    return matched


def classify(prompt: str, declared_action: str | None, declared_task: str | None) -> Intent:
    """Classify a prompt; a declared action can raise the risk but never lower it."""
    folded = fold(prompt)
    reasons: list[str] = []

    classified = _classify_action(folded, reasons)
    action: Action = classified or "READ"
    action_conf = 0.9 if classified else 0.6
    if classified is None:
        reasons.append("action READ: no action keyword matched (default)")

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

    tasks = _classify_task(folded, reasons)
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
    )
