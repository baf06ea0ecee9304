"""Monitoring: LLM calls, costs, health, limits, fallbacks, alerts and pipelines, from ClickHouse.

Every figure is read from ClickHouse (ReplacingMergeTree tables with FINAL, so a record the
sink consumed twice counts once) or from shared state (the registry, the routing tables, the
entities topic), never from one process's memory: any gateway answers the same, and a
restarted one loses nothing.

Whose data: every role but ``operator`` sees its own identity's figures; an operator sees
every identity or one (``?identity=``), see ``gateway.llm_state.data_scope``; anyone else
naming another identity is a 403 boundary crossing with its IDENTITY_BOUNDARY fact. Provider
health and provider limits are about providers, not identities, and are the same for everyone.
A pipeline (``/api/v2/nova/monitoring/pipelines/{id}``) is shown to its owner only: it is one
request's trail with its error text (private content, ``request_content``), and another
identity's request is a 403 boundary crossing whatever the caller's roles, operator included.

Windows are ``?hours=`` back from now (default 24), by when the call or alert happened.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query

from analytics.client import ClickHouse
from analytics.queries import request_content
from gateway.deps import (
    ClickHouseDep,
    GuardDep,
    LlmDep,
    PrincipalDep,
    RateLimiterDep,
    ServicesDep,
)
from gateway.llm_state import HEALTH_ALERT, LlmState, data_scope
from gateway.ratelimit import IdentityRateLimiter
from gateway.services import Services
from nova.errors import ForbiddenError, NotFoundError

router = APIRouter(tags=["monitoring"])

LLM: Final = "/api/v2/llm/monitoring"
NOVA: Final = "/api/v2/nova/monitoring"
Hours = Annotated[int, Query(ge=1, le=24 * 366, description="window: this many hours back")]
IdentityQ = Annotated[str | None, Query(max_length=128,
                                        description="operators: one identity")]


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


def _scope(ident: str | None, params: dict[str, Any], column: str = "identity_id") -> str:
    if ident is None:
        return "1"
    params["ident"] = ident
    return f"{column} = {{ident:String}}"


async def _q(ch: ClickHouse, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_rows, ch, sql, params)


CALL_FIGURES: Final = (
    "countIf(status != 'skipped') AS calls, countIf(status = 'ok') AS ok, "
    "countIf(status = 'error') AS errors, countIf(status = 'skipped') AS skipped, "
    "uniqExact(request_id) AS requests, round(sum(cost_usd), 9) AS cost_usd, "
    "sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out, "
    "quantileIf(0.5)(latency_ms, status = 'ok') AS p50_ms, "
    "quantileIf(0.95)(latency_ms, status = 'ok') AS p95_ms, "
    "quantileIf(0.99)(latency_ms, status = 'ok') AS p99_ms"
)


def _calls_sql(ch: ClickHouse, where: str, group: str | None = None) -> str:
    by = f"{group}, " if group else ""
    tail = f" GROUP BY {group} ORDER BY cost_usd DESC, {group}" if group else ""
    return (f"SELECT {by}{CALL_FIGURES} FROM {ch.database}.llm_calls FINAL "  # noqa: S608
            f"WHERE ts >= now64(3) - toIntervalHour({{h:UInt32}}) AND {where}{tail}")


# -- LLM ---------------------------------------------------------------------------------
@router.get(f"{LLM}/dashboard", responses={401: {}, 403: {}, 503: {}})
async def llm_dashboard(principal: PrincipalDep, ch: ClickHouseDep, services: ServicesDep,
                        llm: LlmDep, guard: GuardDep, hours: Hours = 24,
                        identity: IdentityQ = None) -> Any:
    """Calls, cost, latency and fallbacks in the window; provider health; recent alerts."""
    scope = await data_scope(principal, identity, guard)
    params: dict[str, Any] = {"h": hours}
    where = _scope(scope, params)
    totals, by_provider, fallbacks, alerts, health = await asyncio.gather(
        _q(ch, _calls_sql(ch, where), params),
        _q(ch, _calls_sql(ch, where, "provider"), params),
        _q(ch, f"SELECT countIf(fallback_from IS NOT NULL AND status = 'ok') AS served_by_fallback, "  # noqa: S608, E501
               f"uniqExactIf(request_id, status = 'ok') AS served "
               f"FROM {ch.database}.llm_calls FINAL "
               f"WHERE ts >= now64(3) - toIntervalHour({{h:UInt32}}) AND {where}", params),
        _q(ch, f"SELECT alert_type, count() AS alerts FROM {ch.database}.alerts FINAL "  # noqa: S608
               f"WHERE ts >= now64(3) - toIntervalHour({{h:UInt32}}) AND "
               f"({_scope(scope, params)} OR identity_id = 'system') "
               "GROUP BY alert_type ORDER BY alert_type", params),
        llm.health.providers(services.clickhouse),
    )
    fb = fallbacks[0] if fallbacks else {"served_by_fallback": 0, "served": 0}
    served = int(fb["served"] or 0)
    return {
        "window_hours": hours, "identity": scope,
        "totals": totals[0] if totals else {},
        "by_provider": by_provider,
        "fallback": {**fb, "rate": round(int(fb["served_by_fallback"]) / served, 4)
                     if served else 0.0},
        "health": {p: h.status for p, h in health.items()},
        "alerts": {r["alert_type"]: r["alerts"] for r in alerts},
    }


@router.get(f"{LLM}/health", responses={401: {}})
async def llm_health(principal: PrincipalDep, services: ServicesDep, llm: LlmDep) -> Any:
    """Each provider's status: its latest probe announcement and its recent live error rate."""
    health = await llm.health.providers(services.clickhouse)
    return {"window_min": llm.health.window_min,
            "providers": [h.to_json() for h in health.values()]}


