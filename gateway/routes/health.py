"""Liveness and readiness: ``/health`` says the process is up, ``/ready`` that Kafka answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.deps import ServicesDep
from gateway.problems import problem
from nova.kafka.admin import kafka_ready

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "Kafka does not answer"}})
async def ready(services: ServicesDep) -> Any:
    if not await kafka_ready(services.settings):
        return problem(503, "Kafka does not answer", slug="not-ready")
    return JSONResponse(
        {
            "status": "ready",
            "kafka": "ok",
            "clickhouse": "ok" if services.clickhouse else "not in this process",
        }
    )
