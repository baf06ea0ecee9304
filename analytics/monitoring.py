"""The questions the monitoring API asks ClickHouse, one named query each.

The routes (``gateway.routes.monitoring``, ``gateway.llm_state``) decide who may ask and for
whose data; the SQL lives here, next to the tables it reads, so a change of schema changes one
module and each statement can be read with the question it answers. Every read of a
ReplacingMergeTree table uses FINAL, so a record the sink consumed twice counts once. SQL is
built with f-strings only for our own database name and for fixed fragments chosen from the
``Literal`` groupings below (hence the S608 noqa); every value is a bound parameter.

``identity`` is whose rows a query counts: one identity's, or ``None`` for every identity's
(operators). Rows come back ready for JSON: times as ISO text, an empty quantile (NaN) as null.
Each function blocks; the routes run them in a thread.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final, Literal

from analytics.client import ClickHouse

PROVIDER_HEALTH: Final = "PROVIDER_HEALTH"  # the alert type of a provider's status change
PROVIDER_CHECK: Final = "PROVIDER_CHECK"  # an on-demand check's outcome (gateway, by an operator)
# A failure that counts against health: an error row whose message is not an HTTP 4xx (a 429
# or another 4xx proves the provider is up).
HEALTH_FAILURE_SQL: Final = (
    "status = 'error' AND NOT match(ifNull(error, ''), 'HTTP 4[0-9][0-9]')"
)
_WINDOW: Final = "ts >= now64(3) - toIntervalHour({h:UInt32})"

CallGroup = Literal["provider", "provider, model", "identity_id"]
RequestGroup = Literal["status", "task_type", "governance", "provider", "toDate(request_ts)",
                       "action", "identity_id", "sphere_id"]
Period = Literal["day", "week", "month"]
# The first day of the UTC calendar window a call falls in (as budgets count: ISO weeks).
PERIOD_START: Final[dict[str, str]] = {
    "day": "toDate(ts, 'UTC')", "week": "toMonday(ts, 'UTC')",
    "month": "toStartOfMonth(ts, 'UTC')",
}


def _clean(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return None if value != value else round(value, 9)  # NaN (empty quantile) → null
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _rows(ch: ClickHouse, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cols, rows = ch.query(sql, params)
    return [{c: _clean(v) for c, v in zip(cols, r, strict=True)} for r in rows]


def _whose(identity: str | None, params: dict[str, Any]) -> str:
    """The condition selecting ``identity``'s rows (every row for None), its value bound."""
    if identity is None:
        return "1"
    params["ident"] = identity
    return "identity_id = {ident:String}"


CALL_FIGURES: Final = (
    "countIf(status != 'skipped') AS calls, countIf(status = 'ok') AS ok, "
    "countIf(status = 'error') AS errors, countIf(status = 'skipped') AS skipped, "
    "uniqExact(request_id) AS requests, round(sum(cost_usd), 9) AS cost_usd, "
    "sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out, "
    "quantileIf(0.5)(latency_ms, status = 'ok') AS p50_ms, "
    "quantileIf(0.95)(latency_ms, status = 'ok') AS p95_ms, "
    "quantileIf(0.99)(latency_ms, status = 'ok') AS p99_ms"
)


def call_figures(ch: ClickHouse, identity: str | None, hours: int,
                 group: CallGroup | None = None) -> list[dict[str, Any]]:
    """How many LLM calls were made (ok, failed, skipped), for how many requests, at what cost
    in dollars and tokens, and how fast the successful ones answered, over the last ``hours``;
    one row in all, or one per ``group``, the costliest first."""
    params: dict[str, Any] = {"h": hours}
    by = f"{group}, " if group else ""
    tail = f" GROUP BY {group} ORDER BY cost_usd DESC, {group}" if group else ""
    return _rows(ch, f"SELECT {by}{CALL_FIGURES} FROM {ch.database}.llm_calls FINAL "  # noqa: S608
                     f"WHERE {_WINDOW} AND {_whose(identity, params)}{tail}", params)


