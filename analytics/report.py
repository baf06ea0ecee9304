"""``nova report``: the weekly cost and latency report, as text or a self-contained HTML page.

Gathering and rendering are apart: :func:`gather` runs read-only SQL through whatever
:class:`~analytics.access.SqlAccess` is available (gateway, server, or embedded ClickHouse),
and the renderers are pure functions of the :class:`Report` they get, so they are unit-tested
without ClickHouse. The period is whole UTC days: ``--since 7d`` covers the day seven days ago
from midnight up to now, matching the day grain of the named views it reads.

The HTML page has no scripts and loads nothing: charts are inline SVG drawn here, so the page
can be mailed, archived or opened offline.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from analytics.access import SqlAccess

_DURATION = re.compile(r"^\s*(\d+)\s*([dhw])\s*$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_since(text: str) -> timedelta:
    """``7d``, ``24h``, ``2w`` → a timedelta; ValueError naming the accepted forms otherwise."""
    m = _DURATION.match(text)
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"--since {text!r}: use a positive number of hours, days or weeks, "
                         "such as 24h, 7d or 2w")
    return int(m.group(1)) * _UNITS[m.group(2)]


def period_start(now: datetime, since: timedelta) -> date:
    return (now - since).astimezone(UTC).date()


@dataclass(frozen=True)
class Section:
    """One table of the report; ``chart`` says how to draw it in HTML (or not at all)."""

    key: str
    title: str
    question: str
    columns: list[str]
    rows: list[list[Any]]
    chart: str | None = None  # "bars:<label col>:<value col>" or "latency"


@dataclass
class Report:
    start: date
    until: datetime
    source: str
    sections: list[Section] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


def _queries(start: date, until: datetime) -> list[tuple[str, str, str, str, str | None]]:
    """(key, title, question, SQL, chart) for each section.

    The only literals are dates computed here (never user text), hence the S608 noqa lines.
    """
    d = f"toDate('{start.isoformat()}')"
    t0 = f"'{start.isoformat()} 00:00:00'"
    t1 = f"'{(until + timedelta(seconds=1)).strftime('%Y-%m-%d %H:%M:%S')}'"
    return [
        ("cost_by_provider", "Cost by provider and model",
         "What did each provider/model cost, and how many calls failed?",
         f"SELECT provider, model, sum(v.calls) AS calls, sum(v.errors) AS errors, "  # noqa: S608
         f"sum(v.tokens_in) AS tokens_in, sum(v.tokens_out) AS tokens_out, "
         f"round(sum(v.cost_usd), 6) AS cost_usd FROM v_cost_daily AS v WHERE day >= {d} "
         f"GROUP BY provider, model ORDER BY cost_usd DESC, provider, model",
         "bars:provider,model:cost_usd"),
        ("cost_by_day", "Cost per day",
         "How does spend move day by day?",
         f"SELECT v.day AS day, sum(v.calls) AS calls, round(sum(v.cost_usd), 6) AS cost_usd "  # noqa: S608
         f"FROM v_cost_daily AS v WHERE v.day >= {d} GROUP BY v.day ORDER BY day",
         "bars:day:cost_usd"),
        ("top_spenders", "Top spenders (identities)",
         "Who spent the most in the period?",
         f"SELECT identity_id, ifNull(v.sphere_id, '') AS sphere_id, "  # noqa: S608
         f"round(v.cost_usd, 6) AS cost_usd, calls, requests "
         f"FROM v_top_spenders(since={t0}, until={t1}) AS v LIMIT 10",
         "bars:identity_id:cost_usd"),
        ("cost_by_task", "Cost per request by task type",
         "What does a request cost, by task type?",
         f"SELECT task_type, sum(v.requests) AS requests, round(sum(v.cost_usd), 6) AS cost_usd, "  # noqa: S608
         f"round(sum(v.cost_usd) / greatest(sum(v.requests), 1), 6) AS avg_cost_per_request "
         f"FROM v_cost_per_request_by_task AS v WHERE day >= {d} GROUP BY task_type "
         f"ORDER BY cost_usd DESC, task_type",
         None),
        ("lane_latency", "Lane latency (ms)",
         "How long does each lane take (exact quantiles over the period)?",
         f"SELECT lane, events, errors, round(q[1], 3) AS p50_ms, round(q[2], 3) AS p95_ms, "  # noqa: S608
         f"round(q[3], 3) AS p99_ms FROM (SELECT lane, count() AS events, "
         f"countIf(status = 'error') AS errors, quantilesExact(0.5, 0.95, 0.99)(duration_ms) AS q "
         f"FROM lane_events FINAL WHERE started_at >= {t0} GROUP BY lane) ORDER BY lane",
         "latency"),
        ("provider_latency", "Provider latency (ms, successful calls)",
         "How fast does each provider/model answer?",
         f"SELECT provider, model, calls, round(q[1], 3) AS p50_ms, round(q[2], 3) AS p95_ms, "  # noqa: S608
         f"round(q[3], 3) AS p99_ms FROM (SELECT provider, model, count() AS calls, "
         f"quantilesExact(0.5, 0.95, 0.99)(latency_ms) AS q FROM llm_calls FINAL "
         f"WHERE ts >= {t0} AND status = 'ok' GROUP BY provider, model) ORDER BY provider, model",
         "latency"),
        ("provider_health", "Provider errors and fallbacks",
         "How often does each provider fail, and how often do we fall back away from it?",
         f"SELECT provider, sum(v.calls) AS calls, sum(v.errors) AS errors, "  # noqa: S608
         f"sum(v.fallbacks_away) AS fallbacks_away, "
         f"sum(v.served_as_fallback) AS served_as_fallback, "
         f"round(sum(v.errors) / greatest(sum(v.calls), 1), 4) AS error_rate, "
         f"round(sum(v.fallbacks_away) / greatest(sum(v.calls), 1), 4) AS fallback_rate "
         f"FROM v_provider_health_daily AS v WHERE day >= {d} GROUP BY provider "
         f"ORDER BY provider",
         "bars:provider:error_rate"),
        ("checkpoints", "Checkpoint approvals",
         "How many held requests were approved, and how fast did people decide?",
         f"SELECT ifNull(reason, 'unknown') AS held_for, count() AS held, "  # noqa: S608
         f"countIf(status = 'approved') AS approved, countIf(status = 'rejected') AS rejected, "
         f"countIf(status = 'expired') AS expired, countIf(status = 'pending') AS pending, "
         f"round(approved / greatest(approved + rejected + expired, 1), 4) AS approval_rate, "
         f"round(quantileExactIf(0.5)(dateDiff('millisecond', assumeNotNull(created_at), "
         f"assumeNotNull(decided_at)) / 1000, created_at IS NOT NULL AND decided_at IS NOT NULL)"
         f", 3) AS median_decision_s FROM checkpoints FINAL "
         f"WHERE ifNull(created_at, decided_at) >= {t0} GROUP BY held_for ORDER BY held DESC",
         None),
        ("denials", "Governance denials by rule",
         "Which rules deny requests?",
         f"SELECT rule, sum(v.denials) AS denials FROM v_governance_denials_daily AS v "  # noqa: S608
         f"WHERE day >= {d} GROUP BY rule ORDER BY denials DESC, rule",
         "bars:rule:denials"),
    ]


def gather(access: SqlAccess, since: timedelta, now: datetime | None = None) -> Report:
    """Run every section's query through ``access``."""
    until = now or datetime.now(UTC)
    start = period_start(until, since)
    report = Report(start=start, until=until, source=access.where)
    for key, title, question, sql, chart in _queries(start, until):
        result = access.run(sql)
        report.sections.append(Section(key, title, question, result.columns, result.rows, chart))
    cost = report.section("cost_by_provider")
    if cost is not None and cost.rows:
        i_cost, i_calls = cost.columns.index("cost_usd"), cost.columns.index("calls")
        report.totals["cost_usd"] = sum(float(r[i_cost]) for r in cost.rows)
        report.totals["calls"] = sum(int(r[i_calls]) for r in cost.rows)
    return report