@router.get(f"{LLM}/health/{{provider}}", responses={401: {}, 404: {}})
async def llm_health_one(provider: str, principal: PrincipalDep, services: ServicesDep,
                         llm: LlmDep) -> Any:
    """One provider's health and its last 20 status announcements."""
    if provider not in llm.registry:
        raise NotFoundError(f"no provider {provider}")
    health = await llm.health.providers(services.clickhouse)
    history: list[dict[str, Any]] = []
    ch = services.clickhouse
    if ch is not None:
        history = await _q(
            ch, "SELECT message AS status, severity, ts, event_id "  # noqa: S608
                f"FROM {ch.database}.alerts FINAL WHERE alert_type = {{t:String}} "
                "AND subject = {p:String} ORDER BY ts DESC LIMIT 20",
            {"t": HEALTH_ALERT, "p": provider})
    return {**health[provider].to_json(), "history": history}


def _limit_rows(ch: ClickHouse, providers: list[str]) -> dict[str, dict[str, Any]]:
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


async def _rate_limits(services: Services, llm: LlmState, providers: list[str],
                       ) -> list[dict[str, Any]]:
    ch = services.clickhouse
    seen = {} if ch is None else await asyncio.to_thread(_limit_rows, ch, providers)
    out = []
    for name in providers:
        spec = llm.registry.provider(name)
        row = seen.get(name, {})
        calls, tokens = int(row.get("calls_1m", 0)), int(row.get("tokens_1m", 0))
        out.append({
            "provider": name, "rpm": spec.rpm, "tpm": spec.tpm,
            "calls_last_minute": calls, "tokens_last_minute": tokens,
            "rpm_used": round(calls / spec.rpm, 4), "tpm_used": round(tokens / spec.tpm, 4),
            "http_429_last_hour": int(row.get("http_429_1h", 0)),
            "skipped_over_limit_last_hour": int(row.get("skipped_over_limit_1h", 0)),
        })
    return out


def _identity_limit(limiter: IdentityRateLimiter, identity: str) -> dict[str, Any]:
    return {"limit": f"identity:{identity}:rpm", "rpm": limiter.rpm,
            "remaining_now": round(limiter.remaining(identity), 3),
            "scope": "this gateway process"}


