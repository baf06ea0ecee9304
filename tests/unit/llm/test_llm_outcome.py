"""Lane F's pure part (``nova.llm.outcome``): what a routing decision and an executor outcome
make of the record and its events, without a provider, a broker or a worker."""

from __future__ import annotations

from typing import Any

from nova.llm.budgets import BudgetAlert
from nova.llm.clients import Completion
from nova.llm.executor import Attempt, AttemptStatus, Outcome
from nova.llm.outcome import event_id, executed_record, outcome_events, route_request
from nova.llm.routing import Candidate, RoutingDecision
from nova.records import EncodedPrompt, Intent, Mask, Message, PipelineRecord

IBAN = "FR7630006000011234567890189"


def record() -> PipelineRecord:
    return PipelineRecord(
        request_id="r-1", identity_id="alice", user_id="u-alice", submitted_at=0,
        prompt=f"pay {IBAN}", role="assistant", status="in_flight",
        intent=Intent(task_type="code", action="PAYMENT", confidence=0.9),
        encoded=EncodedPrompt(
            messages=(Message(role="user", content="pay [IBAN_1]"),), token_estimate=4,
            masks=(Mask(placeholder="[IBAN_1]", kind="iban", value=IBAN, written=IBAN),)),
    )


DECISION = RoutingDecision(provider="openai", model="gpt", strategy="task", reasons=(),
                           chain=(Candidate("openai", "gpt"), Candidate("anthropic", "claude")))


def attempt(number: int, status: AttemptStatus, provider: str = "openai", **rest: Any) -> Attempt:
    return Attempt(request_id="r-1", number=number, provider=provider, model="m",
                   fallback_from=None, status=status, **rest)


def label(budget: str | None) -> str:
    return f"monthly ({budget})"


def test_the_route_request_carries_the_task_and_the_tokens_of_prompt_and_answer() -> None:
    request = route_request(record(), tokens=4, max_tokens=100)
    assert (request.task_type, request.role, request.strategy, request.estimated_tokens) == (
        "code", "assistant", "task", 104)


def test_the_answer_comes_back_unmasked_and_the_attempts_summed() -> None:
    outcome = Outcome(status="completed", cost_usd=0.5, attempts=(
        attempt(1, "error", error="HTTP 503", latency_ms=10.0),
        attempt(2, "ok", provider="anthropic", tokens_in=4, tokens_out=6, latency_ms=20.0)),
        completion=Completion("sent to [IBAN_1]", 4, 6, 0, 20.0, "anthropic", "claude"))
    done = executed_record(record(), outcome, DECISION, label)
    assert done.execution is not None
    assert done.execution.text == f"sent to {IBAN}"
    assert (done.execution.provider, done.execution.attempts, done.execution.latency_ms) == (
        "anthropic", 2, 30.0)
    assert (done.status, done.error) == ("completed", None)


def test_a_blocked_request_names_its_budget_in_the_error_and_in_an_alert() -> None:
    outcome = Outcome(status="budget_exceeded", attempts=(), budget="b-1",
                      alerts=(BudgetAlert("b-2", "alice", 8.0, 5.0),))
    done = executed_record(record(), outcome, DECISION, label)
    assert done.error == "budget exceeded: monthly (b-1)"
    events = outcome_events(record(), outcome, label)
    assert [(e.event_id, e.alert.alert_type if e.alert else None) for e in events] == [
        ("r-1/alert/0", "BUDGET_SOFT_LIMIT"), ("r-1/alert/budget", "BUDGET_EXCEEDED")]


def test_each_attempt_is_one_llm_event_with_a_deterministic_id() -> None:
    outcome = Outcome(status="failed", attempts=(attempt(1, "error"), attempt(2, "skipped")))
    events = outcome_events(record(), outcome, label, role="classifier")
    assert [e.event_id for e in events] == [event_id("r-1", 1), event_id("r-1", 2)]
    assert {e.llm.role for e in events if e.llm} == {"classifier"}
