"""Budgets over calendar windows in UTC: ok, alert at the soft limit, blocked at the hard one."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from nova.errors import ConfigError
from nova.llm.budgets import (
    EACH,
    Budget,
    BudgetBook,
    check_budgets,
    record_spend,
    window_start,
)

NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("period", "now", "start"),
    [
        ("day", NOW, datetime(2026, 11, 25, tzinfo=UTC)),
        ("week", NOW, datetime(2026, 11, 23, tzinfo=UTC)),  # Monday
        ("month", NOW, datetime(2026, 11, 1, tzinfo=UTC)),
        ("week", datetime(2026, 11, 23, 0, 0, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)),
        ("month", datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        # 01:00 in UTC+2 is still the previous day in UTC
        (
            "day",
            datetime(2026, 12, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 11, 30, tzinfo=UTC),
        ),
        (
            "month",
            datetime(2026, 12, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 11, 1, tzinfo=UTC),
        ),
    ],
)
def test_windows_are_calendar_windows_in_utc(period, now, start):
    assert window_start(period, now) == start


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        window_start("day", datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


DAILY = Budget("abc-daily", "identity", "abc", "day", soft_usd=8.0, hard_usd=10.0)


def test_status_is_ok_then_alert_then_blocked():
    spend = record_spend([DAILY], {}, {"identity": "abc"}, 7.0, NOW)
    assert check_budgets([DAILY], spend, {"identity": "abc"}, 0.5, NOW).status == "ok"
    alert = check_budgets([DAILY], spend, {"identity": "abc"}, 1.5, NOW)
    assert (alert.status, alert.budget, alert.spent_usd, alert.limit_usd) == (
        "alert",
        "abc-daily",
        7.0,
        8.0,
    )
    blocked = check_budgets([DAILY], spend, {"identity": "abc"}, 3.5, NOW)
    assert (blocked.status, blocked.budget, blocked.limit_usd) == ("blocked", "abc-daily", 10.0)


def test_spend_resets_when_the_window_starts():
    spend = record_spend([DAILY], {}, {"identity": "abc"}, 9.99, NOW)
    assert check_budgets([DAILY], spend, {"identity": "abc"}, 1.0, NOW).status == "blocked"
    tomorrow = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    assert check_budgets([DAILY], spend, {"identity": "abc"}, 1.0, tomorrow).status == "ok"
    spend = record_spend([DAILY], spend, {"identity": "abc"}, 2.0, tomorrow)
    assert spend["abc-daily:abc"] == {"window_start": "2026-11-26T00:00:00+00:00", "spent_usd": 2.0}


def test_budgets_apply_only_to_their_scope_and_subject():
    spend = record_spend([DAILY], {}, {"identity": "xyz"}, 100.0, NOW)
    assert spend == {}
    assert check_budgets([DAILY], spend, {"sphere": "abc"}, 100.0, NOW).status == "ok"


def test_an_each_budget_tracks_every_subject_separately():
    each = Budget("per-identity", "identity", EACH, "month", soft_usd=1, hard_usd=2)
    spend = record_spend([each], {}, {"identity": "a"}, 1.5, NOW)
    assert check_budgets([each], spend, {"identity": "a"}, 1.0, NOW).status == "blocked"
    assert check_budgets([each], spend, {"identity": "b"}, 1.0, NOW).status == "alert"


def test_the_first_hard_limit_blocks_and_soft_limits_are_all_reported():
    team = Budget("team-week", "sphere", "research", "week", soft_usd=1, hard_usd=100)
    vendor = Budget("openai-month", "provider", "openai", "month", soft_usd=1, hard_usd=50)
    subjects = {"identity": "abc", "sphere": "research", "provider": "openai"}
    check = check_budgets([team, vendor], {}, subjects, 2.0, NOW)
    assert check.status == "alert"
    assert [a.budget for a in check.alerts] == ["team-week", "openai-month"]
    assert check_budgets([team, vendor], {}, subjects, 60.0, NOW).budget == "openai-month"


def test_recording_is_pure_and_returns_a_new_state():
    before = {"abc-daily:abc": {"window_start": "2026-11-25T00:00:00+00:00", "spent_usd": 1.0}}
    after = record_spend([DAILY], before, {"identity": "abc"}, 0.25, NOW)
    assert before["abc-daily:abc"]["spent_usd"] == 1.0
    assert after["abc-daily:abc"]["spent_usd"] == 1.25


def test_already_at_the_hard_limit_blocks_even_a_free_call():
    spend = record_spend([DAILY], {}, {"identity": "abc"}, 10.0, NOW)
    assert check_budgets([DAILY], spend, {"identity": "abc"}, 0.0, NOW).status == "blocked"


def test_book_wraps_state_and_validates_budgets():
    book = BudgetBook([DAILY])
    book.record({"identity": "abc"}, 9.0, NOW)
    assert book.check({"identity": "abc"}, 0.5, NOW).status == "alert"
    assert book.scope_of("abc-daily") == "identity"
    with pytest.raises(ConfigError, match="unique"):
        BudgetBook([DAILY, DAILY])
    with pytest.raises(ConfigError, match="soft_usd <= hard_usd"):
        Budget("bad", "identity", "abc", "day", soft_usd=5, hard_usd=1)
    with pytest.raises(ConfigError, match="unknown period"):
        Budget("bad", "identity", "abc", "year", soft_usd=1, hard_usd=5)  # type: ignore[arg-type]