# ---------------------------------------------------------------------------------------------
# Text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.6f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.2f}"
    return str(value)


def render_text(report: Report, console: Console) -> None:
    console.print(f"[bold]Nova cost and latency report[/bold]  {report.start.isoformat()} → "
                  f"{report.until.strftime('%Y-%m-%d %H:%M')} UTC  (from {report.source})")
    if report.totals:
        console.print(f"total LLM spend ${report.totals['cost_usd']:,.4f} over "
                      f"{report.totals['calls']} calls")
    for s in report.sections:
        if not s.rows:
            console.print(f"\n[bold]{s.title}[/bold]: no data in the period")
            continue
        table = Table(title=s.title, caption=s.question, title_justify="left")
        for i, col in enumerate(s.columns):
            numeric = all(isinstance(r[i], int | float) for r in s.rows if r[i] is not None)
            table.add_column(col, justify="right" if numeric else "left")
        for row in s.rows:
            table.add_row(*(_cell(v) for v in row))
        console.print(table)


# ---------------------------------------------------------------------------------------------
# HTML with inline SVG

_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2.2rem}
p.q{color:#555;margin-top:-.5rem}table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.25rem .7rem}th{text-align:left;background:#f6f6f6}
td.n{text-align:right;font-variant-numeric:tabular-nums}svg{display:block;margin:.5rem 0}
.muted{color:#777}
"""


def _esc(value: Any) -> str:
    return html.escape(_cell(value), quote=True)


def svg_bars(labels: Sequence[str], values: Sequence[float], *, width: int = 720,
             unit: str = "") -> str:
    """Horizontal bar chart: one bar per label, scaled to the largest value."""
    bar_h, gap, label_w, pad = 20, 6, 220, 70
    height = len(labels) * (bar_h + gap) + gap
    top = max((v for v in values if v > 0), default=1.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" viewBox="0 0 {width} {height}">']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = gap + i * (bar_h + gap)
        w = max(0.0, value) / top * (width - label_w - pad)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h * 0.72:.1f}" text-anchor="end" '
            f'font-size="12">{html.escape(label[:34])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" '
            f'fill="{_PALETTE[0]}"><title>{html.escape(label)}: {_esc(value)}{unit}</title></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h * 0.72:.1f}" font-size="11">'
            f'{_esc(value)}{html.escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_latency(labels: Sequence[str], series: Mapping[str, Sequence[float]], *,
                width: int = 720) -> str:
    """Grouped vertical bars: p50/p95/p99 side by side for each label, with a legend."""
    height, left, bottom, top_pad = 260, 50, 40, 24
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    names = list(series)
    top = max((v for vals in series.values() for v in vals if v > 0), default=1.0)
    group_w = plot_w / max(len(labels), 1)
    bar_w = max(2.0, group_w * 0.8 / max(len(names), 1))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" viewBox="0 0 {width} {height}">',
             f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 10}" '
             f'y2="{top_pad + plot_h}" stroke="#999"/>',
             f'<text x="4" y="{top_pad - 8}" font-size="11">max {_esc(top)} ms</text>']
    for j, name in enumerate(names):
        parts.append(f'<rect x="{left + 90 * j + 120}" y="4" width="10" height="10" '
                     f'fill="{_PALETTE[j % len(_PALETTE)]}"/><text x="{left + 90 * j + 134}" '
                     f'y="13" font-size="11">{html.escape(name)}</text>')
    for i, label in enumerate(labels):
        x0 = left + i * group_w + group_w * 0.1
        for j, name in enumerate(names):
            value = max(0.0, float(series[name][i]))
            h = value / top * plot_h
            x = x0 + j * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}" fill="{_PALETTE[j % len(_PALETTE)]}"><title>'
                f'{html.escape(label)} {html.escape(name)}: {_esc(value)} ms</title></rect>')
        parts.append(f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - bottom + 16}" '
                     f'font-size="11" text-anchor="middle">{html.escape(label[:18])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _chart(s: Section) -> str:
    if not s.rows or not s.chart:
        return ""
    if s.chart == "latency":
        label_cols = [c for c in s.columns if c in ("lane", "provider", "model")]
        labels = ["/".join(str(r[s.columns.index(c)]) for c in label_cols) for r in s.rows]
        series = {q: [float(r[s.columns.index(f"{q}_ms")] or 0) for r in s.rows]
                  for q in ("p50", "p95", "p99")}
        return svg_latency(labels, series)
    _, label_spec, value_col = s.chart.split(":")
    label_cols = label_spec.split(",")
    if value_col not in s.columns or any(c not in s.columns for c in label_cols):
        return ""
    labels = ["/".join(str(r[s.columns.index(c)]) for c in label_cols) for r in s.rows]
    values = [float(r[s.columns.index(value_col)] or 0) for r in s.rows]
    unit = " $" if value_col == "cost_usd" else ""
    return svg_bars(labels, values, unit=unit)


def _table(s: Section) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in s.columns)
    body = []
    for row in s.rows:
        cells = "".join(
            f'<td class="n">{_esc(v)}</td>' if isinstance(v, int | float) else f"<td>{_esc(v)}</td>"
            for v in row
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(report: Report) -> str:
    """A self-contained page: inline CSS and SVG, no script, no external resource."""
    period = (f"{report.start.isoformat()} → {report.until.strftime('%Y-%m-%d %H:%M')} UTC")
    out = ["<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>Nova report {html.escape(period)}</title><style>{_CSS}</style></head><body>",
           f"<h1>Nova cost and latency report</h1><p class=\"muted\">{html.escape(period)} · "
           f"read from {html.escape(report.source)}</p>"]
    if report.totals:
        out.append(f"<p>Total LLM spend <b>${report.totals['cost_usd']:,.4f}</b> over "
                   f"<b>{report.totals['calls']}</b> calls.</p>")
    for s in report.sections:
        out.append(f"<h2>{html.escape(s.title)}</h2><p class=\"q\">{html.escape(s.question)}</p>")
        if not s.rows:
            out.append('<p class="muted">No data in the period.</p>')
            continue
        out.append(_chart(s))
        out.append(_table(s))
    out.append("</body></html>")
    return "\n".join(out)