def fallback_served(ch: ClickHouse, identity: str | None, hours: int) -> list[dict[str, Any]]:
    """Of the successful calls over the last ``hours``, how many were a fallback's, and how
    many requests were served at all?"""
    params: dict[str, Any] = {"h": hours}
    return _rows(ch, "SELECT countIf(fallback_from IS NOT NULL AND status = 'ok') "  # noqa: S608
                     "AS served_by_fallback, uniqExactIf(request_id, status = 'ok') AS served "
                     f"FROM {ch.database}.llm_calls FINAL "
                     f"WHERE {_WINDOW} AND {_whose(identity, params)}", params)


def fallback_requests(ch: ClickHouse, identity: str | None, hours: int) -> list[dict[str, Any]]:
    """How many requests called a provider over the last ``hours``, how many were served, and
    how many of those by a fallback?"""
    params: dict[str, Any] = {"h": hours}
    return _rows(ch, "SELECT uniqExact(request_id) AS requests, "  # noqa: S608
                     "uniqExactIf(request_id, status = 'ok') AS served, "
                     "uniqExactIf(request_id, status = 'ok' AND fallback_from IS NOT NULL) "
                     "AS served_by_fallback "
                     f"FROM {ch.database}.llm_calls FINAL "
                     f"WHERE {_WINDOW} AND {_whose(identity, params)}", params)


def fallback_moves(ch: ClickHouse, identity: str | None, hours: int) -> list[dict[str, Any]]:
    """From which candidate to which provider and model did calls fall back over the last
    ``hours``, how often, and how often did the fallback succeed? The commonest first."""
    params: dict[str, Any] = {"h": hours}
    return _rows(ch, "SELECT fallback_from, provider, model, count() AS attempts, "  # noqa: S608
                     "countIf(status = 'ok') AS ok "
                     f"FROM {ch.database}.llm_calls FINAL "
                     f"WHERE {_WINDOW} AND {_whose(identity, params)} "
                     "AND fallback_from IS NOT NULL AND status != 'skipped' "
                     "GROUP BY fallback_from, provider, model ORDER BY attempts DESC", params)


def spend_this_week(ch: ClickHouse, identity: str | None) -> list[dict[str, Any]]:
    """What was spent today and since Monday (UTC calendar days, as budgets count them)?"""
    params: dict[str, Any] = {}
    return _rows(ch, "SELECT "  # noqa: S608
                     "round(sumIf(cost_usd, ts >= toStartOfDay(now64(3), 'UTC')), 9) "
                     "AS today_usd, round(sum(cost_usd), 9) AS week_usd "
                     f"FROM {ch.database}.llm_calls FINAL "
                     f"WHERE ts >= toMonday(now64(3), 'UTC') AND {_whose(identity, params)}",
                 params)


def spend_this_month(ch: ClickHouse, identity: str | None) -> list[dict[str, Any]]:
    """What was spent, and how many calls succeeded, since the first of the month (UTC)?"""
    params: dict[str, Any] = {}
    return _rows(ch, "SELECT round(sum(cost_usd), 9) AS month_usd, "  # noqa: S608
                     "countIf(status = 'ok') AS month_calls "
                     f"FROM {ch.database}.llm_calls FINAL "
                     f"WHERE ts >= toStartOfMonth(now64(3), 'UTC') "
                     f"AND {_whose(identity, params)}", params)


def alert_counts(ch: ClickHouse, identity: str | None, hours: int) -> list[dict[str, Any]]:
    """How many alerts of each type were raised over the last ``hours``, the identity's and
    the system's (provider health)?"""
    params: dict[str, Any] = {"h": hours}
    return _rows(ch, "SELECT alert_type, count() AS alerts "  # noqa: S608
                     f"FROM {ch.database}.alerts FINAL WHERE {_WINDOW} AND "
                     f"({_whose(identity, params)} OR identity_id = 'system') "
                     "GROUP BY alert_type ORDER BY alert_type", params)