@router.get(f"{LLM}/rate-limits", responses={401: {}})
async def rate_limits(principal: PrincipalDep, services: ServicesDep, llm: LlmDep,
                      limiter: RateLimiterDep) -> Any:
    """Provider quotas against calls in the last minute (all workers), and the caller's
    identity limit at this gateway. Workers each enforce their partition share of a quota."""
    return {"providers": await _rate_limits(services, llm, list(llm.registry.names)),
            "identity": _identity_limit(limiter, principal.identity)}


@router.get(f"{LLM}/rate-limits/{{provider}}", responses={401: {}, 404: {}})
async def rate_limit_one(provider: str, principal: PrincipalDep, services: ServicesDep,
                         llm: LlmDep) -> Any:
    if provider not in llm.registry:
        raise NotFoundError(f"no provider {provider}")
    return (await _rate_limits(services, llm, [provider]))[0]


@router.get(f"{LLM}/costs", responses={401: {}, 403: {}, 503: {}})
async def costs(principal: PrincipalDep, ch: ClickHouseDep, guard: GuardDep,
                hours: Hours = 24, identity: IdentityQ = None) -> Any:
    """Cost, calls and tokens by provider, by model and by identity over the window."""
    scope = await data_scope(principal, identity, guard)
    params: dict[str, Any] = {"h": hours}
    where = _scope(scope, params)
    by_provider, by_model, by_identity = await asyncio.gather(
        _q(ch, _calls_sql(ch, where, "provider"), params),
        _q(ch, _calls_sql(ch, where, "provider, model"), params),
        _q(ch, _calls_sql(ch, where, "identity_id"), params),
    )
    total = round(sum(float(r["cost_usd"] or 0) for r in by_provider), 9)
    return {"window_hours": hours, "identity": scope, "total_usd": total,
            "by_provider": by_provider, "by_model": by_model, "by_identity": by_identity}


@router.get(f"{LLM}/costs/summary", responses={401: {}, 403: {}, 503: {}})
async def costs_summary(principal: PrincipalDep, ch: ClickHouseDep, guard: GuardDep,
                        identity: IdentityQ = None) -> Any:
    """Spend today, this ISO week and this month (UTC calendar windows, as budgets use)."""
    scope = await data_scope(principal, identity, guard)
    params: dict[str, Any] = {}
    where = _scope(scope, params)
    week, month = await asyncio.gather(
        _q(ch, "SELECT "  # noqa: S608
               "round(sumIf(cost_usd, ts >= toStartOfDay(now64(3), 'UTC')), 9) AS today_usd, "
               "round(sum(cost_usd), 9) AS week_usd "
               f"FROM {ch.database}.llm_calls FINAL "
               f"WHERE ts >= toMonday(now64(3), 'UTC') AND {where}", params),
        _q(ch, "SELECT round(sum(cost_usd), 9) AS month_usd, "  # noqa: S608
               "countIf(status = 'ok') AS month_calls "
               f"FROM {ch.database}.llm_calls FINAL "
               f"WHERE ts >= toStartOfMonth(now64(3), 'UTC') AND {where}", params),
    )
    summary = {**(week[0] if week else {}), **(month[0] if month else {})}
    return {"identity": scope, **summary}


@router.get(f"{LLM}/fallback/stats", responses={401: {}, 403: {}, 503: {}})
async def fallback_stats(principal: PrincipalDep, ch: ClickHouseDep, guard: GuardDep,
                         hours: Hours = 24, identity: IdentityQ = None) -> Any:
    """How often requests were served by a fallback, and from which candidate to which."""
    scope = await data_scope(principal, identity, guard)
    params: dict[str, Any] = {"h": hours}
    where = _scope(scope, params)
    window = f"ts >= now64(3) - toIntervalHour({{h:UInt32}}) AND {where}"
    overall, moves = await asyncio.gather(
        _q(ch, "SELECT uniqExact(request_id) AS requests, "  # noqa: S608
               "uniqExactIf(request_id, status = 'ok') AS served, "
               "uniqExactIf(request_id, status = 'ok' AND fallback_from IS NOT NULL) "
               "AS served_by_fallback "
               f"FROM {ch.database}.llm_calls FINAL WHERE {window}", params),
        _q(ch, "SELECT fallback_from, provider, model, count() AS attempts, "  # noqa: S608
               "countIf(status = 'ok') AS ok "
               f"FROM {ch.database}.llm_calls FINAL WHERE {window} "
               "AND fallback_from IS NOT NULL AND status != 'skipped' "
               "GROUP BY fallback_from, provider, model ORDER BY attempts DESC", params),
    )
    o = overall[0] if overall else {"requests": 0, "served": 0, "served_by_fallback": 0}
    served = int(o["served"] or 0)
    return {"window_hours": hours, "identity": scope, **o,
            "fallback_rate": round(int(o["served_by_fallback"]) / served, 4) if served else 0.0,
            "moves": moves}


