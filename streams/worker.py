"""Run the lane agents: ``nova worker`` (or ``python -m streams.worker``).

Start-up is fail-closed: the topics, then every collaborator the lanes rely on
(:func:`streams.services.start_worker_services`), and only then the Faust worker, all in the
one event loop the worker runs. A collaborator that cannot be built raises a
:class:`~nova.errors.StartupError` before any record is read.
"""

from __future__ import annotations

import asyncio

import faust

from nova import heap
from nova.kafka import quiet_kafka_client
from nova.kafka.admin import require_topics
from nova.settings import Settings, load_settings
from schemas import load_schema_set
from streams.app import build_app
from streams.services import WORKER, start_worker_services


def run_worker(settings: Settings) -> None:
    settings = settings.as_client("worker")  # every client of this process logs in as nova-worker
    quiet_kafka_client(settings)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    schemas = load_schema_set()
    try:
        loop.run_until_complete(require_topics(settings, WORKER))
        services = loop.run_until_complete(start_worker_services(settings, schemas))
    except BaseException:
        loop.close()
        raise
    app = build_app(settings, services, schemas)
    heap.settle()  # everything above lives as long as the worker (nova.heap)
    worker = faust.Worker(
        app, loop=loop, loglevel=settings.log_level.upper().replace("WARNING", "WARN"),
        quiet=True,
    )
    worker.spinner = None  # a log file is no terminal: no progress spinner escape codes
    worker.execute_from_commandline()


if __name__ == "__main__":
    run_worker(load_settings())
