"""The monitoring routes that change something: limits, probe settings, thresholds, checks,
acknowledgements and retention.

Reading figures is ``gateway.routes.monitoring``; everything here writes shared state or data,
so each route says who may, and leaves a trace before it acts:

- **Platform-wide settings** (a provider's rate limits and their reset, the probe settings,
  the alert thresholds) restrict or watch every identity's requests, so they are an
  ``operator``'s (``nova.domain.roles``; an ``admin`` administers its own identity, not the
  platform). Each is an entity on the compacted ``entities`` topic, owned by ``system``: every
  gateway and worker reads it from there, so a change reaches all of them and survives
  restarts, as budgets and alert destinations do. Each change is an ``OPERATOR_ACTION`` audit
  fact with the settings before and after, produced before the write (no fact, no change).
  Who reads them: workers (limits, from the next request they route; the probe interval, from
  the next tick), every gateway's health view (window and failure share) and alert dispatcher
  (thresholds).
- **Check now** calls a provider from this gateway (its cheapest call, as the workers' probe);
  the outcome is a ``PROVIDER_CHECK`` alert, in the provider's history. It informs and does
  not decide: the status routing uses stays the workers' announcements and live calls. An
  operator's, as it spends provider quota.
- **Acknowledging an alert**: one's own identity's alerts, any role; a provider alert
  (``system``) or another identity's, an operator (audited); anyone else naming another
  identity's alert crosses the boundary (403 and an ``IDENTITY_BOUNDARY`` fact, nothing
  written). The acknowledgement is an entity too (``AlertAckEntity``), so every gateway shows
  it in ``GET .../alerts``.
- **Retention** deletes analytics rows older than N days: an ``admin`` its own identity's, an
  ``operator`` every identity's or one's. Audited before anything is deleted (an operator's
  act, or the admin's ``RESOURCE_CHANGE``), with the row counts it is about to delete. The
  audit trail itself (``audit_events``, the audit topic) is not analytics and is never touched.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter
from pydantic import Field, StringConstraints, ValidationError

from analytics import monitoring as q
from gateway.bodies import StrictBody
from gateway.boundary import EVERY_IDENTITY, BoundaryGuard
from gateway.deps import (
    ClickHouseDep,
    GuardDep,
    LlmDep,
    PrincipalDep,
    ServicesDep,
    require_role,
)
from gateway.llm_state import check_provider
from gateway.problems import problem
from gateway.routes.monitoring import (
    LLM,
    NOVA,
    ScopeDep,
    ack_out,
    probe_settings_out,
    rate_limit_rows,
)
from gateway.services import Services
from nova.auth.tokens import Principal
from nova.domain.roles import OPERATOR
from nova.entities.models import (
    SYSTEM_OWNER,
    AlertAckEntity,
    AlertThresholdsEntity,
    Changed,
    LatencyMs,
    MinCalls,
    Note,
    ProbeSettingsEntity,
    ProviderLimitsEntity,
    Rpm,
    Seconds,
    Share,
    Tpm,
    WaitS,
    WindowMin,
    alert_ack_id,
)
from nova.errors import ForbiddenError, NotFoundError
from nova.ids import uuid7
from nova.records import Alert, Event, now_ms

log = logging.getLogger(__name__)

router = APIRouter(tags=["monitoring"])

CHECK_SEVERITY: Final = {"healthy": "info", "down": "high"}
MAX_RETENTION_DAYS: Final = 36_500


def _operator(principal: Principal, what: str) -> None:
    """Platform-wide changes are an operator's (see the module docstring)."""
    if not principal.has_role(OPERATOR):
        raise ForbiddenError(f"only an operator changes {what}")


def _changed(principal: Principal) -> Changed:
    return Changed(updated_at=now_ms(), updated_by=principal.sub)


def _invalid(exc: ValidationError) -> Any:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return problem(422, f"{where}: {first['msg']}" if where else first["msg"], slug="validation")


async def _platform_change(guard: BoundaryGuard, principal: Principal, kind: str,
                           resource_id: str, operation: str, before: dict[str, Any] | None,
                           after: dict[str, Any]) -> None:
    await guard.operator_act(principal, kind, resource_id, EVERY_IDENTITY, operation=operation,
                             change={"before": before, "after": after})


# -- rate limits -------------------------------------------------------------------------
class LimitsBody(StrictBody):
    rpm: Rpm | None = Field(default=None, description="requests per minute; null: registry's")
    tpm: Tpm | None = Field(default=None, description="tokens per minute; null: registry's")


def _limits(e: ProviderLimitsEntity | None) -> dict[str, Any] | None:
    return None if e is None else {"rpm": e.rpm, "tpm": e.tpm, "reset_at": e.reset_at}


@router.put(f"{LLM}/rate-limits/{{provider}}", responses={401: {}, 403: {}, 404: {}, 422: {},
                                                         503: {}})