@router.get(f"{LLM}/alerts", responses={401: {}, 403: {}, 503: {}})
async def alerts(
    principal: PrincipalDep, ch: ClickHouseDep, guard: GuardDep, hours: Hours = 24,
    identity: IdentityQ = None,
    alert_type: Annotated[str | None, Query(alias="type", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Alerts newest first: budgets (the caller's) and provider health (everyone's)."""
    scope = await data_scope(principal, identity, guard)
    params: dict[str, Any] = {"h": hours, "n": limit}
    where = f"({_scope(scope, params)} OR identity_id = 'system')"
    if alert_type is not None:
        params["t"] = alert_type
        where += " AND alert_type = {t:String}"
    rows = await _q(
        ch, "SELECT event_id, alert_type, subject, message, severity, request_id, identity_id, "  # noqa: S608
            f"ts FROM {ch.database}.alerts FINAL "
            f"WHERE ts >= now64(3) - toIntervalHour({{h:UInt32}}) AND {where} "
            "ORDER BY ts DESC, event_id LIMIT {n:UInt32}", params)
    return {"window_hours": hours, "identity": scope, "alerts": rows}


# -- Nova pipeline -------------------------------------------------------------------------
def _requests_sql(ch: ClickHouse, where: str, group: str) -> str:
    return (f"SELECT {group}, count() AS requests, round(sum(cost_usd), 9) AS cost_usd, "  # noqa: S608
            "round(avg(latency_ms), 3) AS avg_ms, "
            "round(quantile(0.5)(latency_ms), 3) AS p50_ms, "
            "round(quantile(0.99)(latency_ms), 3) AS p99_ms "
            f"FROM {ch.database}.requests FINAL "
            f"WHERE request_ts >= now64(3) - toIntervalHour({{h:UInt32}}) AND {where} "
            f"GROUP BY {group} ORDER BY requests DESC, {group}")


@router.get(f"{NOVA}/dashboard", responses={401: {}, 403: {}, 503: {}})
async def nova_dashboard(principal: PrincipalDep, ch: ClickHouseDep, guard: GuardDep,
                         hours: Hours = 24, identity: IdentityQ = None) -> Any:
    """Requests by outcome, lane latencies and LLM cost over the window."""
    scope = await data_scope(principal, identity, guard)
    params: dict[str, Any] = {"h": hours}
    where = _scope(scope, params)
    by_status, lanes, llm = await asyncio.gather(
        _q(ch, _requests_sql(ch, where, "status"), params),
        _q(ch, "SELECT lane, count() AS events, countIf(status = 'error') AS errors, "  # noqa: S608
               "round(quantile(0.5)(duration_ms), 3) AS p50_ms, "
               "round(quantile(0.99)(duration_ms), 3) AS p99_ms "
               f"FROM {ch.database}.lane_events FINAL "
               f"WHERE request_ts >= now64(3) - toIntervalHour({{h:UInt32}}) AND {where} "
               "GROUP BY lane ORDER BY lane", params),
        _q(ch, _calls_sql(ch, where), params),
    )
    return {"window_hours": hours, "identity": scope,
            "requests": sum(int(r["requests"]) for r in by_status),
            "by_status": by_status, "lanes": lanes, "llm": llm[0] if llm else {}}


@router.get(f"{NOVA}/stats", responses={401: {}, 403: {}, 503: {}})
async def nova_stats(principal: PrincipalDep, ch: ClickHouseDep, guard: GuardDep,
                     hours: Hours = 24, identity: IdentityQ = None) -> Any:
    """Requests by status, task type, governance outcome and provider over the window."""
    scope = await data_scope(principal, identity, guard)
    params: dict[str, Any] = {"h": hours}
    where = _scope(scope, params)
    by_status, by_task, by_governance, by_provider = await asyncio.gather(
        _q(ch, _requests_sql(ch, where, "status"), params),
        _q(ch, _requests_sql(ch, where, "task_type"), params),
        _q(ch, _requests_sql(ch, where, "governance"), params),
        _q(ch, _requests_sql(ch, where, "provider"), params),
    )
    return {"window_hours": hours, "identity": scope, "by_status": by_status,
            "by_task_type": by_task, "by_governance": by_governance, "by_provider": by_provider}


@router.get(f"{NOVA}/costs", responses={401: {}, 403: {}, 503: {}})
async def nova_costs(principal: PrincipalDep, ch: ClickHouseDep, guard: GuardDep,
                     hours: Hours = 24, identity: IdentityQ = None) -> Any:
    """What requests cost, by task type and by day (all LLM attempts, failed ones too)."""
    scope = await data_scope(principal, identity, guard)
    params: dict[str, Any] = {"h": hours}
    where = _scope(scope, params)
    by_task, by_day = await asyncio.gather(
        _q(ch, _requests_sql(ch, where, "task_type"), params),
        _q(ch, _requests_sql(ch, where, "toDate(request_ts)"), params),
    )
    for row in by_day:
        row["day"] = row.pop("toDate(request_ts)")
    return {"window_hours": hours, "identity": scope,
            "total_usd": round(sum(float(r["cost_usd"] or 0) for r in by_task), 9),
            "by_task_type": by_task, "by_day": by_day}


@router.get(f"{NOVA}/pipelines/{{request_id}}", responses={401: {}, 403: {}, 404: {}, 503: {}})
async def pipeline(request_id: str, principal: PrincipalDep, ch: ClickHouseDep,
                   guard: GuardDep) -> Any:
    """One request's trail: its lanes in order and every LLM attempt (owner only)."""
    params = {"rid": request_id}
    lanes, calls, final = await asyncio.gather(
        _q(ch, "SELECT lane, status, started_at, duration_ms, worker, error, identity_id "  # noqa: S608
               f"FROM {ch.database}.lane_events FINAL WHERE request_id = {{rid:String}} "
               "ORDER BY started_at, lane", params),
        _q(ch, "SELECT attempt, provider, model, status, error, fallback_from, tokens_in, "  # noqa: S608
               "tokens_out, cost_usd, latency_ms, ts, identity_id "
               f"FROM {ch.database}.llm_calls FINAL WHERE request_id = {{rid:String}} "
               "ORDER BY attempt", params),
        _q(ch, "SELECT status, provider, model, cost_usd, attempts, latency_ms, "  # noqa: S608
               "identity_id FROM "
               f"{ch.database}.requests FINAL WHERE request_id = {{rid:String}}", params),
    )
    owners = {r["identity_id"] for r in (*lanes, *calls, *final)}
    if not owners:
        raise NotFoundError(f"no request {request_id}")
    if owners != {principal.identity}:
        await guard.violation(principal, "request", request_id, sorted(owners)[0])
        raise ForbiddenError("this request belongs to another identity")
    for row in (*lanes, *calls, *final):
        row.pop("identity_id", None)
    if final:  # the error text is private content: read only once the owner is known
        content = await asyncio.to_thread(request_content, ch, request_id)
        final[0] = {"status": final[0]["status"], "error": content["error"],
                    **{k: v for k, v in final[0].items() if k != "status"}}
    return {"request_id": request_id, "identity": principal.identity,
            "final": final[0] if final else None, "lanes": lanes, "llm_calls": calls}
