"""Commands over the analytics: ``nova sql``, ``nova report``, ``nova replay``.

``nova sql`` and ``nova report`` read through :func:`analytics.access.open_sql` (the running
gateway first, so they work while the stack runs on embedded ClickHouse). ``nova replay``
writes a new database, so on embedded ClickHouse it needs the stack stopped.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from analytics.access import QueryError, SqlResult, open_sql
from nova.cli.common import cli_settings, fail, guard_query
from nova.settings import Settings

Format = Literal["table", "csv", "json"]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, int | float | str | bool | None) else str(value)


def render_result(result: SqlResult, fmt: Format) -> str:
    """The answer as an aligned table, CSV (header first) or JSON (one object per row)."""
    if fmt == "json":
        return json.dumps([dict(zip(result.columns, (_plain(v) for v in r), strict=True))
                           for r in result.rows], indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_plain(v) for v in r] for r in result.rows])
        return buf.getvalue().rstrip("\n")
    table = Table(show_edge=False, header_style="bold")
    for col in result.columns:
        table.add_column(col)
    for r in result.rows:
        table.add_row(*("NULL" if v is None else str(_plain(v)) for v in r))
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(table)
    console.print(f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}")
    return console.export_text().rstrip("\n")


def run_sql(settings: Settings, sql: str, fmt: Format = "table") -> str:
    """Run one read-only statement by the best available path; the rendered answer."""
    access = open_sql(settings)
    try:
        return render_result(access.run(sql), fmt)
    finally:
        access.close()


def sql_command(
    statement: Annotated[str, typer.Argument(help="one read-only SQL statement")],
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
) -> None:
    """Run read-only SQL on Nova's ClickHouse (via the running gateway when there is one)."""
    if fmt not in ("table", "csv", "json"):
        fail(f"--format {fmt!r}: use table, csv or json")
    settings = cli_settings()
    typer.echo(guard_query(lambda: run_sql(settings, statement, fmt)))  # type: ignore[arg-type]


def report_command(
    since: Annotated[str, typer.Option(help="period: 24h, 7d, 2w …")] = "7d",
    html: Annotated[Path | None, typer.Option("--html", help="also write this HTML file")] = None,
) -> None:
    """Print the cost and latency report; --html writes it as a self-contained page."""
    from analytics.report import gather, parse_since, render_html, render_text

    settings = cli_settings()
    period = guard_query(lambda: parse_since(since))

    def build() -> Any:
        access = open_sql(settings)
        try:
            return gather(access, period)
        except QueryError as exc:
            if "UNKNOWN_TABLE" not in str(exc):
                raise
            fail(f"no analytics tables in database {settings.clickhouse_database!r} yet: start "
                 "Nova once (`nova up` or `nova gateway` creates them), or point "
                 "NOVA_CLICKHOUSE_DSN / NOVA_CLICKHOUSE_DATABASE at Nova's analytics")
        finally:
            access.close()

    report = guard_query(build)
    render_text(report, Console())
    if html is not None:
        try:
            html.write_text(render_html(report), encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {html}: {exc.strerror}: choose a writable path for --html")
        typer.echo(f"wrote {html}")


def replay_command(
    database: Annotated[str | None, typer.Option(help="target database (default replay_<time>)")]
    = None,
    from_timestamp: Annotated[str | None, typer.Option(
        "--from-timestamp", help="start at this instant (ISO 8601 or epoch ms), not the start")]
    = None,
    request: Annotated[str | None, typer.Option(
        "--request", help="print one request's trail across every topic instead")] = None,
) -> None:
    """Rebuild analytics from Kafka into a fresh database, or print one request's trail."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from analytics.replay import (
        default_database,
        parse_timestamp,
        render_trail,
        replay_into,
        request_trail,
    )

    settings = cli_settings().as_client("tools")  # reads the topics, writes none (on Kafka)
    console = Console()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    if request is not None:
        # off a terminal there is no bar to draw (a closing one would print an empty line)
        with Progress(*columns, console=console, transient=True,
                      disable=not console.is_terminal) as bar:
            task = bar.add_task("scanning topics", total=None)
            trail = guard_query(lambda: asyncio.run(request_trail(
                settings, request, lambda done, total: bar.update(task, completed=done,
                                                                  total=total))))
        render_trail(trail, console)
        raise typer.Exit(0 if trail.found else 1)
    start_ms = guard_query(lambda: parse_timestamp(from_timestamp)) if from_timestamp else None
    target = database or default_database()

    def run() -> Any:
        from analytics.client import ClickHouse

        ch = ClickHouse(settings.clickhouse_url, target)
        try:
            with Progress(*columns, console=console) as bar:
                task = bar.add_task(f"replaying into {target}", total=None)
                return asyncio.run(replay_into(
                    settings, ch, from_timestamp_ms=start_ms,
                    progress=lambda done, total: bar.update(task, completed=done, total=total)))
        finally:
            ch.close()

    report = guard_query(run)
    rows = ", ".join(f"{t} {n}" for t, n in sorted(report.rows.items())) or "no rows"
    console.print(f"replayed {report.messages} messages into {report.database} in "
                  f"{report.seconds:.1f} s ({report.rate:,.0f} msg/s): {rows}"
                  + (f"; {report.undecodable} undecodable" if report.undecodable else ""))
    console.print(f"read it with `nova sql` (tables and v_* views in database {report.database})")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the ``nova`` app."""
    app.command("sql")(sql_command)
    app.command("report")(report_command)
    app.command("replay")(replay_command)
