"""The spend ledger: totals per calendar window, in any arrival order, derived into budgets."""

from datetime import UTC, datetime

from nova.llm.budgets import Budget, BudgetBook
from nova.records import Event, LlmCall
from streams.spend import SpendLedger, charge_of, tracking_start

MON = datetime(2026, 6, 1, 9, tzinfo=UTC)  # a Monday, first of the month
WED = datetime(2026, 6, 3, 9, tzinfo=UTC)
NEXT_MONTH = datetime(2026, 7, 2, 9, tzinfo=UTC)


def budget(name="b1", scope="identity", subject="alice", period="month", soft=1.0, hard=2.0):
    return Budget(name, scope, subject, period, soft, hard)


def test_charges_add_up_per_window_and_period():
    ledger = SpendLedger()
    ledger.add({"identity": "alice", "provider": "openai"}, 0.5, MON)
    ledger.add({"identity": "alice", "provider": "anthropic"}, 0.25, WED)
    assert ledger.spent("identity", "alice", "month", WED) == 0.75
    assert ledger.spent("identity", "alice", "week", WED) == 0.75
    assert ledger.spent("identity", "alice", "day", WED) == 0.25
    assert ledger.spent("provider", "openai", "month", WED) == 0.5


def test_a_new_window_resets_and_a_late_old_charge_is_ignored():
    ledger = SpendLedger()
    ledger.add({"identity": "alice"}, 1.0, MON)
    ledger.add({"identity": "alice"}, 0.1, NEXT_MONTH)
    ledger.add({"identity": "alice"}, 5.0, WED)  # arrives late from another partition
    assert ledger.spent("identity", "alice", "month", NEXT_MONTH) == 0.1
    assert ledger.spent("identity", "alice", "month", WED) == 0.0  # its window is gone


def test_book_spend_covers_named_and_each_subject_budgets():
    ledger = SpendLedger()
    ledger.add({"identity": "alice"}, 1.5, MON)
    ledger.add({"identity": "bob"}, 3.0, MON)
    named, each = budget("named"), budget("each", subject="*")
    book = BudgetBook([named, each], ledger.book_spend([named, each], WED))
    assert book.check({"identity": "alice"}, 0.1, WED).status == "alert"  # named: 1.6 >= soft
    blocked = book.check({"identity": "bob"}, 0.1, WED)
    assert (blocked.status, blocked.budget) == ("blocked", "each")


def test_budget_created_mid_window_sees_the_windows_spend():
    ledger = SpendLedger()
    ledger.add({"identity": "alice"}, 2.0, MON)  # before any budget existed
    b = budget(hard=2.0)
    assert BudgetBook([b], ledger.book_spend([b], WED)).check(
        {"identity": "alice"}, 0.0, WED).status == "blocked"


def test_charge_of_takes_only_successful_llm_calls_with_subjects():
    def ev(status, cost, kind="llm"):
        call = LlmCall(provider="openai", model="gpt-5.1", tokens_in=1, tokens_out=1,
                       cost_usd=cost, latency_ms=1.0, attempt=1, status=status)
        return Event(event_id="r/llm/1", kind=kind, request_id="r", identity_id="alice",
                     ts=int(WED.timestamp() * 1000), llm=call)

    charge = charge_of(ev("ok", 0.2), lambda i: "work" if i == "alice" else None)
    assert charge is not None
    assert dict(charge.subjects) == {"provider": "openai", "identity": "alice", "sphere": "work"}
    assert (charge.cost_usd, charge.at) == (0.2, WED)
    assert charge_of(ev("error", 0.2), lambda _: None) is None
    assert charge_of(ev("ok", 0.0), lambda _: None) is None


def test_tracking_starts_at_the_oldest_open_window():
    assert tracking_start(WED) == datetime(2026, 6, 1, tzinfo=UTC)
    sun = datetime(2026, 7, 5, 12, tzinfo=UTC)  # the week began on Monday 29 June
    assert tracking_start(sun) == datetime(2026, 6, 29, tzinfo=UTC)