def recent_alerts(ch: ClickHouse, identity: str | None, hours: int, alert_type: str | None,
                  limit: int) -> list[dict[str, Any]]:
    """Which alerts (the identity's and the system's, of ``alert_type`` or any) were raised
    over the last ``hours``? The newest ``limit`` first."""
    params: dict[str, Any] = {"h": hours, "n": limit}
    where = f"({_whose(identity, params)} OR identity_id = 'system')"
    if alert_type is not None:
        params["t"] = alert_type
        where += " AND alert_type = {t:String}"
    return _rows(ch, "SELECT event_id, alert_type, subject, message, severity, request_id, "  # noqa: S608
                     f"identity_id, ts FROM {ch.database}.alerts FINAL "
                     f"WHERE {_WINDOW} AND {where} "
                     "ORDER BY ts DESC, event_id LIMIT {n:UInt32}", params)


def provider_status_history(ch: ClickHouse, provider: str, limit: int = 20,
                            hours: int | None = None, *, checks: bool = False,
                            ) -> list[dict[str, Any]]:
    """Which statuses did workers announce for ``provider`` (over the last ``hours``, or
    ever), and when, with the on-demand checks' outcomes too when ``checks``? Newest first."""
    params: dict[str, Any] = {"t": [PROVIDER_HEALTH, *([PROVIDER_CHECK] if checks else [])],
                              "p": provider, "n": limit, "h": hours or 0}
    window = f" AND {_WINDOW}" if hours else ""
    return _rows(ch, "SELECT message AS status, severity, ts, event_id, "  # noqa: S608
                     "if(alert_type = {c:String}, 'check', 'announcement') AS source "
                     f"FROM {ch.database}.alerts FINAL WHERE alert_type IN {{t:Array(String)}} "
                     f"AND subject = {{p:String}}{window} ORDER BY ts DESC LIMIT {{n:UInt32}}",
                 {**params, "c": PROVIDER_CHECK})


def alert_owner(ch: ClickHouse, event_id: str) -> str | None:
    """Whose alert ``event_id`` is (its identity, ``system`` for provider alerts), or None
    when there is no such alert."""
    _, rows = ch.query(f"SELECT identity_id FROM {ch.database}.alerts FINAL "  # noqa: S608
                       "WHERE event_id = {e:String} LIMIT 1", {"e": event_id})
    return str(rows[0][0]) if rows else None


def provider_load(ch: ClickHouse, providers: list[str]) -> dict[str, dict[str, Any]]:
    """Per provider: calls and tokens in the last minute, and over the last hour how many calls
    the provider refused with a 429 and how many Nova skipped over its own rate limit."""
    rows = _rows(
        ch, "SELECT provider, "  # noqa: S608
            "countIf(status != 'skipped' AND ts >= now64(3) - toIntervalMinute(1)) AS calls_1m, "
            "sumIf(tokens_in + tokens_out, ts >= now64(3) - toIntervalMinute(1)) AS tokens_1m, "
            "countIf(status = 'error' AND match(ifNull(error, ''), 'HTTP 429')) AS http_429_1h, "
            "countIf(status = 'skipped' AND match(ifNull(error, ''), '^rate limit')) "
            "AS skipped_over_limit_1h "
            f"FROM {ch.database}.llm_calls FINAL WHERE ts >= now64(3) - toIntervalHour(1) "
            "AND provider IN {ps:Array(String)} GROUP BY provider",
        {"ps": providers})
    return {r["provider"]: r for r in rows}


def latest_probes(ch: ClickHouse) -> dict[str, tuple[str, str]]:
    """Per provider: the status workers announced last, and when (ISO text)."""
    _, probes = ch.query(
        "SELECT subject, argMax(message, ts), toString(max(ts)) "  # noqa: S608
        f"FROM {ch.database}.alerts FINAL WHERE alert_type = {{t:String}} GROUP BY subject",
        {"t": PROVIDER_HEALTH},
    )
    return {str(r[0]): (str(r[1]), str(r[2])) for r in probes}


