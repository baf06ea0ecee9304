"""The worker's collaborators: built and started once, before any lane runs, or not at all.

Every guard the lanes rely on is a named, typed, required attribute of :class:`WorkerServices`
(no dictionary of services looked up by string): the entity view lane B reads context from and
lane D checks owners and identity rules against, lane F's execution service, whose budgets
and provider rules come from that same view, and the verifier of the gateway's signatures
(lane E's decisions and the entity view's records; the public key only, ``nova.signing``).
:func:`start_worker_services` builds them in one place; when one cannot be built (the entity
store cannot load its topic, ...) it raises a :class:`~nova.errors.StartupError` and the worker
refuses to start with one line naming what is missing and how to fix it. No lane has a path
that skips a check for want of a guard.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from nova.domain.intent import warm_up
from nova.entities.store import EntityStore
from nova.entities.view import EntityView
from nova.errors import ConfigError, StartupError
from nova.settings import Settings
from nova.signing import Verifier, load_verifier
from schemas import SchemaSet, load_schema_set
from streams.entities import WorkerEntities
from streams.execution import ExecutionService
from streams.spend import SpendTracker

WORKER = "the worker"


@dataclass(frozen=True)
class WorkerServices:
    entities: EntityView  # lanes B and D: owners, thread and dataspace content, identity rules
    execution: ExecutionService  # lane F: router, limits, budgets and provider rules
    spend: SpendTracker  # lane F's spend, shared across workers (run by the app as a task)
    verifier: Verifier  # the gateway's public key(s): lane E's decisions, the entity records


def worker_verifier(settings: Settings) -> Verifier:
    """The gateway's public signing key, or a refusal: without it a forged approval and a real
    one look the same, so the worker must not read a single decision."""
    try:
        return load_verifier(settings)
    except ConfigError as exc:
        raise StartupError(
            WORKER,
            "the gateway's public signing key (decisions and entity changes are checked with it) "
            "cannot be loaded",
            "start the gateway once on this data dir (it creates the key pair) or set "
            "NOVA_SIGNING_PUBLIC_KEY",
            exc,
        ) from exc


async def start_worker_services(
    settings: Settings,
    schemas: SchemaSet | None = None,
    *,
    entities: WorkerEntities | None = None,
    execution: ExecutionService | None = None,
) -> WorkerServices:
    """Build and start the worker's collaborators, or refuse with a ``StartupError``.

    ``entities``: a (not yet started) entity view to use instead of one on ``settings``' Kafka;
    ``execution``: an execution service to use instead of one with the registry's providers
    (both for tests). Runs in the loop the worker will run in: the entity store tails there.
    """
    schemas = load_schema_set() if schemas is None else schemas
    verifier = worker_verifier(settings)  # pure: refuses before anything connects
    await asyncio.to_thread(warm_up)  # lane A's lexicons, before the first request waits on them
    view = (
        WorkerEntities(EntityStore(settings, schemas, verifier=verifier))
        if entities is None
        else entities
    )
    await view.start(WORKER, "the entity view (owners, identity rules and budgets)")
    try:
        service = (ExecutionService.build(settings, budgets=view, rules=view, limits=view,
                                          agents=view)
                   if execution is None else execution)
        service.pool.warm()  # every provider's client, before a probe round or a request needs it
        spend = SpendTracker(settings, service, schemas=schemas, sphere_of=view.sphere_of)
    except BaseException:
        await view.stop()
        raise
    service.hold_until(view.ready, spend.ready.wait)  # fail closed: budgets and spend first
    return WorkerServices(entities=view, execution=service, spend=spend, verifier=verifier)
