"""Run the lane agents: ``nova worker`` (or ``python -m streams.worker``)."""

from __future__ import annotations

import asyncio

import faust

from nova.kafka import quiet_kafka_client
from nova.kafka.admin import ensure_topics
from nova.settings import Settings, load_settings
from streams.app import build_app


def run_worker(settings: Settings) -> None:
    quiet_kafka_client(settings)
    asyncio.run(ensure_topics(settings))
    app = build_app(settings)
    worker = faust.Worker(
        app, loglevel=settings.log_level.upper().replace("WARNING", "WARN"), quiet=True
    )
    worker.spinner = None  # a log file is no terminal: no progress spinner escape codes
    worker.execute_from_commandline()


if __name__ == "__main__":
    run_worker(load_settings())
