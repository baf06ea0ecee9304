"""Submitting requests and following them: ``/api/v2/nova/requests``."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from analytics.queries import request_final, request_lanes
from gateway.bodies import StrictBody
from gateway.deps import GuardDep, PrincipalDep, RateLimiterDep, ServicesDep
from gateway.services import Services
from gateway.tracker import LaneView, RequestView
from nova.auth.tokens import Principal
from nova.errors import ForbiddenError, NotFoundError
from nova.ids import uuid7
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
    provider: str | None = Field(
        default=None,
        max_length=64,
        description="route to this provider (the nova role stays on Claude)",
    )
    model: str | None = Field(default=None, max_length=128)
    strategy: Literal["task", "cheapest", "fastest", "priority"] | None = None
    wait_ms: int = Field(
        default=0,
        ge=0,
        le=120_000,
        description="wait up to this long for the request to be held or done",
    )


class Accepted(BaseModel):
    request_id: str
    status: str


@router.post(
    "/requests",
    status_code=202,
    response_model=Accepted,
    responses={
        200: {"description": "completed within wait_ms"},
        401: {"description": "missing or invalid token"},
        403: {"description": "references another identity's resource"},
        422: {"description": "invalid body"},
        423: {"description": "held at a checkpoint within wait_ms"},
        429: {"description": "over the identity's request rate limit"},
    },
)
async def submit(body: SubmitRequest, principal: PrincipalDep, services: ServicesDep,
                 limiter: RateLimiterDep, guard: GuardDep) -> Any:
    limiter.check(principal.identity)  # 429 + Retry-After when over
    await guard.check_request(principal, body.thread_id, body.dataspace_ids)  # 403/404
    record = PipelineRecord(
        request_id=uuid7(),
        identity_id=principal.identity,
        user_id=principal.sub,
        submitted_at=now_ms(),
        prompt=body.prompt,
        declared_action=body.action,
        task_type_hint=body.task_type,
        role=body.role,
        thread_id=body.thread_id,
        dataspace_ids=tuple(body.dataspace_ids),
        roles=tuple(sorted(principal.roles)),
        sphere_id=services.entities.sphere_of(principal.identity),
        provider_hint=body.provider,
        model_hint=body.model,
        strategy=body.strategy,
    )
    services.tracker.accepted(record)
    await services.producer.send("requests", record.request_id, record)
    if body.wait_ms > 0:
        view = await services.tracker.wait_until(
            record.request_id, lambda v: v.held or v.finished, body.wait_ms / 1000
        )
        if view is not None and view.held:
            return JSONResponse(
                {
                    "checkpoint_id": view.checkpoint_id,
                    "request_id": record.request_id,
                    "reason": view.checkpoint_reason,
                    "status": "held",
                },
                status_code=423,
            )
        if view is not None and view.finished:
            return JSONResponse(view.to_json(), status_code=200)
    return JSONResponse({"request_id": record.request_id, "status": "accepted"}, status_code=202)


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
