"""The LLM registry, routing decisions, fallback chains and budgets: ``/api/v2/llm``.

``POST /routing/decide`` answers "where would this request go, and why" with the gateway's own
router and the providers' health as ClickHouse knows it (``gateway.llm_state``); it calls no
provider. A request nobody may serve is a problem+json, never a guess: 503 when providers are
unavailable (the ``nova`` role with Anthropic down names the lock and the reason), 422 when
the request itself names an unknown provider or model.

Budgets are entities on the compacted ``entities`` topic (``BudgetEntity``); every worker
loads all of them and enforces them before each call (``streams.execution``). Who may do what
(roles act within their token's identity, ``nova.domain.roles``):

- members, approvers and admins create, read, replace and delete their own identity's
  ``identity`` budget (scope ``identity``, subject their identity). Another identity's budget
  is a 403 boundary crossing with its IDENTITY_BOUNDARY fact, whatever the roles: an ``admin``
  administers its identity, not its neighbours'.
- Every other budget restricts other identities' requests (a ``sphere`` budget every identity
  of the sphere, a ``provider`` budget everyone's calls, ``*`` each subject separately, so a
  hard limit of 0 on ``*`` blocks everyone), and is an ``operator``'s act: creating, replacing
  or deleting one, and any budget of another identity. An operator's budget on one identity
  is owned by that identity (it lists it and sees its spend); platform-wide ones by the
  operator's identity. Each such change is an ``OPERATOR_ACTION`` audit fact, produced before
  the change (``BoundaryGuard.operator_act``): no fact, no change. ``GET ?all=true`` lists every
  owner's budgets for operators, so an operator can always find and lift a blocking one.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import Field, StringConstraints

from analytics.client import ClickHouse
from analytics.queries import spent_since
from gateway.bodies import StrictBody
from gateway.boundary import EVERY_IDENTITY, BoundaryGuard
from gateway.deps import GuardDep, LlmDep, PrincipalDep, ServicesDep, require_role
from gateway.problems import problem
from gateway.services import Services
from nova.auth.tokens import Principal
from nova.domain.roles import OPERATOR
from nova.entities.models import BudgetEntity
from nova.entities.store import EntityStore
from nova.errors import ConfigError, ConflictError, ForbiddenError, NotFoundError, ProviderError
from nova.ids import uuid7
from nova.llm.budgets import EACH, window_start
from nova.llm.routing import Priority, RouteRequest, Strategy, TaskType
from nova.records import now_ms

router = APIRouter(prefix="/api/v2/llm", tags=["llm"])

MAX_BUDGETS_PER_IDENTITY: Final = 50
WRITER_ROLES: Final = ("member", "approver")
Subject = Annotated[str, StringConstraints(min_length=1, max_length=128,
                                           pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9._@-]*)$")]


# -- registry ----------------------------------------------------------------------------
@router.get("/providers", responses={401: {}})
async def providers(principal: PrincipalDep, services: ServicesDep, llm: LlmDep) -> Any:
    """Every provider: API style, limits, priority, models with prices, and health now."""
    health = await llm.health.providers(services.clickhouse)
    return {"providers": [
        {
            "name": p.name, "api": p.api, "enabled": p.enabled, "priority": p.priority,
            "rpm": p.rpm, "tpm": p.tpm, "default_model": p.default_model,
            "status": health[p.name].status,
            "models": [
                {"id": m.id, "context_window": m.context_window,
                 "input_usd_per_mtok": m.input, "output_usd_per_mtok": m.output,
                 "cached_input_usd_per_mtok": m.cached_input, "aliases": list(m.aliases)}
                for m in p.models
            ],
        }
        for p in llm.registry
    ]}


# -- routing -----------------------------------------------------------------------------
class DecideBody(StrictBody):
    task_type: TaskType = "general"
    role: str | None = Field(default=None, max_length=64)
    provider: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=128)
    strategy: Strategy = "task"
    estimated_tokens: int = Field(default=0, ge=0, le=10_000_000)
    priority: Priority = "normal"


@router.post("/routing/decide", responses={401: {}, 422: {}, 503: {}})
async def decide(body: DecideBody, principal: PrincipalDep, services: ServicesDep,
                 llm: LlmDep) -> Any:
    """The routing decision for ``body``, with its chain and reasons; nothing is called."""
    state = await llm.health.snapshot(services.clickhouse)
    request = RouteRequest(**body.model_dump())
    try:
        decision = llm.router.decide(request, state)
    except ProviderError as exc:
        return problem(503, str(exc), slug="no-provider", provider=exc.provider,
                       role=body.role)
    except ConfigError as exc:
        return problem(422, str(exc), slug="routing")
    return {
        "provider": decision.provider,
        "model": decision.model,
        "chain": [{"provider": c.provider, "model": c.model} for c in decision.chain],
        "reasons": list(decision.reasons),
        "requested_model": body.model,
        "strategy": decision.strategy,
        "priority": decision.priority,
        "locked_to": decision.locked_to,
        "health": {p: s for p, s in state.statuses.items() if s != "healthy"},
    }


@router.get("/monitoring/fallback", responses={401: {}})
@router.get("/monitoring/fallback/chains", name="fallback_chains_alias", responses={401: {}})
async def fallback_chains(principal: PrincipalDep, llm: LlmDep) -> Any:
    """The routing tables and, per task type, the chain a healthy system would use
    (``/fallback/chains``, the report's name for it, is the same route)."""
    config = llm.router.config
    chains = {}
    for task in sorted(config.task_routing):
        decision = llm.router.decide(RouteRequest(task_type=task))
        chains[task] = [str(c) for c in decision.chain]
    return {
        "fallbacks": {k: list(v) for k, v in config.fallbacks.items()},
        "task_routing": dict(config.task_routing),
        "role_routing": dict(config.role_routing),
        "locked_roles": dict(config.locked_roles),
        "max_chain": config.max_chain,
        "chains_by_task": chains,
    }


@router.get("/monitoring/fallback/resolve", responses={401: {}, 404: {}, 503: {}})
async def resolve_provider(
    principal: PrincipalDep, services: ServicesDep, llm: LlmDep,
    provider: Annotated[str, Query(min_length=1, max_length=64,
                                   description="the provider a request asks for")],
) -> Any:
    """Which provider would serve a request for ``provider`` now: the router's own decision
    with the providers' health (``/routing/decide``'s), so a provider that is down resolves
    to its first available fallback. 503 when no provider of its chain is available."""
    if provider not in llm.registry:
        raise NotFoundError(f"no provider {provider}")
    state = await llm.health.snapshot(services.clickhouse)
    try:
        decision = llm.router.decide(RouteRequest(provider=provider), state)
    except ProviderError as exc:
        return problem(503, str(exc), slug="no-provider", provider=provider)
    return {
        "requested": provider, "resolved": decision.provider, "model": decision.model,
        "fell_back": decision.provider != provider,
        "chain": [{"provider": c.provider, "model": c.model,
                   "status": state.statuses.get(c.provider, "healthy")} for c in decision.chain],
        "reasons": list(decision.reasons),
    }


# -- budgets -----------------------------------------------------------------------------
class BudgetBody(StrictBody):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    scope: Literal["identity", "sphere", "provider"] = "identity"
    subject: Subject | None = Field(
        default=None, description="identity id, sphere id or provider; default: your identity "
        "(identity scope) or your sphere (sphere scope); '*' = each subject separately")
    period: Literal["day", "week", "month"] = "month"
    soft_usd: float = Field(ge=0)
    hard_usd: float = Field(ge=0)


def _subject(body: BudgetBody, principal: Principal, guard: BoundaryGuard) -> str:
    if body.subject is not None:
        return body.subject
    if body.scope == "identity":
        return principal.identity
    if body.scope == "sphere":
        sphere = guard.store.sphere_of(principal.identity)
        if sphere is None:
            raise ConfigError("your identity has no sphere on record: name the subject")
        return str(sphere)
    raise ConfigError("a provider budget must name its provider as subject")


def _check_provider(scope: str, subject: str, providers: tuple[str, ...]) -> None:
    if scope == "provider" and subject != EACH and subject not in providers:
        raise ConfigError(f"unknown provider {subject!r}")


def _target(scope: str, subject: str, owner: str) -> str:
    """Whose objects a budget restricts: its owner's alone, or everyone's (platform-wide)."""
    return owner if scope == "identity" and subject == owner else EVERY_IDENTITY


def _may_manage(principal: Principal, scope: str, subject: str, owner: str) -> None:
    """Anyone but an operator manages only its own identity's own identity budget."""
    if principal.has_role(OPERATOR):
        return
    require_role(principal, *WRITER_ROLES)
    if _target(scope, subject, owner) != principal.identity:
        raise ForbiddenError("only an operator may set budgets on other identities, spheres, "
                             "providers or every subject ('*')")


def _change(b: BudgetEntity) -> dict[str, object]:
    return {"name": b.name, "scope": b.scope, "subject": b.subject, "period": b.period,
            "soft_usd": b.soft_usd, "hard_usd": b.hard_usd}


async def _audited(guard: BoundaryGuard, principal: Principal, budget_id: str, target: str,
                   operation: str, change: dict[str, object]) -> None:
    """An operator's change to another identity's budget, or a platform-wide one, is audited
    before it is made; anyone else has already been limited to its own identity's."""
    if principal.has_role(OPERATOR):
        await guard.operator_act(principal, "budget", budget_id, target, operation=operation,
                                 change=change)


def _spent(ch: ClickHouse, b: BudgetEntity, now: datetime) -> float | None:
    """What the budget's subject spent in its current window (None for a per-identity one)."""
    if b.subject == EACH:
        return None
    return spent_since(ch, b.scope, b.subject, window_start(b.period, now))


def _out(b: BudgetEntity, version: int, spent: float | None, now: datetime) -> dict[str, Any]:
    status = None
    if spent is not None:
        status = "blocked" if spent >= b.hard_usd else "alert" if spent >= b.soft_usd else "ok"
    return {
        "id": b.id, "name": b.name, "owner": b.owner, "scope": b.scope, "subject": b.subject,
        "period": b.period, "soft_usd": b.soft_usd, "hard_usd": b.hard_usd,
        "created_at": b.created_at, "version": version,
        "window_start": window_start(b.period, now).isoformat(),
        "spent_usd": spent, "status": status,
    }


async def _render(services: Services, store: EntityStore, budgets: list[BudgetEntity],
                  ) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    ch = services.clickhouse

    def spends() -> list[float | None]:
        return [None if ch is None else _spent(ch, b, now) for b in budgets]

    spent = await asyncio.to_thread(spends)
    return [_out(b, store.version(BudgetEntity.ENTITY_TYPE, b.id), s, now)
            for b, s in zip(budgets, spent, strict=True)]


async def _budget(principal: Principal, guard: BoundaryGuard, budget_id: str, operation: str
                  ) -> BudgetEntity:
    """The budget an operator asked for, or the caller identity's own (403 + fact if not)."""
    if principal.has_role(OPERATOR):
        found: BudgetEntity | None = guard.store.get(BudgetEntity, budget_id)
        if found is None:
            await guard.store.sync()
            found = guard.store.get(BudgetEntity, budget_id)
        if found is None:
            raise NotFoundError(f"no budget {budget_id}")
        return found
    owned: BudgetEntity = await guard.owned(principal, BudgetEntity, budget_id,
                                            operation=operation)
    return owned


@router.post("/monitoring/budgets", status_code=201,
             responses={401: {}, 403: {}, 409: {}, 422: {}, 503: {}})
async def create_budget(body: BudgetBody, principal: PrincipalDep, guard: GuardDep,
                        services: ServicesDep, llm: LlmDep) -> Any:
    if body.soft_usd > body.hard_usd:
        return problem(422, "soft_usd must not exceed hard_usd", slug="validation")
    try:
        subject = _subject(body, principal, guard)
        _check_provider(body.scope, subject, llm.registry.names)
    except ConfigError as exc:
        return problem(422, str(exc), slug="budget")
    # An operator's budget on one identity belongs to that identity (see module docstring).
    owner = subject if principal.has_role(OPERATOR) and body.scope == "identity" and (
        subject != EACH) else principal.identity
    _may_manage(principal, body.scope, subject, owner)
    if guard.store.count_owned(BudgetEntity.ENTITY_TYPE, owner) >= MAX_BUDGETS_PER_IDENTITY:
        raise ConflictError(f"an identity holds at most {MAX_BUDGETS_PER_IDENTITY} budgets")
    budget = BudgetEntity(id=uuid7(), owner=owner, name=body.name, scope=body.scope,
                          subject=subject, period=body.period, soft_usd=body.soft_usd,
                          hard_usd=body.hard_usd, created_at=now_ms())
    await _audited(guard, principal, budget.id, _target(budget.scope, subject, owner), "create",
                   {"after": _change(budget)})
    await guard.writer.put(budget, create=True)
    out = await _render(services, guard.store, [budget])
    return JSONResponse(out[0], status_code=201)


@router.get("/monitoring/budgets", responses={401: {}})
async def list_budgets(
    principal: PrincipalDep, guard: GuardDep, services: ServicesDep,
    all_owners: Annotated[bool, Query(alias="all", description="operators: every owner's")]
    = False,
) -> Any:
    """The caller identity's budgets with their spend this window (operators: ``?all=true``)."""
    store = guard.store
    if all_owners and principal.has_role(OPERATOR):
        budgets = store.budgets()
    else:
        budgets = store.owned(BudgetEntity, principal.identity)
    return {"budgets": await _render(services, store, budgets)}


@router.get("/monitoring/budgets/{budget_id}", responses={401: {}, 403: {}, 404: {}})
async def get_budget(budget_id: str, principal: PrincipalDep, guard: GuardDep,
                     services: ServicesDep) -> Any:
    budget = await _budget(principal, guard, budget_id, "read")
    return (await _render(services, guard.store, [budget]))[0]


@router.put("/monitoring/budgets/{budget_id}",
            responses={401: {}, 403: {}, 404: {}, 422: {}, 503: {}})
async def replace_budget(budget_id: str, body: BudgetBody, principal: PrincipalDep,
                         guard: GuardDep, services: ServicesDep, llm: LlmDep) -> Any:
    """Replace name, scope, subject, period and limits (id, owner and spend stay)."""
    if body.soft_usd > body.hard_usd:
        return problem(422, "soft_usd must not exceed hard_usd", slug="validation")
    current = await _budget(principal, guard, budget_id, "replace")
    try:
        subject = _subject(body, principal, guard)
        _check_provider(body.scope, subject, llm.registry.names)
    except ConfigError as exc:
        return problem(422, str(exc), slug="budget")
    _may_manage(principal, current.scope, current.subject, current.owner)
    _may_manage(principal, body.scope, subject, current.owner)
    budget = current.model_copy(update={
        "name": body.name, "scope": body.scope, "subject": subject, "period": body.period,
        "soft_usd": body.soft_usd, "hard_usd": body.hard_usd})
    budget = BudgetEntity.model_validate(budget.model_dump())
    before = _target(current.scope, current.subject, current.owner)
    after = _target(budget.scope, budget.subject, budget.owner)
    await _audited(guard, principal, budget_id, before if before == after else EVERY_IDENTITY,
                   "replace", {"before": _change(current), "after": _change(budget)})
    await guard.writer.put(budget)
    return (await _render(services, guard.store, [budget]))[0]


@router.delete("/monitoring/budgets/{budget_id}", status_code=204,
               responses={401: {}, 403: {}, 404: {}, 503: {}})
async def delete_budget(budget_id: str, principal: PrincipalDep, guard: GuardDep) -> Response:
    current = await _budget(principal, guard, budget_id, "delete")
    _may_manage(principal, current.scope, current.subject, current.owner)
    await _audited(guard, principal, budget_id,
                   _target(current.scope, current.subject, current.owner), "delete",
                   {"before": _change(current)})
    await guard.writer.delete(current)
    return Response(status_code=204)