def live_call_health(ch: ClickHouse, window_min: int,
                     ) -> dict[str, tuple[int, int, int, float | None]]:
    """Per provider over the last ``window_min`` minutes: calls made, failures that say the
    provider is not there (:data:`HEALTH_FAILURE_SQL`), 429s, and the median latency (ms) of
    the successful calls."""
    _, calls = ch.query(
        "SELECT provider, countIf(status != 'skipped') AS n, "  # noqa: S608
        f"countIf({HEALTH_FAILURE_SQL}) AS failures, "
        "countIf(status = 'error' AND match(ifNull(error, ''), 'HTTP 429')) AS limited, "
        "quantileIf(0.5)(latency_ms, status = 'ok') AS p50 "
        f"FROM {ch.database}.llm_calls FINAL "
        "WHERE ts >= now64(3) - toIntervalMinute({m:UInt32}) GROUP BY provider",
        {"m": window_min},
    )
    return {
        str(r[0]): (int(r[1]), int(r[2]), int(r[3]),
                    None if r[4] is None or r[4] != r[4] else round(float(r[4]), 3))
        for r in calls
    }


def request_figures(ch: ClickHouse, identity: str | None, hours: int,
                    group: RequestGroup) -> list[dict[str, Any]]:
    """How many requests were submitted over the last ``hours`` per ``group``, what they cost
    (every LLM attempt, failed ones too) and how long they took end to end? The most first."""
    params: dict[str, Any] = {"h": hours}
    return _rows(ch, f"SELECT {group}, count() AS requests, "  # noqa: S608
                     "round(sum(cost_usd), 9) AS cost_usd, round(avg(latency_ms), 3) AS avg_ms, "
                     "round(quantile(0.5)(latency_ms), 3) AS p50_ms, "
                     "round(quantile(0.99)(latency_ms), 3) AS p99_ms "
                     f"FROM {ch.database}.requests FINAL "
                     "WHERE request_ts >= now64(3) - toIntervalHour({h:UInt32}) "
                     f"AND {_whose(identity, params)} "
                     f"GROUP BY {group} ORDER BY requests DESC, {group}", params)


def lane_figures(ch: ClickHouse, identity: str | None, hours: int) -> list[dict[str, Any]]:
    """Per lane, for the requests submitted over the last ``hours``: how many events, how many
    errors, and the median and p99 time spent in the lane (ms)?"""
    params: dict[str, Any] = {"h": hours}
    return _rows(ch, "SELECT lane, count() AS events, countIf(status = 'error') AS errors, "  # noqa: S608
                     "round(quantile(0.5)(duration_ms), 3) AS p50_ms, "
                     "round(quantile(0.99)(duration_ms), 3) AS p99_ms "
                     f"FROM {ch.database}.lane_events FINAL "
                     "WHERE request_ts >= now64(3) - toIntervalHour({h:UInt32}) "
                     f"AND {_whose(identity, params)} GROUP BY lane ORDER BY lane", params)


def pipeline_lanes(ch: ClickHouse, request_id: str) -> list[dict[str, Any]]:
    """Which lanes did the request pass, in order, on which worker, how long did each take and
    which failed? (With each row's identity, for the caller's owner check.)"""
    return _rows(ch, "SELECT lane, status, started_at, duration_ms, worker, error, identity_id "  # noqa: S608
                     f"FROM {ch.database}.lane_events FINAL WHERE request_id = {{rid:String}} "
                     "ORDER BY started_at, lane", {"rid": request_id})


def pipeline_calls(ch: ClickHouse, request_id: str) -> list[dict[str, Any]]:
    """Which LLM attempts did the request make, in order: provider, model, outcome, fallback,
    tokens, cost and latency? (With each row's identity.)"""
    return _rows(ch, "SELECT attempt, provider, model, status, error, fallback_from, "  # noqa: S608
                     "tokens_in, tokens_out, cost_usd, latency_ms, ts, identity_id "
                     f"FROM {ch.database}.llm_calls FINAL WHERE request_id = {{rid:String}} "
                     "ORDER BY attempt", {"rid": request_id})


