"""Everything the gateway connects to, built once in the lifespan and handed to routes.

Nothing here connects at import time; :func:`start_services` builds the Kafka producer, the
request tracker and (when this process owns analytics) the ClickHouse client and the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from analytics.client import ClickHouse, build_clickhouse
from analytics.migrate import migrate
from analytics.sink import ClickHouseSink, SinkRunner
from gateway.boundary import start_entities, stop_entities
from gateway.checkpoints import CheckpointBook
from gateway.llm_state import build_llm_state
from gateway.ratelimit import build_rate_limiter
from gateway.tracker import RequestTracker
from nova.kafka.admin import ensure_topics
from nova.kafka.producer import RecordProducer
from nova.settings import Settings
from schemas import SchemaSet, load_schema_set

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    schemas: SchemaSet
    producer: RecordProducer
    tracker: RequestTracker
    clickhouse: ClickHouse | None = None
    sink: SinkRunner | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)


async def start_services(settings: Settings, clickhouse: ClickHouse | None = None) -> Services:
    await ensure_topics(settings)
    schemas = load_schema_set()
    producer = RecordProducer(settings, schemas)
    await producer.start()
    tracker = RequestTracker(settings, schemas)
    try:
        await tracker.start()
    except BaseException:
        await producer.stop()
        raise
    services = Services(settings=settings, schemas=schemas, producer=producer, tracker=tracker)
    services.extras["llm"] = build_llm_state(settings)  # router + health view (LLM routes)
    services.extras["rate_limiter"] = build_rate_limiter(settings)
    try:
        await start_entities(services)  # entity store + identity boundary guard in extras
    except BaseException:
        await tracker.stop()
        await producer.stop()
        raise
    try:
        checkpoints = CheckpointBook(settings, schemas)
        await checkpoints.start()
        services.extras["checkpoints"] = checkpoints
        if clickhouse is None and settings.run_sink:
            clickhouse = await asyncio.to_thread(build_clickhouse, settings)
        if clickhouse is not None:
            await asyncio.to_thread(migrate, clickhouse)
            services.clickhouse = clickhouse
        if settings.run_sink and clickhouse is not None:
            services.sink = SinkRunner(settings, ClickHouseSink(clickhouse), producer)
            services._tasks.append(asyncio.create_task(services.sink.run(), name="sink"))
    except BaseException:
        await stop_services(services)
        raise
    return services


async def stop_services(services: Services) -> None:
    if services.sink is not None:
        services.sink.stop()
    for task in services._tasks:
        try:
            await asyncio.wait_for(task, 10)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
        except Exception:
            log.exception("background task %s failed", task.get_name())
    await stop_entities(services)
    await services.tracker.stop()
    if "checkpoints" in services.extras:
        await services.extras["checkpoints"].stop()
    await services.producer.stop()
    if services.clickhouse is not None and services.extras.get("owns_clickhouse", True):
        with contextlib.suppress(Exception):
            services.clickhouse.close()
