"""Task types: what kind of work a request is, for routing ("code" needs a stronger model).

Deterministic keyword tables in English and French, matched on the folded prompt. Unlike the
action, the task type carries no risk of its own, so a table is enough; rules may still match on
it, which is why a client's declared task type is used only when the text says nothing.
"""

from __future__ import annotations

import re
from typing import Final, get_args

from nova.domain.kinds import TaskType as TaskType

TASK_TYPES: Final[frozenset[str]] = frozenset(get_args(TaskType))


def _rx(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


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



def classify_task(folded: str, reasons: list[str]) -> list[TaskType]:
    """Task tables that match ``folded``, in priority order, each leaving a reason."""
    matched: list[TaskType] = []
    for task, patterns in _TASK_TABLE:
        for pattern in patterns:
            match = pattern.search(folded)
            if match:
                reasons.append(f"task {task}: matched {match.group(0)!r}")
                matched.append(task)
                break
    return matched


def parse_task_type(value: str) -> TaskType | None:
    """A declared task type in canonical form, or None when it is not a known task type."""
    candidate = value.strip().lower()
    for task in get_args(TaskType):
        if task == candidate:
            return task  # type: ignore[no-any-return]
    return None
