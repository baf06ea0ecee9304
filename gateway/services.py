"""Everything the gateway connects to, built once in :func:`start_services` and handed to routes.

Every collaborator is a named, typed, required attribute of :class:`Services` (routes reach
them through the ``Annotated`` aliases of ``gateway.deps``); there is no dictionary of extras
looked up by name, so a route cannot find a guard missing halfway through a request. The
governance guards (the identity rate limiter, the authentication throttle, the entity view and
the identity boundary guard built on it) are built before the gateway serves anything: if one
cannot be built, start-up stops with a :class:`~nova.errors.StartupError`, one line naming what
is missing and the fix. The pure ones (the rate limiter, the authentication throttle, the
signing key) are built first, before anything connects.

The gateway holds the signing key (``nova.signing``): every checkpoint decision and entity
change it writes is signed with it, and its own views (entities, checkpoints) verify what they
read with its public half, like the worker's do. Agents' writes reach entities through it
too: the worker puts them on ``agent-writes`` and the gateway's applier
(``gateway.agent_writes``) checks, signs and writes them.

Nothing here connects at import time. ClickHouse is the one optional part: a gateway without it
serves no analytics and runs no sink, which governs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from analytics.client import ClickHouse, build_clickhouse
from analytics.migrate import migrate
from analytics.sink import ClickHouseSink, SinkRunner
from gateway.agent_writes import AgentWriteApplier
from gateway.alerts.delivery import Deliverer
from gateway.alerts.dispatcher import AlertDispatcher
from gateway.alerts.log import DeliveryLog
from gateway.alerts.reports import ReportScheduler
from gateway.auth_throttle import AuthThrottle, build_failure_throttle
from gateway.boundary import BoundaryGuard
from gateway.checkpoints import CheckpointBook
from gateway.idempotency import IdempotencyIndex
from gateway.live.adapter import RecordAdapter
from gateway.live.feed import LiveFeed
from gateway.llm_state import LlmState, build_llm_state
from gateway.ratelimit import IdentityRateLimiter, SharedAdmissions, build_rate_limiter
from gateway.sessions import TOPIC as SESSIONS
from gateway.sessions import SessionBook
from gateway.tracker import RequestTracker
from nova.entities.store import EntityStore, EntityWriter, start_or_refuse
from nova.errors import ConfigError, StartupError
from nova.kafka.admin import require_topics
from nova.kafka.liveness import KafkaLiveness
from nova.kafka.producer import RecordProducer
from nova.settings import Settings
from nova.signing import Signer, load_signer
from schemas import SchemaSet, load_schema_set

log = logging.getLogger(__name__)

GATEWAY = "the gateway"


@dataclass(frozen=True)
class Services:
    """The gateway's collaborators; :func:`stop_services` releases them in reverse order."""

    settings: Settings
    schemas: SchemaSet
    producer: RecordProducer  # refuses writes at once while ``kafka`` says Kafka is down
    kafka: KafkaLiveness  # whether the broker answers, probed in the background
    tracker: RequestTracker
    idempotency: IdempotencyIndex  # the Idempotency-Keys of the window, and their requests
    rate_limiter: IdentityRateLimiter  # every submitted request passes it (429 beyond), its
    # buckets shared with every other gateway through the admissions topic
    auth_throttle: AuthThrottle  # every credential check passes it (429 beyond)
    signer: Signer  # signs decisions and entity changes; only the gateway holds it
    entities: EntityStore  # the entity view: owners, spheres, rules, budgets
    entity_writer: EntityWriter
    boundary: BoundaryGuard  # every resource id and request reference passes it
    sessions: SessionBook  # refresh tokens and revocations, shared by every gateway
    checkpoints: CheckpointBook
    live: LiveFeed  # the WebSocket events, tailed from Kafka (gateway.live)
    llm: LlmState  # router and health view of the LLM routes
    clickhouse: ClickHouse | None  # analytics, when this gateway has ClickHouse
    sink: SinkRunner | None  # the Kafka → ClickHouse sink, when this gateway runs it
    alerts: AlertDispatcher | None  # webhook deliveries, when this gateway runs them
    agent_writes: AgentWriteApplier  # agents' writes, checked, signed and written
    _closer: contextlib.AsyncExitStack = field(repr=False, compare=False)


