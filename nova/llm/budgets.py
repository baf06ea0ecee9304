"""Spend budgets per identity, sphere or provider over calendar windows in UTC.

A budget is checked *before* a call with its estimated cost, so a request that would cross a
hard limit is refused instead of discovered on the invoice; crossing a soft limit lets the call
through and raises an alert. Windows are calendar day, ISO week (Monday) and month in UTC; spend
recorded in an earlier window simply stops counting when a new window starts, which is the
reset. Spend state is plain dicts (``{key: {"window_start": iso, "spent_usd": x}}``) so it can
move into a shared table unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from nova.errors import ConfigError

Scope = Literal["identity", "sphere", "provider"]
Period = Literal["day", "week", "month"]
BudgetStatus = Literal["ok", "alert", "blocked"]
SpendState = dict[str, dict[str, Any]]
EACH = "*"  # a budget whose subject is "*" applies to every subject separately


@dataclass(frozen=True)
class Budget:
    """``hard_usd`` blocks; reaching ``soft_usd`` alerts. Both apply per window."""

    name: str
    scope: Scope
    subject: str
    period: Period
    soft_usd: float
    hard_usd: float

    def __post_init__(self) -> None:
        if self.period not in ("day", "week", "month"):
            raise ConfigError(f"budget {self.name!r}: unknown period {self.period!r}")
        if self.scope not in ("identity", "sphere", "provider"):
            raise ConfigError(f"budget {self.name!r}: unknown scope {self.scope!r}")
        if not 0 <= self.soft_usd <= self.hard_usd:
            raise ConfigError(f"budget {self.name!r}: need 0 <= soft_usd <= hard_usd")


@dataclass(frozen=True)
class BudgetAlert:
    budget: str
    subject: str
    spent_usd: float
    limit_usd: float


@dataclass(frozen=True)
class BudgetCheck:
    """``blocked`` names the budget that said no; ``alerts`` lists soft limits crossed."""

    status: BudgetStatus
    budget: str | None = None
    spent_usd: float = 0.0
    limit_usd: float = 0.0
    alerts: tuple[BudgetAlert, ...] = ()


OK = BudgetCheck("ok")


def window_start(period: Period, now: datetime) -> datetime:
    """Start of the calendar window holding ``now``, in UTC (``now`` must be timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("budget windows need a timezone-aware datetime")
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def spend_key(budget: Budget, subject: str) -> str:
    return f"{budget.name}:{subject}"


def _applicable(
    budgets: Iterable[Budget], subjects: Mapping[str, str]
) -> Iterable[tuple[Budget, str]]:
    for budget in budgets:
        subject = subjects.get(budget.scope)
        if subject is not None and budget.subject in (EACH, subject):
            yield budget, subject


def spent_in_window(
    spend: Mapping[str, Mapping[str, Any]], budget: Budget, subject: str, now: datetime
) -> float:
    entry = spend.get(spend_key(budget, subject))
    if entry is None or entry["window_start"] != window_start(budget.period, now).isoformat():
        return 0.0
    return float(entry["spent_usd"])


def check_budgets(
    budgets: Iterable[Budget],
    spend: Mapping[str, Mapping[str, Any]],
    subjects: Mapping[str, str],
    estimated_cost_usd: float,
    now: datetime,
) -> BudgetCheck:
    """Would spending ``estimated_cost_usd`` now stay within every applicable budget?

    ``subjects`` maps scope to subject, e.g. ``{"identity": "abc", "provider": "openai"}``.
    """
    alerts: list[BudgetAlert] = []
    for budget, subject in _applicable(budgets, subjects):
        spent = spent_in_window(spend, budget, subject, now)
        projected = spent + estimated_cost_usd
        if spent >= budget.hard_usd or projected > budget.hard_usd:
            return BudgetCheck("blocked", budget.name, spent, budget.hard_usd, tuple(alerts))
        if projected >= budget.soft_usd:
            alerts.append(BudgetAlert(budget.name, subject, spent, budget.soft_usd))
    if alerts:
        first = alerts[0]
        return BudgetCheck("alert", first.budget, first.spent_usd, first.limit_usd, tuple(alerts))
    return OK


def record_spend(
    budgets: Iterable[Budget],
    spend: Mapping[str, Mapping[str, Any]],
    subjects: Mapping[str, str],
    cost_usd: float,
    now: datetime,
) -> SpendState:
    """A new spend state with ``cost_usd`` charged to every applicable budget's window."""
    updated: SpendState = {k: dict(v) for k, v in spend.items()}
    for budget, subject in _applicable(budgets, subjects):
        spent = spent_in_window(spend, budget, subject, now)
        updated[spend_key(budget, subject)] = {
            "window_start": window_start(budget.period, now).isoformat(),
            "spent_usd": round(spent + cost_usd, 9),
        }
    return updated


class BudgetBook:
    """The budgets plus their spend state, for callers that want one object to hand around."""

    def __init__(
        self, budgets: Iterable[Budget], spend: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        self.budgets = tuple(budgets)
        names = [b.name for b in self.budgets]
        if len(set(names)) != len(names):
            raise ConfigError("budget names must be unique")
        self.spend: SpendState = {k: dict(v) for k, v in (spend or {}).items()}

    def check(
        self, subjects: Mapping[str, str], estimated_cost_usd: float, now: datetime
    ) -> BudgetCheck:
        return check_budgets(self.budgets, self.spend, subjects, estimated_cost_usd, now)

    def record(self, subjects: Mapping[str, str], cost_usd: float, now: datetime) -> None:
        self.spend = record_spend(self.budgets, self.spend, subjects, cost_usd, now)

    def scope_of(self, name: str) -> Scope:
        for budget in self.budgets:
            if budget.name == name:
                return budget.scope
        raise ConfigError(f"unknown budget {name!r}")