async def change_limits(provider: str, body: LimitsBody, principal: PrincipalDep,
                        guard: GuardDep, services: ServicesDep, llm: LlmDep) -> Any:
    """Set a provider's rpm and tpm for every worker (null: back to the registry's); each
    worker enforces its partition share from its next request, with full buckets."""
    _operator(principal, "provider limits")
    if provider not in llm.registry:
        raise NotFoundError(f"no provider {provider}")
    current = guard.store.get(ProviderLimitsEntity, provider)
    chosen = ProviderLimitsEntity(provider=provider, rpm=body.rpm, tpm=body.tpm,
                                  reset_at=current.reset_at if current else 0,
                                  changed=_changed(principal))
    await _platform_change(guard, principal, "provider_limits", provider, "replace",
                           _limits(current), _limits(chosen) or {})
    await guard.writer.put(chosen)
    return (await rate_limit_rows(services, llm, [provider]))[0]


@router.post(f"{LLM}/rate-limits/{{provider}}/reset", responses={401: {}, 403: {}, 404: {},
                                                                503: {}})
async def reset_limits(provider: str, principal: PrincipalDep, guard: GuardDep,
                       services: ServicesDep, llm: LlmDep) -> Any:
    """Refill the provider's buckets on every worker (after an incident, say); the limits
    stay as they are."""
    _operator(principal, "provider limits")
    if provider not in llm.registry:
        raise NotFoundError(f"no provider {provider}")
    current = guard.store.get(ProviderLimitsEntity, provider)
    chosen = ProviderLimitsEntity(provider=provider, rpm=current.rpm if current else None,
                                  tpm=current.tpm if current else None, reset_at=now_ms(),
                                  changed=_changed(principal))
    await _platform_change(guard, principal, "provider_limits", provider, "reset",
                           _limits(current), _limits(chosen) or {})
    await guard.writer.put(chosen)
    return (await rate_limit_rows(services, llm, [provider]))[0]


# -- health --------------------------------------------------------------------------------
class ProbeBody(StrictBody):
    interval_s: Seconds | None = Field(default=None, description="workers' probe interval")
    window_min: WindowMin | None = Field(default=None, description="live-call window")
    degraded_failure_rate: Share | None = Field(
        default=None, description="failure share of live calls that makes a provider degraded")


@router.put(f"{LLM}/health/probe-settings", responses={401: {}, 403: {}, 422: {}, 503: {}})
async def change_probe_settings(body: ProbeBody, principal: PrincipalDep, guard: GuardDep,
                                services: ServicesDep, llm: LlmDep) -> Any:
    """Change how provider health is watched, for every worker and gateway; the fields left
    out keep their current values."""
    _operator(principal, "probe settings")
    before = probe_settings_out(services, llm)
    given = body.model_dump(exclude_none=True)
    try:
        chosen = ProbeSettingsEntity(
            interval_s=given.get("interval_s", before["interval_s"]),
            window_min=given.get("window_min", before["window_min"]),
            degraded_failure_rate=given.get("degraded_failure_rate",
                                            before["degraded_failure_rate"]),
            changed=_changed(principal))
    except ValidationError as exc:  # a current value (the settings') outside the API's bounds
        return _invalid(exc)
    after = chosen.model_dump(exclude={"changed"})
    await _platform_change(guard, principal, "probe_settings", "global", "replace",
                           {k: before[k] for k in after}, after)
    await guard.writer.put(chosen)
    return probe_settings_out(services, llm)


@router.post(f"{LLM}/health/{{provider}}/check", responses={401: {}, 403: {}, 404: {}, 503: {}})
async def check_now(provider: str, principal: PrincipalDep, services: ServicesDep,
                    llm: LlmDep) -> Any:
    """Call the provider's cheapest endpoint now, from this gateway, and record the outcome
    in its history (a ``PROVIDER_CHECK`` alert); the answer has it and the health as routing
    sees it."""
    _operator(principal, "provider checks")
    if provider not in llm.registry:
        raise NotFoundError(f"no provider {provider}")
    outcome = await check_provider(llm.pool, provider)
    at = now_ms()
    await services.producer.send("events", f"provider-check/{provider}", Event(
        event_id=f"provider-check/{provider}/{uuid7()}", kind="alert",
        request_id=f"provider-check/{provider}", identity_id=SYSTEM_OWNER, ts=at,
        alert=Alert(alert_type=q.PROVIDER_CHECK, subject=provider, message=outcome.status,
                    severity=CHECK_SEVERITY[outcome.status])))
    health = await llm.health.providers(services.clickhouse)
    return {"provider": provider, "status": outcome.status, "latency_ms": outcome.latency_ms,
            "error": outcome.error, "checked_at": datetime.fromtimestamp(at / 1000, UTC)
            .isoformat(), "health": health[provider].to_json()}


# -- alerts --------------------------------------------------------------------------------
class AckBody(StrictBody):
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    note: Note = ""


@router.post(f"{LLM}/alerts/acknowledge", responses={401: {}, 403: {}, 404: {}, 422: {},
                                                    503: {}})