async def start_services(
    settings: Settings,
    clickhouse: ClickHouse | None = None,
    *,
    entities: EntityStore | None = None,
) -> Services:
    """Build and start every collaborator, or refuse start-up with a ``StartupError``.

    ``clickhouse``: a client the caller owns (not closed here); without one, a gateway that
    runs the sink builds its own. ``entities``: the (not yet started) entity store to use
    instead of one on ``settings``' Kafka, for tests. Whatever was started before a failure is
    stopped again before the error propagates.
    """
    settings = settings.as_client("gateway")  # every client below logs in as nova-gateway
    rate_limiter = build_rate_limiter(settings)  # pure: refuses before anything connects
    failure_throttle = build_failure_throttle(settings)  # pure, too
    signer = gateway_signer(settings)
    llm = build_llm_state(settings)
    schemas = load_schema_set()
    closer = contextlib.AsyncExitStack()
    closer.push_async_callback(llm.pool.aclose)
    try:
        await require_topics(settings, GATEWAY)
        kafka = KafkaLiveness(settings)
        await kafka.start()
        closer.push_async_callback(kafka.stop)
        producer = RecordProducer(settings, schemas, kafka)
        await producer.start()
        closer.push_async_callback(producer.stop)
        tracker = RequestTracker(settings, schemas)
        admissions = SharedAdmissions(settings, schemas, rate_limiter, producer)
        idempotency = IdempotencyIndex(settings, schemas)
        store = (
            EntityStore(settings, schemas, verifier=signer.verifier)
            if entities is None
            else entities
        )
        writer = EntityWriter(producer, store, signer)
        store.healer = writer.heal  # re-sign a key a forged record would evict on compaction
        session_store = EntityStore(settings, schemas, verifier=signer.verifier, topic=SESSIONS)
        session_writer = EntityWriter(producer, session_store, signer)
        session_store.healer = session_writer.heal
        checkpoints = CheckpointBook(settings, schemas, signer.verifier)
        live = LiveFeed(settings, schemas, RecordAdapter(
            signer.verifier.verify_decision, lambda cp_id: _submitter(checkpoints, cp_id)))
        # Each view reads its own topic to its end on its own connections: started together,
        # the gateway is up in the time of the slowest instead of the sum of all.
        started = await _started_together(
            closer,
            (tracker, tracker.start()),
            (admissions, admissions.start()),  # the last minute of every gateway's admissions
            (idempotency, idempotency.start()),  # the window's held and finished keyed requests
            (store, start_or_refuse(
                store, GATEWAY, "the identity boundary guard (and the entity view it reads)")),
            (session_store, start_or_refuse(  # read to its end: no revoked token after a restart
                session_store, GATEWAY, "the session check (revoked tokens are refused by it)")),
            (checkpoints, checkpoints.start()),
            (live, live.start()),
            (None, _analytics(settings, clickhouse, closer)),
        )
        clickhouse = started[-1]
        sessions = SessionBook(settings, session_store, session_writer, store, producer)
        llm.health.overrides = store.probe_settings  # operators' probe settings, shared
        sink = None
        if settings.run_sink and clickhouse is not None:
            sink = SinkRunner(settings, ClickHouseSink(clickhouse), producer)
            task = asyncio.create_task(sink.run(), name="sink")
            closer.push_async_callback(_stop_sink, sink, task)
        # agents' writes (from the worker, unsigned) become signed entities only here
        agent_writes = AgentWriteApplier(settings, schemas, writer, producer)
        await agent_writes.start()
        closer.push_async_callback(agent_writes.stop)
        alerts = None
        if settings.run_alerts:
            alerts = await _start_alerts(settings, schemas, store, checkpoints, producer,
                                         clickhouse, closer)
        return Services(
            settings=settings,
            schemas=schemas,
            producer=producer,
            kafka=kafka,
            tracker=tracker,
            idempotency=idempotency,
            rate_limiter=rate_limiter,
            auth_throttle=AuthThrottle(failure_throttle, producer),
            signer=signer,
            entities=store,
            entity_writer=writer,
            boundary=BoundaryGuard(store, writer, producer),
            sessions=sessions,
            checkpoints=checkpoints,
            live=live,
            llm=llm,
            clickhouse=clickhouse,
            sink=sink,
            alerts=alerts,
            agent_writes=agent_writes,
            _closer=closer,
        )
    except BaseException:
        await closer.aclose()
        raise


