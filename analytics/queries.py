"""Queries Nova itself runs against ClickHouse (analysts' named views live in migrations).

The monitoring API's questions are in :mod:`analytics.monitoring`; these are the rest: one
request's trail and answer, the demo's and replay's summaries, a budget's spend.

Every read of a ReplacingMergeTree table uses FINAL so a row consumed twice counts once.
SQL is built with f-strings only for our own database and table names (hence the S608
noqa); every value is a bound parameter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from analytics.client import ClickHouse


def request_lanes(ch: ClickHouse, request_id: str) -> list[dict[str, Any]]:
    return ch.rows(
        f"SELECT lane, status, duration_ms, identity_id FROM {ch.database}.lane_events FINAL "  # noqa: S608
        "WHERE request_id = {rid:String} ORDER BY lane",
        {"rid": request_id},
    )


def request_final(ch: ClickHouse, request_id: str) -> dict[str, Any] | None:
    """The request's final row with its answer and error text (``result``, ``error``).

    The content comes from ``request_content`` (private: migrations/0006), so this is for
    routes that have already established the caller owns the request, never for analysts.
    """
    rows = ch.rows(
        f"SELECT * FROM {ch.database}.requests FINAL WHERE request_id = {{rid:String}}",  # noqa: S608
        {"rid": request_id},
    )
    if not rows:
        return None
    return {**rows[0], **request_content(ch, request_id)}


def request_content(ch: ClickHouse, request_id: str) -> dict[str, Any]:
    """``result`` and ``error`` of one request (both None when it has none)."""
    rows = ch.rows(
        f"SELECT result, error FROM {ch.database}.request_content FINAL "  # noqa: S608
        "WHERE request_id = {rid:String}",
        {"rid": request_id},
    )
    return rows[0] if rows else {"result": None, "error": None}


def lane_summary(ch: ClickHouse, request_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Per lane: row count and p50/p99 duration (ms), optionally for some requests only."""
    where = "WHERE request_id IN {ids:Array(String)}" if request_ids is not None else ""
    return ch.rows(
        "SELECT lane, count() AS rows, "  # noqa: S608
        "round(quantile(0.5)(duration_ms), 3) AS p50_ms, "
        "round(quantile(0.99)(duration_ms), 3) AS p99_ms "
        f"FROM {ch.database}.lane_events FINAL {where} GROUP BY lane ORDER BY lane",
        {"ids": request_ids} if request_ids is not None else None,
    )


def lane_row_count(ch: ClickHouse, request_ids: list[str] | None = None) -> int:
    where = "WHERE request_id IN {ids:Array(String)}" if request_ids is not None else ""
    return int(ch.scalar(
        f"SELECT count() FROM {ch.database}.lane_events FINAL {where}",  # noqa: S608
        {"ids": request_ids} if request_ids is not None else None,
    ) or 0)


def status_counts(ch: ClickHouse, request_ids: list[str] | None = None) -> dict[str, int]:
    where = "WHERE request_id IN {ids:Array(String)}" if request_ids is not None else ""
    _, rows = ch.query(
        f"SELECT status, count() FROM {ch.database}.requests FINAL {where} GROUP BY status",  # noqa: S608
        {"ids": request_ids} if request_ids is not None else None,
    )
    return {str(r[0]): int(r[1]) for r in rows}


SpendScope = Literal["identity", "sphere", "provider"]
_SPEND_COLUMN: Final[dict[SpendScope, str]] = {
    "identity": "identity_id", "sphere": "sphere_id", "provider": "provider"}


def spent_since(ch: ClickHouse, scope: SpendScope, subject: str, since: datetime) -> float:
    """What the identity, sphere or provider ``subject`` spent on successful LLM calls since
    ``since`` (a budget's window), in dollars?"""
    return float(ch.scalar(
        "SELECT sum(cost_usd) FROM "  # noqa: S608 - our db and a fixed column name
        f"{ch.database}.llm_calls FINAL WHERE status = 'ok' AND "
        f"{_SPEND_COLUMN[scope]} = {{s:String}} AND ts >= {{since:DateTime64(3, 'UTC')}}",
        {"s": subject, "since": since},
    ) or 0.0)


ROLLUP_VIEWS = ("mv_cost_daily", "mv_latency_hourly")


def refresh_rollups(ch: ClickHouse) -> None:
    """Recompute the refreshable rollups now and wait for them (replay, tests, benchmarks)."""
    for view in ROLLUP_VIEWS:
        ch.command(f"SYSTEM REFRESH VIEW {ch.database}.{view}")
    for view in ROLLUP_VIEWS:
        ch.command(f"SYSTEM WAIT VIEW {ch.database}.{view}")


def table_counts(ch: ClickHouse, tables: tuple[str, ...]) -> dict[str, int]:
    """Deduplicated row count per table (FINAL), for replay-equals-live and operators."""
    return {t: int(ch.scalar(f"SELECT count() FROM {ch.database}.{t} FINAL") or 0) for t in tables}  # noqa: S608
