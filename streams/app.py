"""The worker's Faust app: one agent per lane, built from settings.

Agents are registered by :func:`build_app` rather than at import time so the topic prefix,
broker and services come from one :class:`~nova.settings.Settings` (tests run isolated
pipelines on unique prefixes in the same broker).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import faust

from nova.settings import Settings
from schemas import load_schema_set
from streams.context import LaneContext
from streams.lanes import (
    AuditLane,
    CheckpointLane,
    ContextLane,
    EncodingLane,
    ExecutionLane,
    GovernanceLane,
    IntentLane,
)
from streams.runtime import Lane, handle


def build_app(settings: Settings, services: dict[str, Any] | None = None) -> faust.App:
    datadir = settings.data_dir / "faust" / settings.topic_prefix
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.topic_prefix}-worker",
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        datadir=str(datadir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        web_enabled=False,
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
    )
    ctx = LaneContext(
        app=app, settings=settings, schemas=load_schema_set(), worker=settings.worker_name,
        services=services or {},
    )
    lanes: list[Lane] = [
        IntentLane(), ContextLane(), EncodingLane(), GovernanceLane(), CheckpointLane(),
        ExecutionLane(), AuditLane(),
    ]
    for lane in lanes:
        app.agent(ctx.topic(lane.source), name=f"lane-{lane.code}")(_agent_for(lane, ctx))
    app.nova_context = ctx  # type: ignore[attr-defined]  # tests and extra agents reach it here
    return app


def _agent_for(
    lane: Lane, ctx: LaneContext
) -> Callable[[faust.StreamT], Coroutine[Any, Any, None]]:
    async def agent(stream: faust.StreamT) -> None:
        events: AsyncIterator[Any] = stream.events()
        async for event in events:
            await handle(lane, ctx, event.message)

    agent.__name__ = f"lane_{lane.code.lower()}"
    return agent