def pipeline_outcome(ch: ClickHouse, request_id: str) -> list[dict[str, Any]]:
    """How did the request end: status, provider and model, cost, attempts and latency? (With
    its identity; the error text is private content, :func:`analytics.queries.request_content`.)
    """
    return _rows(ch, "SELECT status, provider, model, cost_usd, attempts, latency_ms, "  # noqa: S608
                     f"identity_id FROM {ch.database}.requests FINAL "
                     "WHERE request_id = {rid:String}", {"rid": request_id})


def cost_by_identity_period(ch: ClickHouse, identity: str | None, hours: int, period: Period,
                            ) -> list[dict[str, Any]]:
    """What each identity spent per UTC ``period`` (day, ISO week, month) over the last
    ``hours``: calls, tokens and dollars; the newest period first, then the costliest."""
    params: dict[str, Any] = {"h": hours}
    start = PERIOD_START[period]
    return _rows(ch, f"SELECT identity_id, {start} AS period_start, "  # noqa: S608
                     "countIf(status != 'skipped') AS calls, uniqExact(request_id) AS requests, "
                     "round(sum(cost_usd), 9) AS cost_usd, sum(tokens_in) AS tokens_in, "
                     "sum(tokens_out) AS tokens_out "
                     f"FROM {ch.database}.llm_calls FINAL "
                     f"WHERE {_WINDOW} AND {_whose(identity, params)} "
                     "GROUP BY identity_id, period_start "
                     "ORDER BY period_start DESC, cost_usd DESC, identity_id", params)


def request_overall(ch: ClickHouse, identity: str | None, hours: int) -> list[dict[str, Any]]:
    """Over the requests submitted in the last ``hours``: how many, how many completed, failed
    (or stopped by a budget) and blocked (denied, rejected, expired), what they cost, how many
    tokens and LLM attempts, and how long they took end to end?"""
    params: dict[str, Any] = {"h": hours}
    return _rows(ch, "SELECT count() AS requests, "  # noqa: S608
                     "countIf(status = 'completed') AS completed, "
                     "countIf(status IN ('failed', 'budget_exceeded')) AS failed, "
                     "countIf(status IN ('denied', 'rejected', 'expired')) AS blocked, "
                     "uniqExact(identity_id) AS identities, "
                     "round(sum(cost_usd), 9) AS cost_usd, sum(tokens_in) AS tokens_in, "
                     "sum(tokens_out) AS tokens_out, sum(attempts) AS llm_attempts, "
                     "round(avg(latency_ms), 3) AS avg_ms, "
                     "round(quantile(0.5)(latency_ms), 3) AS p50_ms, "
                     "round(quantile(0.95)(latency_ms), 3) AS p95_ms, "
                     "round(quantile(0.99)(latency_ms), 3) AS p99_ms "
                     f"FROM {ch.database}.requests FINAL "
                     "WHERE request_ts >= now64(3) - toIntervalHour({h:UInt32}) "
                     f"AND {_whose(identity, params)}", params)


@dataclass(frozen=True)
class PipelineFilter:
    """Which requests a pipeline list shows: equal to each field that is set."""

    status: str | None = None
    task_type: str | None = None
    action: str | None = None
    provider: str | None = None


def _pipeline_where(identity: str | None, hours: int, f: PipelineFilter,
                    params: dict[str, Any]) -> str:
    params["h"] = hours
    where = ["request_ts >= now64(3) - toIntervalHour({h:UInt32})", _whose(identity, params)]
    for column in ("status", "task_type", "action", "provider"):
        value = getattr(f, column)
        if value is not None:
            params[column] = value
            where.append(f"{column} = {{{column}:String}}")
    return " AND ".join(where)


