"""Lane A: what does this request want to do, and how risky is that?

Deterministic and explainable (no model): governance downstream must be replayable, and the same
prompt must always give the same intent, every decision naming what fired. The package reads a
request the way a careful person would rather than matching keywords:

- ``views``: the text as written and with disguises undone (look-alike letters, zero-width and
  spacing tricks, leetspeak, base64/hex/percent/ROT13/backwards payloads);
- ``tokens``: words, French elisions and clitics, English contractions, cues as single tokens,
  clauses;
- ``lexicon`` and ``morphology``: bilingual verbs with their senses (chosen by their object)
  and every conjugation, tagged by form; action nouns; object classes;
- ``frames``: the words that make a verb an order, a question, a negation, a report or content
  to draft;
- ``analysis``: every action word with its mood; only orders and unsure readings count;
- ``language``: other languages are held when they carry risky words or cues;
- ``classifier``: the riskiest counted action, the task type, the reasons.

Risk order of actions, lowest to highest (``ACTION_RISK_ORDER``)::

    READ < WRITE < SEND < DELETE < TRANSFER < PAYMENT

When unsure between a risky and a safe reading, lane A holds: a needless question to an approver
costs less than an unapproved payment. A client's declared action can only raise the risk.
"""

from nova.domain.intent.classifier import (
    ACTION_RISK_ORDER,
    CHECKPOINT_ACTIONS,
    Intent,
    action_rank,
    classify,
    parse_action,
    prompt_views,
    read_prompt,
    requires_checkpoint,
    riskier,
    strongest,
    warm_up,
)
from nova.domain.intent.lexicon import Action
from nova.domain.intent.tasks import TASK_TYPES, TaskType, parse_task_type

__all__ = [
    "ACTION_RISK_ORDER",
    "CHECKPOINT_ACTIONS",
    "TASK_TYPES",
    "Action",
    "Intent",
    "TaskType",
    "action_rank",
    "classify",
    "parse_action",
    "parse_task_type",
    "prompt_views",
    "read_prompt",
    "requires_checkpoint",
    "riskier",
    "strongest",
    "warm_up",
]
