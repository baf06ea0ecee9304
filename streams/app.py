"""The worker's Faust app: one agent per lane, built from settings.

Agents are registered by :func:`build_app` rather than at import time so the topic prefix
and broker come from one :class:`~nova.settings.Settings` (tests run isolated pipelines on
unique prefixes in the same broker), and the collaborators the lanes rely on are handed in,
already started, as one typed :class:`~streams.services.WorkerServices`
(:func:`streams.services.start_worker_services` refuses to start without them). Besides the
seven lane agents, lane E has a second agent for checkpoint decisions and expiries (one agent
on both topics, so a partition's transitions stay in order) and a timer that publishes
expiries; lane G's agent consumes both outcomes and audit facts so that one agent owns each
audit partition; the entity guard (``streams.entity_guard``) reports entity records the
gateway did not sign.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import faust
from faust.streams import current_event

from nova.kafka.clients import faust_broker
from nova.records import AgentWrite, now_ms
from nova.settings import Settings
from schemas import SchemaSet, load_schema_set
from schemas.topics import changelog_configs, worker_app_id
from streams import consumer
from streams.context import RAW, LaneContext, LaneState
from streams.entity_guard import EntityGuard
from streams.health_probe import HealthProbe
from streams.lanes import (
    AuditLane,
    CheckpointLane,
    ContextLane,
    EncodingLane,
    ExecutionLane,
    GovernanceLane,
    IntentLane,
)
from streams.lanes.lane_e_checkpoint import on_checkpoint_message, sweep_expired
from streams.lanes.lane_f_execution import run_concurrently
from streams.lanes.lane_g_audit import AuditChain, on_fact
from streams.retention import TableRetention
from streams.runtime import Lane, handle
from streams.services import WorkerServices
from streams.watchdog import PartitionWatchdog

log = logging.getLogger(__name__)
Agent = Callable[[faust.StreamT[Any]], Coroutine[Any, Any, None]]
PROBE_TICK_S = 1.0  # how often the probe timer asks whether its (shared) interval has passed


def _current_partition() -> int:
    event = current_event()
    if event is None:
        raise RuntimeError("no current event: partition unknown")
    return int(event.message.partition)


def build_app(
    settings: Settings, services: WorkerServices, schemas: SchemaSet | None = None
) -> faust.App:
    datadir = settings.data_dir / "faust" / settings.topic_prefix
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        worker_app_id(settings.topic_prefix),
        **faust_broker(settings),  # logs in as the worker's principal (nova.kafka.clients)
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
        # No linger: each of a request's hand-offs is sent at once (a 5 ms linger cost 5 ms per
        # hop, 40 ms per request, idle). Under load the producer still batches: records queue
        # while a produce request to the broker is in flight and leave together in the next.
        producer_linger=settings.kafka_linger_ms / 1000,
        # Faust's default 60 s session: a SIGKILLed worker's partitions wait that long for a
        # successor, but a shorter session (10 s was tried) let a busy, just-restarted worker
        # drop out of its own group on 2 cores and leave partitions unconsumed. Tests that
        # wait for a paused worker to be dropped set a shorter one.
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=3.0,
        # Static membership (KIP-345): a worker restarted after a crash rejoins as the same
        # member and gets its partitions back at once, instead of waiting for its ghost's
        # session to time out and for the rebalance that follows.
        consumer_group_instance_id=(
            f"{worker_app_id(settings.topic_prefix)}-{socket.gethostname()}"
            f"-{settings.worker_instance}"
        ),
        stream_wait_empty=False,
    )
    schemas = load_schema_set() if schemas is None else schemas
    chain = AuditChain(settings, schemas, rebalancing=lambda: bool(app.rebalancing))
    # commits never pass an unfinished record, nor a record whose audit is not committed yet;
    # fetches wait briefly (see streams.consumer)
    consumer.install(app, settings.kafka_fetch_max_wait_ms, before_commit=chain.before_commit)
    table_opts: dict[str, Any] = {
        "default": None, "partitions": settings.topic_partitions,
        "key_type": bytes, "value_type": bytes,
        "extra_topic_configs": changelog_configs(settings.checkpoint_ttl_s,
                                                 settings.table_keep_s),
    }
    llm_results = app.Table("llm_results", **table_opts)
    held = app.Table("held", **table_opts)
    _retention(app, settings, llm_results, held)
    state = LaneState(
        held=held,
        llm_results=llm_results,
        put_durably=_durable_setter(llm_results),
        hold_durably=_durable_setter(held),
        audit_chain=chain,
        current_partition=_current_partition,
    )
    ctx = LaneContext(app=app, settings=settings, schemas=schemas,
                      worker=settings.worker_name, services=services, state=state)
    execution = services.execution
    execution.writes = LaneWrites(ctx)  # agents' writes go to the gateway through agent-writes
    _llm_background(app, ctx)

    lanes: list[Lane] = [IntentLane(), ContextLane(), EncodingLane(), GovernanceLane(),
                         CheckpointLane()]
    for lane in lanes:
        app.agent(ctx.topic(lane.source), name=f"lane-{lane.code}")(_agent_for(lane, ctx))

    lane_f = ExecutionLane()

    async def lane_f_agent(stream: faust.StreamT[Any]) -> None:
        async def one(message: Any) -> None:
            await handle(lane_f, ctx, message)

        await run_concurrently(stream, one, settings.llm_max_in_flight,
                               stopping=lambda: bool(app.should_stop))

    app.agent(ctx.topic("executable"), name="lane-F")(lane_f_agent)

    lane_g = AuditLane()
    g_topic = app.topic(settings.topic("executed"), settings.topic("facts"), **RAW)
    facts_name = settings.topic("facts")

    async def lane_g_agent(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            if event.message.topic == facts_name:
                await on_fact(ctx, event.message)
            else:
                await handle(lane_g, ctx, event.message)

    app.agent(g_topic, name="lane-G")(lane_g_agent)

    async def decisions_agent(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await on_checkpoint_message(ctx, event.message)

    e_topic = app.topic(settings.topic("decisions"), settings.topic("expiries"), **RAW)
    app.agent(e_topic, name="lane-E-decisions")(decisions_agent)
    guard = EntityGuard(ctx)
    app.task(guard.run)

    expiry_sent: set[str] = set()

    async def expiry_timer() -> None:
        await sweep_expired(ctx, expiry_sent)

    app.timer(settings.checkpoint_sweep_s, name="checkpoint-expiry")(expiry_timer)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: set[Any], **_: Any) -> None:
        mine = {tp.partition for tp in assigned if tp.topic == settings.topic("executable")}
        execution.set_share(len(mine) / settings.topic_partitions if mine else 1.0)
        chain.assign(assigned)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        await chain.revoke(revoked)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def on_shutdown(sender: Any, **_: Any) -> None:
        await chain.close()  # after the consumer's last commit, which committed the audit

    watchdog = PartitionWatchdog(app, settings)
    _guarded_timer(app, settings.worker_watchdog_interval_s, "partition-watchdog",
                   watchdog.tick, "partition watchdog check failed")

    app.nova_context = ctx  # type: ignore[attr-defined]  # tests and extra agents reach it here
    return app


class LaneWrites:
    """Agents' allowed writes onto ``agent-writes``, keyed by request id (so a request's stay
    in order), returned from once on the broker: the gateway's applier signs and writes them
    (``gateway.agent_writes``)."""

    def __init__(self, ctx: LaneContext) -> None:
        self.ctx = ctx

    async def write(self, write: AgentWrite) -> None:
        await self.ctx.send_durably("agent-writes", write.request_id, write)


def _durable_setter(table: Any) -> Callable[[bytes, bytes | None], Awaitable[None]]:
    """``table[key] = value`` (``del table[key]`` for None) that returns once the change is on
    the broker.

    A plain assignment only queues the changelog record (Faust sends it soon after); lane F
    must know its attempt marker is durable *before* it calls a provider, or a SIGKILL in
    between would leave no trace of the call (and a paused agent run's held entry before the
    marker that points at it); and its result durable *before* it forwards the outcome, or a
    SIGKILL in between leaves the outcome downstream and only the marker in the table, and
    the redelivered copy answers "interrupted": a second, different outcome (``make chaos``
    caught one). Same record, same partition (the event's) as the assignment would send; the
    local store is set directly so it is sent once.
    """

    async def put(key: bytes, value: bytes | None) -> None:
        partition = table.partition_for_key(key)
        table.data.pop(key, None)  # re-inserted last: the retention sweep visits oldest first
        if value is None:  # a tombstone, as Faust's own delete sends it
            sent = table.send_changelog(partition, key, None, value_serializer="raw")
        else:
            sent = table.send_changelog(partition, key, value)
            table.data[key] = value
        await sent

    return put


def _retention(app: faust.App, settings: Settings, *tables: Any) -> None:
    """Finished entries leave the tables' memory after ``table_keep_s`` (streams.retention)."""
    keep_ms = settings.table_keep_s * 1000
    sweepers: list[TableRetention] = []

    async def sweep() -> None:
        if not sweepers:  # the stores exist once the app runs
            sweepers.extend(TableRetention.of_table(t, keep_ms, now_ms) for t in tables)
        dropped = sum(s.sweep() for s in sweepers)
        if dropped:
            log.debug("table retention: %d finished entries left memory", dropped)

    _guarded_timer(app, settings.table_sweep_s, "table-retention", sweep,
                   "table retention sweep failed")


def _agent_for(lane: Lane, ctx: LaneContext) -> Agent:
    async def agent(stream: faust.StreamT[Any]) -> None:
        events: AsyncIterator[Any] = stream.events()
        async for event in events:
            await handle(lane, ctx, event.message)

    agent.__name__ = f"lane_{lane.code.lower()}"
    return agent


def _llm_background(app: faust.App, ctx: LaneContext) -> None:
    """Lane F's shared state: spend (``streams.spend``) and provider health probes."""
    execution = ctx.services.execution
    app.task(ctx.services.spend.run)
    entities, default_s = ctx.services.entities, ctx.settings.llm_probe_interval_s

    def interval_s() -> float:
        chosen = entities.probe_settings()  # an operator's, shared by every worker
        return default_s if chosen is None else chosen.interval_s

    probe = HealthProbe(execution.registry, execution.pool, execution.board, ctx.emit,
                        interval_s=interval_s)
    _guarded_timer(app, min(default_s, PROBE_TICK_S), "llm-health-probe",
                   probe.maybe_tick, "provider health probe round failed")


def _guarded_timer(app: faust.App, interval_s: float, name: str,
                   tick: Callable[[], Coroutine[Any, Any, Any]], failure: str) -> None:
    """Run ``tick`` every ``interval_s``; a failed round is logged and must not stop the timer."""

    async def timer() -> None:
        try:
            await tick()
        except Exception:
            log.exception(failure)

    app.timer(interval_s, name=name)(timer)