PIPELINE_COLUMNS: Final = (
    "request_id, identity_id, sphere_id, status, task_type, action, governance, checkpoint, "
    "provider, model, cost_usd, tokens_in, tokens_out, attempts, latency_ms, request_ts, "
    "completed_at"
)


def pipelines(ch: ClickHouse, identity: str | None, hours: int, f: PipelineFilter,
              limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """How many requests of the last ``hours`` match ``f``, and one page of them (metrics
    only, no content), the newest first."""
    params: dict[str, Any] = {"n": limit, "o": offset}
    where = _pipeline_where(identity, hours, f, params)
    table = f"{ch.database}.requests FINAL"
    total = ch.query(f"SELECT count() FROM {table} WHERE {where}", params)[1]  # noqa: S608
    page = _rows(ch, f"SELECT {PIPELINE_COLUMNS} FROM {table} WHERE {where} "  # noqa: S608
                     "ORDER BY request_ts DESC, request_id LIMIT {n:UInt32} OFFSET {o:UInt32}",
                 params)
    return int(total[0][0]) if total else 0, page


def pipeline_timeline(ch: ClickHouse, request_id: str) -> list[dict[str, Any]]:
    """What happened to the request, in the report's event types (``v_pipeline_events``),
    in order? (With each row's identity, for the caller's owner check.)"""
    return _rows(ch, "SELECT event_type, lane, ts, detail, identity_id "  # noqa: S608
                     f"FROM {ch.database}.v_pipeline_events "
                     "WHERE request_id = {rid:String} ORDER BY ts, seq, event_type",
                 {"rid": request_id})


# -- retention -------------------------------------------------------------------------------
# Analytics tables and the column that dates their rows. The audit trail (audit_events) is not
# analytics: its retention is the audit topic's (its chain is verified from there), so no
# retention run touches it. rollup_latency_hourly holds no identity: only a run over every
# identity's data drops its hours.
RETENTION: Final[dict[str, str]] = {
    "requests": "request_ts", "request_content": "request_ts", "lane_events": "request_ts",
    "llm_calls": "request_ts", "alerts": "ts", "checkpoints": "request_ts",
    "rollup_cost_daily": "day",
}
PLATFORM_RETENTION: Final[dict[str, str]] = {"rollup_latency_hourly": "hour"}


def _retention_tables(identity: str | None) -> dict[str, str]:
    return {**RETENTION, **(PLATFORM_RETENTION if identity is None else {})}


def _older(column: str, identity: str | None, params: dict[str, Any]) -> str:
    return (f"{column} < toDateTime64({{cutoff:String}}, 3, 'UTC') "
            f"AND {_whose(identity, params)}")


def retention_counts(ch: ClickHouse, identity: str | None, cutoff: dt.datetime,
                     ) -> dict[str, int]:
    """Per analytics table: how many rows of ``identity`` (every identity's for None) date
    from before ``cutoff``? (Rows as stored: a row consumed twice counts twice.)"""
    params: dict[str, Any] = {"cutoff": cutoff.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]}
    out = {}
    for table, column in _retention_tables(identity).items():
        where = _older(column, identity, params)
        rows = ch.query(f"SELECT count() FROM {ch.database}.{table} WHERE {where}",  # noqa: S608
                        params)[1]
        out[table] = int(rows[0][0]) if rows else 0
    return out


def drop_older_than(ch: ClickHouse, identity: str | None, cutoff: dt.datetime,
                    tables: list[str] | None = None) -> None:
    """Delete ``identity``'s rows (every identity's for None) dated before ``cutoff`` from
    every analytics table (or those of ``tables``: the ones that have some, a mutation costs
    a rewrite of the parts it touches), waiting until the deletions are done."""
    params: dict[str, Any] = {"cutoff": cutoff.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]}
    for table, column in _retention_tables(identity).items():
        if tables is not None and table not in tables:
            continue
        where = _older(column, identity, params)
        ch.command(f"ALTER TABLE {ch.database}.{table} DELETE WHERE {where}",
                   settings={"mutations_sync": 2}, parameters=params)
