"""Report and CLI rendering are pure functions of their data: no ClickHouse needed."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from rich.console import Console

from analytics.access import SqlResult
from analytics.replay import Trail, default_database, parse_timestamp, render_trail
from analytics.report import (
    Report,
    Section,
    gather,
    parse_since,
    period_start,
    render_html,
    render_text,
    svg_bars,
)
from nova.cli.analytics import render_result


def _report() -> Report:
    return Report(
        start=date(2025, 1, 1), until=datetime(2025, 1, 8, 12, tzinfo=UTC), source="test",
        sections=[
            Section("cost_by_provider", "Cost by provider and model", "Q1?",
                    ["provider", "model", "calls", "cost_usd"],
                    [["anthropic", "claude", 10, 1.25], ["<script>", "m&m", 2, 0.5]],
                    "bars:provider,model:cost_usd"),
            Section("lane_latency", "Lane latency (ms)", "Q2?",
                    ["lane", "events", "p50_ms", "p95_ms", "p99_ms"],
                    [["A", 5, 1.0, 2.0, 3.0], ["B", 5, 4.0, 5.0, 6.0]], "latency"),
            Section("denials", "Governance denials by rule", "Q3?", [], [], "bars:rule:denials"),
        ],
        totals={"cost_usd": 1.75, "calls": 12},
    )


@pytest.mark.parametrize(("text", "expected"), [
    ("7d", timedelta(days=7)), ("24h", timedelta(hours=24)), ("2w", timedelta(weeks=2)),
    (" 3d ", timedelta(days=3)),
])
def test_parse_since(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["7", "0d", "-1d", "7x", "", "1.5d"])
def test_parse_since_refuses_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="24h, 7d or 2w"):
        parse_since(text)


def test_period_starts_at_midnight_utc() -> None:
    now = datetime(2025, 1, 8, 9, 30, tzinfo=UTC)
    assert period_start(now, timedelta(days=7)) == date(2025, 1, 1)


def test_html_is_self_contained_and_escaped() -> None:
    page = render_html(_report())
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 2  # cost bars and latency groups; empty section has none
    assert "<script" not in page.replace("&lt;script&gt;", "")
    assert "&lt;script&gt;" in page
    assert "m&amp;m" in page
    # Nothing is fetched: the only URL is the SVG namespace, which is an identifier.
    urls = set(re.findall(r"https?://[^\"' )]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}
    assert "No data in the period." in page
    assert "$1.7500" in page


def test_svg_bars_scale_to_the_largest_value() -> None:
    svg = svg_bars(["a", "b"], [2.0, 1.0], width=500)
    widths = [float(w) for w in re.findall(r'<rect x="220" y="\d+" width="([\d.]+)"', svg)]
    assert widths[0] == pytest.approx(2 * widths[1])


def test_text_report_has_every_section() -> None:
    console = Console(record=True, width=160, file=io.StringIO())
    render_text(_report(), console)
    text = console.export_text()
    for title in ("Cost by provider and model", "Lane latency (ms)"):
        assert title in text
    assert "Governance denials by rule: no data in the period" in text


class FakeAccess:
    where = "fake"

    def __init__(self) -> None:
        self.sql: list[str] = []

    def run(self, sql: str) -> SqlResult:
        self.sql.append(sql)
        if "v_cost_daily AS v WHERE day" in sql and "provider, model" in sql:
            return SqlResult(["provider", "model", "calls", "cost_usd"], [["p", "m", 3, 0.3]])
        return SqlResult([], [])

    def close(self) -> None:
        pass


def test_gather_runs_every_section_for_the_period() -> None:
    access = FakeAccess()
    report = gather(access, timedelta(days=7), now=datetime(2025, 1, 8, tzinfo=UTC))
    assert len(report.sections) == len(access.sql) == 9
    assert all("2025-01-01" in sql for sql in access.sql)
    assert report.totals == {"cost_usd": 0.3, "calls": 3}


def test_render_result_formats() -> None:
    result = SqlResult(["a", "b"], [[1, "x,y"], [None, datetime(2025, 1, 1, tzinfo=UTC)]])
    rows = list(csv.reader(io.StringIO(render_result(result, "csv"))))
    assert rows == [["a", "b"], ["1", "x,y"], ["", "2025-01-01T00:00:00+00:00"]]
    assert json.loads(render_result(result, "json"))[0] == {"a": 1, "b": "x,y"}
    table = render_result(result, "table")
    assert "NULL" in table
    assert "2 rows" in table


def test_parse_timestamp_and_default_database() -> None:
    assert parse_timestamp("1735689600000") == 1_735_689_600_000
    assert parse_timestamp("2025-01-01T00:00:00Z") == 1_735_689_600_000
    assert parse_timestamp("2025-01-01T00:00:00") == 1_735_689_600_000
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_timestamp("yesterday")
    assert default_database(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "replay_20250102_030405"


def test_trail_of_an_unknown_request_says_so() -> None:
    console = Console(record=True, width=120, file=io.StringIO())
    render_trail(Trail("nope"), console)
    assert "no record of request nope" in console.export_text()
