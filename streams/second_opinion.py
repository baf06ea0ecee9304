"""Lane D's optional second opinion: a classifier model asked what the request orders.

Off by default (``NOVA_INTENT_SECOND_OPINION``). When on, lane D asks a model with the
``classifier`` role, through lane F's machinery (router, health, limits, the identity's budgets,
fallbacks), what the *masked* prompt orders, before it decides. The answer can only raise lane
A's action (:func:`nova.domain.intent.second_opinion.with_second_opinion`): a model that is down,
slow, over budget or answering nonsense leaves lane A's reading as it was, and the reasons say
which of these happened. So the rules stay the decision, and the model can add a checkpoint but
never remove one.

Its calls are LLM events like lane F's (role ``classifier``, attempts numbered from 101 so their
rows never collide with lane F's attempts of the same request) and are charged to the identity.
A call cut by the time bound may still be billed by the provider without an event: the bound
protects the pipeline, not the invoice.
"""

from __future__ import annotations

import asyncio
from typing import Final

from nova.convert import intent_record
from nova.domain.intent.classifier import ACTION_RISK_ORDER, Intent, parse_action
from nova.domain.intent.lexicon import Action
from nova.domain.intent.second_opinion import (
    CLASSIFIER_MAX_TOKENS,
    CLASSIFIER_ROLE,
    classifier_messages,
    with_second_opinion,
)
from nova.llm.clients import Message
from nova.records import Event, PipelineRecord
from nova.records import Intent as IntentRecord
from streams.execution import ExecutionService

ATTEMPT_BASE: Final = 100  # the classifier's attempts are 101, 102, …; lane F's start at 1


async def second_opinion(
    record: PipelineRecord, execution: ExecutionService, timeout_s: float
) -> tuple[IntentRecord, tuple[Event, ...]]:
    """``record``'s intent after the classifier's opinion, and the LLM events of its calls."""
    read = record.intent
    assert read is not None, "lane A always sets the intent"
    intent = _domain(read)
    if intent is None:
        return _noted(read, f"not asked (unknown action {read.action!r})"), ()
    if intent.action == ACTION_RISK_ORDER[-1]:
        return _noted(read, f"not asked ({intent.action} is already the riskiest)"), ()
    prompt = record.encoded.messages[-1].content if record.encoded else ""
    if not prompt.strip():
        return _noted(read, "not asked (no masked prompt)"), ()
    messages: tuple[Message, ...] = tuple(
        {"role": m["role"], "content": m["content"]} for m in classifier_messages(prompt)
    )
    try:
        outcome, events = await asyncio.wait_for(
            execution.consult(record, CLASSIFIER_ROLE, messages,
                              max_tokens=CLASSIFIER_MAX_TOKENS, attempt_base=ATTEMPT_BASE),
            timeout_s,
        )
    except TimeoutError:
        return _noted(read, f"no answer within {timeout_s:g} s, ignored"), ()
    if outcome is None:
        return _noted(read, "no provider can serve the classifier role now, ignored"), ()
    completion = outcome.completion
    if completion is None:
        why = outcome.reason or outcome.status
        return _noted(read, f"no answer ({why}), ignored"), events
    source = f"{completion.provider}/{completion.model}"
    return intent_record(with_second_opinion(intent, completion.text, source)), events


def _noted(read: IntentRecord, why: str) -> IntentRecord:
    """``read`` unchanged but for a reason saying why the opinion did not count."""
    return read.model_copy(update={"reasons": (*read.reasons, f"second opinion: {why}")})


def _domain(record: IntentRecord) -> Intent | None:
    """The record's intent as the domain reads it; None for an action the domain does not know
    (never read as READ: that would lower it)."""
    action: Action | None = parse_action(record.action)
    if action is None:
        return None
    return Intent(
        task_type=record.task_type,
        action=action,
        confidence=record.confidence,
        reasons=tuple(record.reasons),
        defers_to_context=record.defers_to_context,
        language=record.language,
    )