async def acknowledge(body: AckBody, principal: PrincipalDep, guard: GuardDep,
                      ch: ClickHouseDep) -> Any:
    """Mark an alert seen, for every gateway (see the module docstring for whose)."""
    owner = await asyncio.to_thread(q.alert_owner, ch, body.event_id)
    if owner is None:
        raise NotFoundError("no such alert")
    if owner != principal.identity:
        if not principal.has_role(OPERATOR):
            if owner == SYSTEM_OWNER:
                raise ForbiddenError("only an operator acknowledges provider alerts")
            raise await guard.refuse(principal, "alert", body.event_id, owner,
                                     operation="acknowledge")
        await guard.operator_act(principal, "alert", body.event_id,
                                 EVERY_IDENTITY if owner == SYSTEM_OWNER else owner,
                                 operation="acknowledge", change={"note": body.note})
    ack = guard.store.get(AlertAckEntity, alert_ack_id(body.event_id))
    if ack is None:
        ack = AlertAckEntity(id=alert_ack_id(body.event_id), event_id=body.event_id,
                             owner=owner, by_identity=principal.identity, by=principal.sub,
                             note=body.note, at=now_ms())
        await guard.writer.put(ack)
    return {"event_id": body.event_id, "identity": owner, "acknowledged": ack_out(ack)}


def thresholds_out(services: Services) -> dict[str, Any]:
    chosen = services.entities.alert_thresholds()
    s = services.settings
    if chosen is None:
        return {"window_s": s.alert_window_s, "min_calls": s.alert_min_calls,
                "error_rate": s.alert_error_rate, "latency_ms": s.alert_latency_ms,
                "checkpoint_wait_s": s.alert_checkpoint_wait_s, "source": "settings",
                "changed": None}
    return {**chosen.model_dump(exclude={"changed"}), "source": "operator",
            "changed": chosen.changed.model_dump()}


@router.get(f"{LLM}/alerts/thresholds", responses={401: {}})
async def alert_thresholds(principal: PrincipalDep, services: ServicesDep) -> Any:
    """When error-rate, latency and checkpoint-wait alerts are raised (an operator's, shared
    through the entities topic, or the settings')."""
    return thresholds_out(services)


class ThresholdsBody(StrictBody):
    window_s: Seconds | None = None
    min_calls: MinCalls | None = None
    error_rate: Share | None = None
    latency_ms: LatencyMs | None = None
    checkpoint_wait_s: WaitS | None = None


@router.put(f"{LLM}/alerts/thresholds", responses={401: {}, 403: {}, 422: {}, 503: {}})
async def change_alert_thresholds(body: ThresholdsBody, principal: PrincipalDep,
                                  guard: GuardDep, services: ServicesDep) -> Any:
    """Change the alert thresholds of every gateway's dispatcher; fields left out keep their
    current values."""
    _operator(principal, "alert thresholds")
    before = thresholds_out(services)
    fields = ("window_s", "min_calls", "error_rate", "latency_ms", "checkpoint_wait_s")
    given = body.model_dump(exclude_none=True)
    try:
        chosen = AlertThresholdsEntity(**{f: given.get(f, before[f]) for f in fields},
                                       changed=_changed(principal))
    except ValidationError as exc:
        return _invalid(exc)
    await _platform_change(guard, principal, "alert_thresholds", "global", "replace",
                           {f: before[f] for f in fields}, chosen.model_dump(exclude={"changed"}))
    await guard.writer.put(chosen)
    return thresholds_out(services)


# -- maintenance -------------------------------------------------------------------------
class RetentionBody(StrictBody):
    older_than_days: int = Field(ge=1, le=MAX_RETENTION_DAYS,
                                 description="delete rows dated more than this many days ago")
    dry_run: bool = Field(default=False, description="count only, delete nothing")


@router.post(f"{NOVA}/maintenance/retention", responses={401: {}, 403: {}, 422: {}, 503: {}})
async def retention(body: RetentionBody, principal: PrincipalDep, guard: GuardDep,
                    ch: ClickHouseDep, scope: ScopeDep) -> Any:
    """Delete analytics rows older than ``older_than_days`` (see the module docstring for
    whose and what); answers the rows deleted per table."""
    require_role(principal, OPERATOR)  # admins (their identity's) and operators
    cutoff = datetime.now(UTC) - timedelta(days=body.older_than_days)
    counts = await asyncio.to_thread(q.retention_counts, ch, scope, cutoff)
    answer = {"identity": scope, "older_than_days": body.older_than_days,
              "cutoff": cutoff.isoformat(), "dry_run": body.dry_run, "deleted": counts}
    if body.dry_run:
        return answer
    detail: dict[str, object] = {"older_than_days": body.older_than_days,
                                 "cutoff": cutoff.isoformat(), "rows": counts}
    if principal.has_role(OPERATOR) and scope != principal.identity:
        await guard.operator_act(principal, "analytics", "retention",
                                 EVERY_IDENTITY if scope is None else scope,
                                 operation="delete", change=detail)
    else:
        await guard.owner_change(principal, "analytics", "retention", operation="delete",
                                 detail=detail)
    await asyncio.to_thread(q.drop_older_than, ch, scope, cutoff,
                            [table for table, n in counts.items() if n])
    log.info("retention: %s deleted rows older than %s of %s: %s", principal.sub,
             cutoff.isoformat(), scope or "every identity", counts)
    return answer