class _Stoppable(Protocol):
    async def stop(self) -> None: ...


async def _started_together(
    closer: contextlib.AsyncExitStack,
    *starts: tuple[_Stoppable | None, Coroutine[Any, Any, Any]],
) -> list[Any]:
    """Run the ``(part, its start)`` pairs at once and return what the starts returned; every
    part that started is put on ``closer`` (stopped with the rest, also when another part's
    start failed), and the first failure in the order given is raised once all have ended."""
    tasks = [(part, asyncio.ensure_future(start)) for part, start in starts]
    try:
        await asyncio.gather(*(task for _, task in tasks), return_exceptions=True)
    finally:  # also when cancelled: what had started is stopped
        for part, task in tasks:
            if part is not None and task.done() and not task.cancelled() and not task.exception():
                closer.push_async_callback(part.stop)
    for _, task in tasks:
        if (failure := task.exception()) is not None:
            raise failure
    return [task.result() for _, task in tasks]


async def _analytics(settings: Settings, clickhouse: ClickHouse | None,
                     closer: contextlib.AsyncExitStack) -> ClickHouse | None:
    """The ClickHouse client (the caller's, or built here when this gateway runs the sink),
    its tables migrated; closed by ``closer`` when built here."""
    if clickhouse is None and settings.run_sink:
        clickhouse = await asyncio.to_thread(build_clickhouse, settings)
        closer.callback(_close_quietly, clickhouse)
    if clickhouse is not None:
        await asyncio.to_thread(migrate, clickhouse)
    return clickhouse


async def _start_alerts(
    settings: Settings, schemas: SchemaSet, store: EntityStore, book: CheckpointBook,
    producer: RecordProducer, clickhouse: ClickHouse | None, closer: contextlib.AsyncExitStack,
) -> AlertDispatcher:
    """The delivery log read back first (nothing is sent twice), then the dispatcher."""
    deliveries = DeliveryLog(settings, schemas)
    await deliveries.start()
    closer.push_async_callback(deliveries.stop)
    http = httpx.AsyncClient(trust_env=False)  # no proxy from the environment: URLs are checked
    closer.push_async_callback(http.aclose)
    deliverer = Deliverer(settings, producer, deliveries, http)
    dispatcher = AlertDispatcher(settings, schemas, store, book, deliverer,
                                 ReportScheduler(settings, clickhouse, deliverer))
    await dispatcher.start()
    closer.push_async_callback(dispatcher.stop)
    return dispatcher


def _submitter(book: CheckpointBook, checkpoint_id: str) -> str | None:
    held = book.get(checkpoint_id)
    return None if held is None else held.user_id


def gateway_signer(settings: Settings) -> Signer:
    """The signing key, created under the data dir at first start, or a one-line refusal."""
    try:
        return load_signer(settings)
    except (ConfigError, OSError) as exc:
        raise StartupError(
            GATEWAY,
            "its signing key (decisions and entity changes are signed with it) cannot be loaded",
            "set NOVA_SIGNING_KEY to an Ed25519 key, or let the gateway create one in a writable "
            "NOVA_DATA_DIR/keys (mode 600)",
            exc,
        ) from exc


async def stop_services(services: Services) -> None:
    """Stop everything :func:`start_services` started; calling it again does nothing."""
    await services._closer.aclose()


async def _stop_sink(sink: SinkRunner, task: asyncio.Task[None]) -> None:
    sink.stop()
    try:  # its last batch written; a stopping nova up has 10 s for everything (STOP_S)
        await asyncio.wait_for(task, 3)
    except (TimeoutError, asyncio.CancelledError):
        task.cancel()
    except Exception:
        log.exception("background task %s failed", task.get_name())


def _close_quietly(clickhouse: ClickHouse) -> None:
    with contextlib.suppress(Exception):
        clickhouse.close()
