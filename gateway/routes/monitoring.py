"""Monitoring: LLM calls, costs, health, limits, fallbacks, alerts and pipelines, from ClickHouse.

Every figure is read from ClickHouse (the named queries of ``analytics.monitoring``) or from
shared state (the registry, the routing tables, the entities topic), never from one process's
memory: any gateway answers the same, and a restarted one loses nothing.

Whose data: every role but ``operator`` sees its own identity's figures; an operator sees
every identity or one (``?identity=``). Every route that counts an identity's data takes that
decision from one dependency, :data:`ScopeDep` (``gateway.llm_state.data_scope``); anyone else
naming another identity is a 403 boundary crossing with its IDENTITY_BOUNDARY fact. Provider
health and provider limits are about providers, not identities, and are the same for everyone.
A pipeline (``/api/v2/nova/monitoring/pipelines/{id}``) is shown to its owner only: it is one
request's trail with its error text (private content, ``request_content``), and another
identity's request is a 403 boundary crossing whatever the caller's roles, operator included.
Its timeline (``.../timeline``, event types and reason codes, no content) and the pipeline list
(metrics only) follow the figures' rule: the owner's identity, or an operator.

Windows are ``?hours=`` back from now (default 24), by when the call or alert happened. What
changes anything (limits, settings, checks, acknowledgements, retention) is
``gateway.routes.monitoring_changes``; every route and what backs it: ``docs/monitoring.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query

from analytics import monitoring as q
from analytics.queries import request_content
from gateway.deps import (
    ClickHouseDep,
    GuardDep,
    LlmDep,
    PrincipalDep,
    RateLimiterDep,
    ServicesDep,
)
from gateway.llm_state import SEE_ALL_ROLES, LlmState, data_scope
from gateway.ratelimit import IdentityRateLimiter
from gateway.services import Services
from nova.entities.models import AlertAckEntity, alert_ack_id
from nova.errors import ForbiddenError, NotFoundError
from nova.llm.executor import effective_limits

router = APIRouter(tags=["monitoring"])

LLM: Final = "/api/v2/llm/monitoring"
NOVA: Final = "/api/v2/nova/monitoring"
Hours = Annotated[int, Query(ge=1, le=24 * 366, description="window: this many hours back")]
IdentityQ = Annotated[str | None, Query(max_length=128,
                                        description="operators: one identity")]


async def monitoring_scope(principal: PrincipalDep, guard: GuardDep,
                           identity: IdentityQ = None) -> str | None:
    """Whose figures the route counts: the caller's identity, or, for an operator, every
    identity (None) or the one it names; naming another is a 403 boundary crossing."""
    return await data_scope(principal, identity, guard)


ScopeDep = Annotated[str | None, Depends(monitoring_scope)]


# The named queries block (the ClickHouse client does): each runs in a thread of its own.
_q = asyncio.to_thread
# -- LLM ---------------------------------------------------------------------------------
@router.get(f"{LLM}/dashboard", responses={401: {}, 403: {}, 503: {}})
async def llm_dashboard(principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep,
                        services: ServicesDep, llm: LlmDep, hours: Hours = 24) -> Any:
    """Calls, cost, latency and fallbacks in the window; provider health; recent alerts."""
    totals, by_provider, fallbacks, alerts, health = await asyncio.gather(
        _q(q.call_figures, ch, scope, hours),
        _q(q.call_figures, ch, scope, hours, "provider"),
        _q(q.fallback_served, ch, scope, hours),
        _q(q.alert_counts, ch, scope, hours),
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


@router.get(f"{LLM}/health/healthy", responses={401: {}})
async def llm_healthy(principal: PrincipalDep, services: ServicesDep, llm: LlmDep) -> Any:
    """The enabled providers that are healthy now, in registry priority order."""
    health = await llm.health.providers(services.clickhouse)
    enabled = sorted((p for p in llm.registry if p.enabled), key=lambda p: (p.priority, p.name))
    return {"providers": [p.name for p in enabled if health[p.name].status == "healthy"]}


@router.get(f"{LLM}/health/probe-settings", responses={401: {}})
async def probe_settings(principal: PrincipalDep, services: ServicesDep, llm: LlmDep) -> Any:
    """What health is judged by: the workers' probe interval, the live-call window and the
    failure share that makes a provider degraded; an operator's (shared by every process
    through the entities topic) or the settings'."""
    return probe_settings_out(services, llm)


