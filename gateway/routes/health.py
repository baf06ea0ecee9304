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


@router.get("/ready", responses={503: {"description": "Kafka does not answer (why, and for "
                                                     "how long)"}})
async def ready(services: ServicesDep) -> Any:
    kafka = services.kafka
    if not kafka.up:  # the gateway's own probe, which also makes writes fail fast
        return problem(503, f"Kafka is unreachable: {kafka.reason}", slug="not-ready",
                       headers={"Retry-After": "1"}, kafka=kafka.reason,
                       down_s=round(kafka.down_for_s(), 1))
    if not await kafka_ready(services.settings):
        return problem(503, "Kafka does not answer", slug="not-ready",
                       headers={"Retry-After": "1"})
    return JSONResponse(
        {
            "status": "ready",
            "kafka": "ok",
            "clickhouse": "ok" if services.clickhouse else "not in this process",
        }
    )
