"""Submitting requests and following them: ``/api/v2/nova/requests``.

A submission answers with its outcome when it comes within the wait (200 done, 423 held at a
checkpoint), else 202 with the request as it stands and its ``Location``; the wait is the
body's ``wait_ms``, the ``Prefer`` header's (RFC 7240: ``respond-async``, ``wait=N``) or the
server's ``NOVA_DEFAULT_WAIT_MS`` (``gateway.prefer``). A submission with an
``Idempotency-Key`` header is safe to retry: the retry answers with the request the first
attempt created, at any gateway (``gateway.idempotency``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from analytics.queries import request_final, request_lanes
from gateway.bodies import StrictBody
from gateway.deps import GuardDep, PrincipalDep, RateLimiterDep, ServicesDep
from gateway.idempotency import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    REPLAYED_HEADER,
    BrokerUnavailableError,
    IdempotencyKeyError,
    KnownKey,
    body_fingerprint,
    parse_key,
    record_key,
    request_id_for,
)
from gateway.prefer import MAX_WAIT_MS, PREFERENCE_APPLIED, PreferError, Wait, choose_wait
from gateway.problems import problem
from gateway.services import Services
from gateway.tracker import LaneView, RequestView
from nova.auth.tokens import Principal
from nova.domain.kinds import Priority
from nova.entities.models import AgentEntity
from nova.errors import ConfigError, ForbiddenError, NotFoundError, ProviderError
from nova.ids import uuid7
from nova.llm.routing import RouteRequest
from nova.records import PipelineRecord, now_ms

router = APIRouter(prefix="/api/v2/nova", tags=["requests"])

Action = Literal["READ", "WRITE", "DELETE", "SEND", "TRANSFER", "PAYMENT"]
TaskType = Literal["code", "creative", "analysis", "search", "translation", "general"]


class SubmitRequest(StrictBody):
    prompt: str = Field(min_length=1, max_length=100_000)
    action: Action | None = None
    task_type: TaskType | None = None
    role: str | None = Field(default=None, max_length=64)
    thread_id: str | None = Field(default=None, max_length=128)
    dataspace_ids: list[str] = Field(default_factory=list, max_length=32)
    meeting_id: str | None = Field(
        default=None,
        max_length=128,
        description="a meeting of the caller's identity: its agenda items, notes and "
        "decisions are context (untrusted, checked like the prompt)",
    )
    agent_id: str | None = Field(
        default=None,
        max_length=128,
        description="an agent of the registry (the caller's own or a public one): lane F runs "
        "its loop on the prompt, with its tools, each call governed; its role applies, and "
        "its provider and model where the body names none",
    )
    provider: str | None = Field(
        default=None,
        max_length=64,
        description="route to this provider (the nova role stays on Claude)",
    )
    model: str | None = Field(
        default=None,
        max_length=128,
        description="route to this model: its id or an alias (docs/llm.md, Model names); the "
        "answer's execution says which model served it",
    )
    strategy: Literal["task", "cheapest", "fastest", "priority"] | None = None
    priority: Priority | None = Field(
        default=None,
        description="low: each routed provider's cheaper, faster models first; high: its "
        "premium ones; normal (the default): its default model",
    )
    wait_ms: int | None = Field(
        default=None,
        ge=0,
        le=MAX_WAIT_MS,
        description="wait up to this long for the request to be held (423) or done (200) "
        "before answering 202; wins over a Prefer header; unset: Prefer, else the server's "
        "NOVA_DEFAULT_WAIT_MS (10 s)",
    )


class Accepted(BaseModel):
    request_id: str
    status: str


CHECKPOINT_SEEN_S = 2.0  # how long a 423 waits for the checkpoint view (milliseconds, usually)

_APPLIED = {PREFERENCE_APPLIED: {
    "description": "the Prefer preferences that decided the wait (respond-async, wait=N)",
    "schema": {"type": "string"},
}}


@router.post(
    "/requests",
    status_code=202,
    response_model=Accepted,
    responses={
        200: {"description": "finished within the wait (or, replayed, already finished)",
              "headers": _APPLIED},
        202: {"description": "accepted, not held nor finished within the wait (at once with "
              "Prefer: respond-async); follow it at Location",
              "headers": {**_APPLIED, "Location": {
                  "description": "the request's status", "schema": {"type": "string"}}}},
        401: {"description": "missing or invalid token"},
        403: {"description": "references another identity's resource"},
        404: {"description": "references a thread, dataspace or meeting that does not exist"},
        422: {"description": "invalid body, a provider or model no provider offers (or the "
              "role may not use), a Prefer wait that is not a number of seconds, or an "
              "Idempotency-Key reused with another body"},
        423: {"description": "held at a checkpoint within the wait (or, replayed, held)",
              "headers": _APPLIED},
        429: {"description": "over the identity's request rate limit"},
        503: {"description": "Kafka could not take the request: nothing was accepted; retry"},
    },
)
async def submit(
    body: SubmitRequest,
    principal: PrincipalDep,
    services: ServicesDep,
    limiter: RateLimiterDep,
    guard: GuardDep,
    idempotency_key: Annotated[str | None, Header(
        alias=IDEMPOTENCY_HEADER,
        description="retry-safe submission: a retry with the same key and body answers with "
        "the request the first attempt created (same id, same outcome); another body is 422",
        json_schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN},
    )] = None,
    prefer: Annotated[list[str] | None, Header(
        description="RFC 7240: respond-async (202 at once), wait=N (wait up to N seconds, "
        f"at most {MAX_WAIT_MS // 1000}), or both (wait N seconds, then 202); the body's "
        "wait_ms wins; without either the server's NOVA_DEFAULT_WAIT_MS applies",
    )] = None,
) -> Any:
    limiter.check(principal.identity)  # 429 + Retry-After when over
    try:
        wait = choose_wait(body.wait_ms, prefer or (), services.settings.default_wait_ms)
    except PreferError as exc:
        return problem(422, str(exc), slug="prefer")
    unroutable = _unroutable(services, body)
    if unroutable is not None:
        return unroutable
    await guard.check_request(principal, body.thread_id, body.dataspace_ids,  # 403/404
                              body.meeting_id)
    agent = (None if body.agent_id is None
             else await guard.usable_agent(principal, body.agent_id, operation="submit"))
    if idempotency_key is None:
        record = _record(body, principal, services, uuid7(), agent=agent)
        await _produce(services, record)
        return await _answer(services, record.request_id, wait)
    try:
        key = parse_key(idempotency_key)
    except IdempotencyKeyError as exc:
        return problem(422, str(exc), slug="idempotency-key")
    fingerprint = body_fingerprint(body.model_dump(mode="json"))
    index = services.idempotency
    async with index.claim(principal.identity, key):  # a concurrent retry waits for this one
        known = index.lookup(principal.identity, key)
        if known is not None and known.fingerprint != fingerprint:
            return problem(
                422,
                f"this {IDEMPOTENCY_HEADER} was used with another body for request "
                f"{known.request_id}; use a new key for a new request",
                slug="idempotency-key-reused",
                request_id=known.request_id,
            )
        if known is not None:
            return await _answer(services, known.request_id, wait, replayed=True)
        request_id = request_id_for(principal.identity, key, fingerprint, now_ms())
        if await _state(services, request_id) is not None:  # written, the key since forgotten
            index.remember(principal.identity, key, KnownKey(request_id, fingerprint, now_ms()))
            return await _answer(services, request_id, wait, replayed=True)
        record = _record(body, principal, services, request_id, key, fingerprint, agent=agent)
        await _produce(services, record)
        index.remember(principal.identity, key, record_key(record))
    return await _answer(services, request_id, wait)


def _unroutable(services: Services, body: SubmitRequest) -> JSONResponse | None:
    """A 422 for a provider or model that could never serve this request (unknown, or one the
    role is locked away from), before anything is written; lane F would only fail it later."""
    if body.provider is None and body.model is None:
        return None
    try:
        services.llm.router.explicit(
            RouteRequest(role=body.role, provider=body.provider, model=body.model))
    except ConfigError as exc:
        return problem(422, str(exc), slug="unknown-model", provider=body.provider,
                       model=body.model)
    except ProviderError as exc:
        return problem(422, str(exc), slug="locked-role", role=body.role,
                       provider=exc.provider)
    return None


def _record(
    body: SubmitRequest,
    principal: Principal,
    services: Services,
    request_id: str,
    key: str | None = None,
    fingerprint: str | None = None,
    *,
    agent: AgentEntity | None = None,
) -> PipelineRecord:
    """The request as lane A receives it; an agent's role and pins fill what the body leaves
    unset (its pins were checked against the router when the agent was written)."""
    return PipelineRecord(
        request_id=request_id,
        identity_id=principal.identity,
        user_id=principal.sub,
        submitted_at=now_ms(),
        prompt=body.prompt,
        declared_action=body.action,
        task_type_hint=body.task_type,
        role=agent.role if agent is not None else body.role,
        thread_id=body.thread_id,
        dataspace_ids=tuple(body.dataspace_ids),
        meeting_id=body.meeting_id,
        agent_id=body.agent_id,
        roles=tuple(sorted(principal.roles)),
        sphere_id=services.entities.sphere_of(principal.identity),
        provider_hint=body.provider or (agent.provider if agent is not None else None),
        model_hint=body.model or (agent.model if agent is not None else None),
        strategy=body.strategy,
        priority=body.priority,
        idempotency_key=key,
        body_fingerprint=fingerprint,
    )


async def _produce(services: Services, record: PipelineRecord) -> None:
    """Write the request to Kafka; a failure is a 503 (nothing was accepted), never a 500."""
    services.tracker.accepted(record)
    try:
        await services.producer.send("requests", record.request_id, record)
    except KafkaError as exc:
        services.tracker.forget(record.request_id)
        raise BrokerUnavailableError(
            "the request could not be written to Kafka and was not accepted; retry (with an "
            f"{IDEMPOTENCY_HEADER}, a retry can never run it twice)"
        ) from exc
    except BaseException:  # cancelled: written or not, a keyed retry will write it (same id)
        services.tracker.forget(record.request_id)
        raise


async def _state(services: Services, request_id: str) -> RequestView | None:
    """What this gateway knows of a request: live events, the keyed requests of the window,
    then ClickHouse."""
    view = services.tracker.get(request_id)
    if view is not None and (view.finished or view.held):
        return view
    return services.idempotency.view(request_id) or view or await find_view(services, request_id)


async def _answer(
    services: Services, request_id: str, wait: Wait, *, replayed: bool = False
) -> JSONResponse:
    """202 accepted; or, within the wait (at once when replayed), 423 held or 200 done."""
    headers = {REPLAYED_HEADER: "true"} if replayed else {}
    if wait.applied is not None:
        headers[PREFERENCE_APPLIED] = wait.applied
    view = await _state(services, request_id) if replayed else None
    if wait.ms > 0 and not (view is not None and (view.held or view.finished)):
        await services.tracker.wait_until(request_id, lambda v: v.held or v.finished,
                                          wait.ms / 1000)
        view = await _state(services, request_id)
    if view is not None and view.held:
        if view.checkpoint_id:  # so the checkpoint can be read or decided at once
            await services.checkpoints.known(view.checkpoint_id, CHECKPOINT_SEEN_S)
        return JSONResponse(
            {
                "checkpoint_id": view.checkpoint_id,
                "request_id": request_id,
                "reason": view.checkpoint_reason,
                "status": "held",
            },
            status_code=423,
            headers=headers,
        )
    if view is not None and view.finished:
        return JSONResponse(view.to_json(), status_code=200, headers=headers)
    status = view.status if view is not None else "accepted"
    headers["Location"] = f"{router.prefix}/requests/{request_id}"
    return JSONResponse({"request_id": request_id, "status": status}, status_code=202,
                        headers=headers)


async def find_view(services: Services, request_id: str) -> RequestView | None:
    view = services.tracker.get(request_id)
    if view is not None or services.clickhouse is None:
        return view
    ch = services.clickhouse
    final, lanes = await asyncio.gather(
        asyncio.to_thread(request_final, ch, request_id),
        asyncio.to_thread(request_lanes, ch, request_id),
    )
    if final is None and not lanes:
        return None
    lane_views = {
        r["lane"]: LaneView(r["lane"], r["status"], float(r["duration_ms"])) for r in lanes
    }
    if final is not None:
        return RequestView(
            request_id=request_id,
            identity_id=final["identity_id"],
            status=final["status"],
            lanes=lane_views,
            result=final["result"],
            error=final["error"],
        )
    held = any(v.status == "held" for v in lane_views.values())
    return RequestView(
        request_id=request_id,
        identity_id=lanes[0]["identity_id"],
        status="held" if held else "in_flight",
        lanes=lane_views,
    )


async def owned_view(services: Services, principal: Principal, request_id: str) -> RequestView:
    view = await find_view(services, request_id)
    if view is None:
        raise NotFoundError(f"no request {request_id}")
    if view.identity_id != principal.identity:
        await services.boundary.violation(principal, "request", request_id, view.identity_id)
        raise ForbiddenError("this request belongs to another identity")
    return view


@router.get("/requests/{request_id}", responses={403: {}, 404: {}})
async def status(request_id: str, principal: PrincipalDep, services: ServicesDep) -> Any:
    view = await owned_view(services, principal, request_id)
    return view.to_json()