def probe_settings_out(services: Services, llm: LlmState) -> dict[str, Any]:
    chosen = services.entities.probe_settings()
    if chosen is None:
        window_min, rate = llm.health.window_min, llm.health.degraded_rate
        return {"interval_s": services.settings.llm_probe_interval_s, "window_min": window_min,
                "degraded_failure_rate": rate, "source": "settings", "changed": None}
    return {"interval_s": chosen.interval_s, "window_min": chosen.window_min,
            "degraded_failure_rate": chosen.degraded_failure_rate, "source": "operator",
            "changed": chosen.changed.model_dump()}


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
        history = await _q(q.provider_status_history, ch, provider)
    return {**health[provider].to_json(), "history": history}


@router.get(f"{LLM}/health/{{provider}}/history", responses={401: {}, 404: {}, 503: {}})
async def llm_health_history(
    provider: str, principal: PrincipalDep, ch: ClickHouseDep, llm: LlmDep, hours: Hours = 24,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """The provider's status announcements (workers) and on-demand checks (operators) over
    the window, the newest first."""
    if provider not in llm.registry:
        raise NotFoundError(f"no provider {provider}")
    rows = await _q(q.provider_status_history, ch, provider, limit, hours, checks=True)
    return {"provider": provider, "window_hours": hours, "history": rows}


async def rate_limit_rows(services: Services, llm: LlmState, providers: list[str],
                          ) -> list[dict[str, Any]]:
    """Each provider's limits in force (an operator's, else the registry's: ``source``) and
    its use in the last minute across all workers, from ClickHouse."""
    ch = services.clickhouse
    seen = {} if ch is None else await _q(q.provider_load, ch, providers)
    chosen = {e.provider: e for e in services.entities.provider_limits()}
    limits = effective_limits(llm.registry, {p: (e.rpm, e.tpm) for p, e in chosen.items()})
    out = []
    for name in providers:
        rpm, tpm = limits[name]
        row, override = seen.get(name, {}), chosen.get(name)
        calls, tokens = int(row.get("calls_1m", 0)), int(row.get("tokens_1m", 0))
        out.append({
            "provider": name, "rpm": rpm, "tpm": tpm,
            "source": "registry" if override is None or (
                override.rpm is None and override.tpm is None) else "operator",
            "reset_at": override.reset_at or None if override else None,
            "calls_last_minute": calls, "tokens_last_minute": tokens,
            "rpm_used": round(calls / rpm, 4), "tpm_used": round(tokens / tpm, 4),
            "http_429_last_hour": int(row.get("http_429_1h", 0)),
            "skipped_over_limit_last_hour": int(row.get("skipped_over_limit_1h", 0)),
        })
    return out


def _identity_limit(limiter: IdentityRateLimiter, identity: str) -> dict[str, Any]:
    return {"limit": f"identity:{identity}:rpm", "rpm": limiter.rpm,
            "remaining_now": round(limiter.remaining(identity), 3),
            "scope": "every gateway (shared through the admissions topic)"}


@router.get(f"{LLM}/rate-limits", responses={401: {}})
async def rate_limits(principal: PrincipalDep, services: ServicesDep, llm: LlmDep,
                      limiter: RateLimiterDep) -> Any:
    """Provider quotas against calls in the last minute (all workers), and the caller's
    identity limit at this gateway. Workers each enforce their partition share of a quota."""
    return {"providers": await rate_limit_rows(services, llm, list(llm.registry.names)),
            "identity": _identity_limit(limiter, principal.identity)}


@router.get(f"{LLM}/rate-limits/{{provider}}", responses={401: {}, 404: {}})
async def rate_limit_one(provider: str, principal: PrincipalDep, services: ServicesDep,
                         llm: LlmDep) -> Any:
    if provider not in llm.registry:
        raise NotFoundError(f"no provider {provider}")
    return (await rate_limit_rows(services, llm, [provider]))[0]


@router.get(f"{LLM}/costs", responses={401: {}, 403: {}, 503: {}})
async def costs(principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep,
                hours: Hours = 24) -> Any:
    """Cost, calls and tokens by provider, by model and by identity over the window."""
    by_provider, by_model, by_identity = await asyncio.gather(
        _q(q.call_figures, ch, scope, hours, "provider"),
        _q(q.call_figures, ch, scope, hours, "provider, model"),
        _q(q.call_figures, ch, scope, hours, "identity_id"),
    )
    return {"window_hours": hours, "identity": scope, "total_usd": _total(by_provider),
            "by_provider": by_provider, "by_model": by_model, "by_identity": by_identity}


@router.get(f"{LLM}/costs/summary", responses={401: {}, 403: {}, 503: {}})
async def costs_summary(principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep) -> Any:
    """Spend today, this ISO week and this month (UTC calendar windows, as budgets use)."""
    week, month = await asyncio.gather(
        _q(q.spend_this_week, ch, scope),
        _q(q.spend_this_month, ch, scope),
    )
    summary = {**(week[0] if week else {}), **(month[0] if month else {})}
    return {"identity": scope, **summary}


@router.get(f"{LLM}/costs/by-identity", responses={401: {}, 403: {}, 503: {}})
async def costs_by_identity(
    principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep, hours: Hours = 24 * 31,
    period: Annotated[q.Period, Query(description="UTC calendar windows: day, ISO week, "
                                                  "month")] = "day",
) -> Any:
    """What each identity spent per period (a member: its own identity only), over the window
    (default 31 days)."""
    rows = await _q(q.cost_by_identity_period, ch, scope, hours, period)
    return {"window_hours": hours, "identity": scope, "period": period,
            "total_usd": _total(rows), "by_identity": rows}


def _total(rows: list[dict[str, Any]]) -> float:
    return round(sum(float(r["cost_usd"] or 0) for r in rows), 9)


def _costs_by(path: str, key: str, figures: Callable[..., list[dict[str, Any]]], group: str,
              doc: str) -> None:
    """Register ``GET path``: the scope's figures per ``group`` over the window, with their
    total, under ``key`` (the report's costs by provider, model, identity, ...)."""

    async def route(principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep,
                    hours: Hours = 24) -> Any:
        rows = await _q(figures, ch, scope, hours, group)
        return {"window_hours": hours, "identity": scope, "total_usd": _total(rows), key: rows}

    route.__doc__ = doc
    name = f"{'nova' if path.startswith(NOVA) else 'llm'}_costs_{key}"
    router.get(path, name=name, responses={401: {}, 403: {}, 503: {}})(route)


_costs_by(f"{LLM}/costs/by-provider", "by_provider", q.call_figures, "provider",
          "Cost, calls, tokens and latency per provider over the window, the costliest first.")
_costs_by(f"{LLM}/costs/by-model", "by_model", q.call_figures, "provider, model",
          "Cost, calls, tokens and latency per provider and model over the window.")


@router.get(f"{LLM}/fallback/stats", responses={401: {}, 403: {}, 503: {}})
async def fallback_stats(principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep,
                         hours: Hours = 24) -> Any:
    """How often requests were served by a fallback, and from which candidate to which."""
    overall, moves = await asyncio.gather(
        _q(q.fallback_requests, ch, scope, hours),
        _q(q.fallback_moves, ch, scope, hours),
    )
    o = overall[0] if overall else {"requests": 0, "served": 0, "served_by_fallback": 0}
    served = int(o["served"] or 0)
    return {"window_hours": hours, "identity": scope, **o,
            "fallback_rate": round(int(o["served_by_fallback"]) / served, 4) if served else 0.0,
            "moves": moves}


@router.get(f"{LLM}/alerts", responses={401: {}, 403: {}, 503: {}})
async def alerts(
    principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep, services: ServicesDep,
    hours: Hours = 24,
    alert_type: Annotated[str | None, Query(alias="type", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Alerts newest first: budgets (the caller's) and provider health (everyone's), each
    with its acknowledgement (who, when, note) or null."""
    rows = await _q(q.recent_alerts, ch, scope, hours, alert_type, limit)
    store = services.entities
    for row in rows:
        ack = store.get(AlertAckEntity, alert_ack_id(str(row["event_id"])))
        row["acknowledged"] = None if ack is None else ack_out(ack)
    return {"window_hours": hours, "identity": scope, "alerts": rows}


def ack_out(ack: AlertAckEntity) -> dict[str, Any]:
    return {"by_identity": ack.by_identity, "by": ack.by, "at": ack.at, "note": ack.note}


# -- Nova pipeline -------------------------------------------------------------------------
@router.get(f"{NOVA}/dashboard", responses={401: {}, 403: {}, 503: {}})
async def nova_dashboard(principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep,
                         hours: Hours = 24) -> Any:
    """Requests by outcome, lane latencies and LLM cost over the window."""
    by_status, lanes, llm = await asyncio.gather(
        _q(q.request_figures, ch, scope, hours, "status"),
        _q(q.lane_figures, ch, scope, hours),
        _q(q.call_figures, ch, scope, hours),
    )
    return {"window_hours": hours, "identity": scope,
            "requests": sum(int(r["requests"]) for r in by_status),
            "by_status": by_status, "lanes": lanes, "llm": llm[0] if llm else {}}


@router.get(f"{NOVA}/stats", responses={401: {}, 403: {}, 503: {}})
async def nova_stats(principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep,
                     hours: Hours = 24) -> Any:
    """The overall figures (requests, outcomes, cost, tokens, latency) and requests by
    status, task type, governance outcome and provider over the window."""
    overall, by_status, by_task, by_governance, by_provider = await asyncio.gather(
        _q(q.request_overall, ch, scope, hours),
        _q(q.request_figures, ch, scope, hours, "status"),
        _q(q.request_figures, ch, scope, hours, "task_type"),
        _q(q.request_figures, ch, scope, hours, "governance"),
        _q(q.request_figures, ch, scope, hours, "provider"),
    )
    o = overall[0] if overall else {}
    requests = int(o.get("requests") or 0)
    o["success_rate"] = round(int(o["completed"]) / requests, 4) if requests else 0.0
    return {"window_hours": hours, "identity": scope, "overall": o, "by_status": by_status,
            "by_task_type": by_task, "by_governance": by_governance, "by_provider": by_provider}


@router.get(f"{NOVA}/stats/lanes", responses={401: {}, 403: {}, 503: {}})
async def nova_stats_lanes(principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep,
                           hours: Hours = 24) -> Any:
    """Per lane (A to G): events, errors and p50/p99 time in the lane over the window."""
    return {"window_hours": hours, "identity": scope,
            "by_lane": await _q(q.lane_figures, ch, scope, hours)}


@router.get(f"{NOVA}/stats/task-types", responses={401: {}, 403: {}, 503: {}})
async def nova_stats_task_types(principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep,
                                hours: Hours = 24) -> Any:
    """Requests, cost and end-to-end latency per task type (lane A's) over the window."""
    return {"window_hours": hours, "identity": scope,
            "by_task_type": await _q(q.request_figures, ch, scope, hours, "task_type")}


@router.get(f"{NOVA}/stats/actions", responses={401: {}, 403: {}, 503: {}})
async def nova_stats_actions(principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep,
                             hours: Hours = 24) -> Any:
    """Requests, cost and end-to-end latency per action (lane A's: pay, send, read, ...)."""
    return {"window_hours": hours, "identity": scope,
            "by_action": await _q(q.request_figures, ch, scope, hours, "action")}


@router.get(f"{NOVA}/costs", responses={401: {}, 403: {}, 503: {}})
async def nova_costs(principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep,
                     hours: Hours = 24) -> Any:
    """What requests cost, by task type and by day (all LLM attempts, failed ones too)."""
    by_task, by_day = await asyncio.gather(
        _q(q.request_figures, ch, scope, hours, "task_type"),
        _q(q.request_figures, ch, scope, hours, "toDate(request_ts)"),
    )
    for row in by_day:
        row["day"] = row.pop("toDate(request_ts)")
    return {"window_hours": hours, "identity": scope,
            "total_usd": round(sum(float(r["cost_usd"] or 0) for r in by_task), 9),
            "by_task_type": by_task, "by_day": by_day}


_costs_by(f"{NOVA}/costs/by-identity", "by_identity", q.request_figures, "identity_id",
          "What requests cost per identity over the window (a member: its own only).")
_costs_by(f"{NOVA}/costs/by-sphere", "by_sphere", q.request_figures, "sphere_id",
          "What requests cost per sphere (the identity's at submission; null: none on record).")
_costs_by(f"{NOVA}/costs/by-task-type", "by_task_type", q.request_figures, "task_type",
          "What requests cost per task type over the window (every LLM attempt, failed ones "
          "too).")


Filter = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.:/-]+$")]


@router.get(f"{NOVA}/pipelines", responses={401: {}, 403: {}, 503: {}})
async def pipelines(
    principal: PrincipalDep, ch: ClickHouseDep, scope: ScopeDep, hours: Hours = 24,
    status: Filter = None, task_type: Filter = None, action: Filter = None,
    provider: Filter = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Any:
    """The requests of the window, newest first, with their metrics (no prompt, answer or
    error text), filtered by status, task type, action and provider, a page at a time."""
    f = q.PipelineFilter(status=status, task_type=task_type, action=action, provider=provider)
    total, page = await _q(q.pipelines, ch, scope, hours, f, limit, offset)
    return {"window_hours": hours, "identity": scope, "total": total, "limit": limit,
            "offset": offset, "next_offset": offset + len(page) if offset + len(page) < total
            else None, "pipelines": page}


@router.get(f"{NOVA}/pipelines/{{request_id}}", responses={401: {}, 403: {}, 404: {}, 503: {}})
async def pipeline(request_id: str, principal: PrincipalDep, ch: ClickHouseDep,
                   guard: GuardDep) -> Any:
    """One request's trail: its lanes in order and every LLM attempt (owner only)."""
    lanes, calls, final = await asyncio.gather(
        _q(q.pipeline_lanes, ch, request_id),
        _q(q.pipeline_calls, ch, request_id),
        _q(q.pipeline_outcome, ch, request_id),
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
        content = await _q(request_content, ch, request_id)
        final[0] = {"status": final[0]["status"], "error": content["error"],
                    **{k: v for k, v in final[0].items() if k != "status"}}
    return {"request_id": request_id, "identity": principal.identity,
            "final": final[0] if final else None, "lanes": lanes, "llm_calls": calls}


@router.get(f"{NOVA}/pipelines/{{request_id}}/timeline",
            responses={401: {}, 403: {}, 404: {}, 503: {}})
async def pipeline_timeline(request_id: str, principal: PrincipalDep, ch: ClickHouseDep,
                            guard: GuardDep) -> Any:
    """One request's events in the report's vocabulary (PIPELINE_START, LANE_START,
    LLM_CALL_COMPLETE, CHECKPOINT_CREATED, ...), in order, with the time each happened.

    Statuses and reason codes only, no content: so, unlike the trail above, an operator reads
    every identity's; anyone else its own identity's (403 and a boundary fact otherwise)."""
    rows = await _q(q.pipeline_timeline, ch, request_id)
    owners = {r["identity_id"] for r in rows}
    if not owners:
        raise NotFoundError(f"no request {request_id}")
    if owners != {principal.identity} and not principal.has_role(*SEE_ALL_ROLES):
        await guard.violation(principal, "request", request_id, sorted(owners)[0])
        raise ForbiddenError("this request belongs to another identity")
    for row in rows:
        row.pop("identity_id")
    return {"request_id": request_id, "events": rows}
