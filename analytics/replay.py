"""Audit replay: rebuild analytics from Kafka, and follow one request across every topic.

``replay_into`` re-consumes the source topics (events, completed, pending, decisions, audit)
from the beginning, or from a timestamp, into a fresh ClickHouse database. It decodes and maps
each message with exactly the functions the live sink uses (``analytics.rows.message_rows``;
for the events topic, ClickHouse's own decoder and the views of ``analytics.avro_load``) and
writes through the same ``ClickHouseSink``, so a replayed database equals the live one by
construction; the integration test proves it table by table. It reads without a consumer
group (nothing is committed, the live sink is not disturbed) and stops at the end offsets
captured when it started, so it terminates while producers keep writing.

Embedded ClickHouse: only one process may open a chdb path, so replaying into the stack's own
chdb needs the stack stopped (the error says so); with an http(s) DSN replay runs any time.

``request_trail`` scans requests, events, pending, decisions, completed and audit for one
request id. Every topic is keyed by request id, so it filters on the key before decoding, but
it still reads every partition of each topic: O(topic size), fine for now; an index (the
ClickHouse tables, or the partition the key hashes to) is the way to make it cheap later.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from rich.console import Console
from rich.table import Table
from rich.text import Text

from analytics.agent_trail import agent_lines, agent_run
from analytics.client import ClickHouse
from analytics.migrate import migrate
from analytics.queries import refresh_rollups
from analytics.rows import (
    COLUMNS,
    LOADED_ENCODED,
    SOURCE_TOPICS,
    Position,
    decode_message,
    message_rows,
)
from analytics.sink import Batch, ClickHouseSink, encoded
from nova.errors import ConfigError, SchemaError
from nova.kafka.admin import all_partitions
from nova.kafka.tail import open_reader
from nova.records import (
    AuditRecord,
    CheckpointDecisionRecord,
    Event,
    PipelineRecord,
    Record,
)
from nova.settings import Settings
from schemas import TOPICS, load_schema_set

TRAIL_TOPICS = ("requests", "events", "pending", "decisions", "expiries", "completed", "audit")
REPLAY_BATCH_ROWS = 20_000

Progress = Callable[[int, int], None]  # (messages read, messages to read)
Handler = Callable[[str, Any], None]   # (logical topic, ConsumerRecord)


def default_database(now: datetime | None = None) -> str:
    return "replay_" + (now or datetime.now(UTC)).strftime("%Y%m%d_%H%M%S")


@dataclass
class ReplayReport:
    database: str
    messages: int = 0
    undecodable: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


async def scan_topics(
    settings: Settings, topics: tuple[str, ...], handle: Handler, *,
    from_timestamp_ms: int | None = None, progress: Progress | None = None,
    after_poll: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Read ``topics`` from the start (or a timestamp) to the end offsets seen now.

    Calls ``handle(topic, message)`` in partition order and ``after_poll()`` after each
    fetched chunk (where a caller writes what it accumulated); returns messages read.
    """
    try:
        reader = await open_reader(settings, topics, isolation_level="read_committed",
                                   max_partition_fetch_bytes=4 * 1024 * 1024, assign=False)
    except Exception as exc:
        raise ConfigError(f"Kafka at {settings.bootstrap_servers} did not answer "
                          f"({type(exc).__name__}): start it with `nova kafka start` or set "
                          "KAFKA_BOOTSTRAP_SERVERS") from exc
    async with reader:
        consumer = reader.consumer
        tps = await all_partitions(consumer, reader.names)  # of the topics that exist
        if not tps:
            return 0
        # the offsets are looked up before the partitions are assigned: see nova.kafka.tail
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        starts: dict[TopicPartition, int] = await consumer.beginning_offsets(tps)
        if from_timestamp_ms is not None:
            found = await consumer.offsets_for_times({tp: from_timestamp_ms for tp in tps})
            starts = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in tps}
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        total = sum(max(ends[tp] - starts[tp], 0) for tp in tps)
        todo = {tp for tp in tps if starts[tp] < ends[tp]}
        done_tps = [tp for tp in tps if tp not in todo]
        if done_tps:
            consumer.pause(*done_tps)
        read = 0
        if progress:
            progress(0, total)
        while todo:
            polled = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, messages in polled.items():
                for msg in messages:
                    if msg.offset >= ends[tp]:
                        break
                    handle(reader.logical(tp.topic), msg)
                    read += 1
            if after_poll is not None:
                await after_poll()
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
                    consumer.pause(tp)
            if progress:
                progress(read, total)
        return read


def table_counts(ch: ClickHouse) -> dict[str, int]:
    """Rows in each of the sink's tables, those it has (ClickHouse maps the events records, so
    their rows are counted where they landed)."""
    counts = {}
    for table in COLUMNS:
        n = int(ch.scalar(f"SELECT count() FROM {ch.database}.{table}") or 0)  # noqa: S608
        if n:
            counts[table] = n
    return counts


def _require_fresh(ch: ClickHouse) -> None:
    n = int(ch.scalar("SELECT count() FROM system.tables WHERE database = {db:String}",
                      {"db": ch.database}) or 0)
    if n:
        raise ConfigError(f"database {ch.database} already has {n} tables: replay needs a fresh "
                          "one; pass another --database name (or DROP DATABASE it first)")


async def replay_into(
    settings: Settings, ch: ClickHouse, *, from_timestamp_ms: int | None = None,
    topics: tuple[str, ...] = SOURCE_TOPICS, progress: Progress | None = None,
    require_fresh: bool = True,
) -> ReplayReport:
    """Rebuild ``ch.database`` from Kafka with the live sink's mappers and writer."""
    if require_fresh:
        _require_fresh(ch)
    migrate(ch)
    schemas = load_schema_set()
    sink = ClickHouseSink(ch, schemas)
    report = ReplayReport(database=ch.database)
    batch = Batch()
    pending_flush: list[Batch] = []
    t0 = time.perf_counter()

    def handle(topic: str, msg: Any) -> None:
        nonlocal batch
        try:
            if topic == LOADED_ENCODED:
                batch.add_encoded(sink.codec, encoded(msg))
            else:
                batch.add_rows(message_rows(schemas, topic, msg.value, msg.headers,
                                            Position(msg.partition, msg.offset)))
        except (SchemaError, ValueError):
            report.undecodable += 1  # the live sink dead-lettered these already
            return
        if batch.size >= REPLAY_BATCH_ROWS:
            pending_flush.append(batch)
            batch = Batch()

    async def write(done: Batch) -> None:
        await sink.write(done)
        report.undecodable += len(done.rejected)

    async def flush_full() -> None:
        while pending_flush:
            await write(pending_flush.pop(0))

    report.messages = await scan_topics(settings, topics, handle, progress=progress,
                                        from_timestamp_ms=from_timestamp_ms,
                                        after_poll=flush_full)
    await flush_full()
    await write(batch)
    report.rows.update(table_counts(ch))  # a fresh database (unless told): what replay wrote
    refresh_rollups(ch)
    report.seconds = time.perf_counter() - t0
    return report


# ---------------------------------------------------------------------------------------------
# One request's trail


@dataclass
class Trail:
    """Everything Kafka holds about one request, topic by topic, in offset order."""

    request_id: str
    submitted: PipelineRecord | None = None
    lane_events: list[Event] = field(default_factory=list)
    llm_events: list[Event] = field(default_factory=list)
    alerts: list[Event] = field(default_factory=list)
    pending: list[PipelineRecord] = field(default_factory=list)
    decisions: list[CheckpointDecisionRecord] = field(default_factory=list)
    completed: list[PipelineRecord] = field(default_factory=list)
    audit: list[tuple[int, int, AuditRecord]] = field(default_factory=list)
    undecodable: int = 0

    @property
    def found(self) -> bool:
        return bool(self.submitted or self.lane_events or self.llm_events or self.pending
                    or self.decisions or self.completed or self.audit)

    @property
    def final(self) -> PipelineRecord | None:
        return self.completed[-1] if self.completed else None

    def add(self, topic: str, record: Any, pos: Position) -> None:
        if topic == "requests" and self.submitted is None:
            self.submitted = record
        elif topic == "events" and record.kind == "lanes":
            self._add_lanes(record)
        elif topic == "events":
            {"lane": self.lane_events, "llm": self.llm_events}.get(
                record.kind, self.alerts).append(record)
        elif topic == "pending":
            self.pending.append(record)
        elif topic in ("decisions", "expiries"):
            self.decisions.append(record)
        elif topic == "completed":
            self.completed.append(record)
        elif topic == "audit":
            self.audit.append((pos.partition, pos.offset, record))


    def _add_lanes(self, batch: Event) -> None:
        """A request's lane events written in one record, one trail entry per lane run: a
        request that came back from a checkpoint has its earlier lanes in both records."""
        seen = {(e.lane.lane, e.lane.started_at) for e in self.lane_events if e.lane}
        for ln in batch.lanes:
            if (ln.lane, ln.started_at) not in seen:
                self.lane_events.append(batch.model_copy(
                    update={"kind": "lane", "lane": ln, "lanes": (),
                            "event_id": f"{batch.request_id}/lane/{ln.lane}"}))


async def request_trail(settings: Settings, request_id: str,
                        progress: Progress | None = None) -> Trail:
    """Scan the trail topics for ``request_id`` (O(topic size), see module docstring)."""
    schemas = load_schema_set()
    trail = Trail(request_id)
    key = request_id.encode()
    decoders: dict[str, type[Record]] = {"requests": PipelineRecord, "audit": AuditRecord}

    def handle(topic: str, msg: Any) -> None:
        if msg.key != key:
            return
        try:
            if topic in decoders:
                data = schemas[_schema(topic)].decode(msg.value, msg.headers)
                record: Any = decoders[topic].from_avro(data)
            else:
                record = decode_message(schemas, topic, msg.value, msg.headers)
        except (SchemaError, ValueError):
            trail.undecodable += 1
            return
        if getattr(record, "request_id", request_id) != request_id:
            return
        trail.add(topic, record, Position(msg.partition, msg.offset))

    await scan_topics(settings, TRAIL_TOPICS, handle, progress=progress)
    trail.lane_events.sort(key=lambda e: (e.lane.started_at if e.lane else e.ts, e.ts))
    trail.llm_events.sort(key=lambda e: (e.llm.attempt if e.llm else 0, e.ts))
    return trail


def _schema(topic: str) -> str:
    return TOPICS[topic].value_schema


def _t(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def parse_timestamp(text: str) -> int:
    """Epoch milliseconds from ``1735689600000`` or an ISO 8601 instant (naive means UTC)."""
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"--from-timestamp {text!r}: use epoch milliseconds or ISO 8601 such "
                         "as 2025-01-31T00:00:00Z") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def render_trail(trail: Trail, console: Console) -> None:
    """Print a request's trail: submission, lanes, governance, checkpoint, LLM, outcome, audit;
    for a request that ran an agent, then its run step by step (``analytics.agent_trail``)."""
    rid = trail.request_id
    if not trail.found:
        console.print(f"no record of request {rid} on any topic")
        return
    first = trail.submitted or (trail.completed[0] if trail.completed else None)
    console.print(f"[bold]Request {rid}[/bold]")
    if first is not None:
        console.print(f"identity {first.identity_id}  user {first.user_id}  submitted "
                      f"{_t(first.submitted_at)}  prompt {first.prompt[:80]!r}")
    lanes = Table(title="Lanes (events topic)", title_justify="left")
    for col in ("lane", "status", "started", "duration ms", "worker", "error"):
        lanes.add_column(col)
    for e in trail.lane_events:
        ln = e.lane
        if ln is not None:
            lanes.add_row(ln.lane, ln.status, _t(ln.started_at), f"{ln.duration_ms:.3f}",
                          ln.worker, ln.error or "")
    console.print(lanes)
    final = trail.final
    gov = final.governance if final else None
    if gov is None:
        gov = next((p.governance for p in trail.pending if p.governance), None)
    if gov is not None:
        console.print(f"[bold]Governance[/bold]: {gov.outcome}  rules {list(gov.fired_rules)}  "
                      f"reasons {list(gov.reasons)}")
    for p in trail.pending:
        cp = p.checkpoint
        if cp is not None:
            console.print(f"[bold]Checkpoint[/bold] {cp.checkpoint_id}: {cp.reason}  held "
                          f"{_t(cp.created_at)}  expires {_t(cp.expires_at)}")
    for d in trail.decisions:
        console.print(f"[bold]Decision[/bold] {d.decision} by {d.actor} at {_t(d.decided_at)}"
                      f"{'  reason ' + d.reason if d.reason else ''}")
    if trail.llm_events:
        calls = Table(title="LLM attempts (events topic)", title_justify="left")
        for col in ("attempt", "provider", "model", "status", "latency ms", "tokens in/out",
                    "cost $", "fallback from", "error"):
            calls.add_column(col)
        for e in trail.llm_events:
            c = e.llm
            if c is not None:
                calls.add_row(str(c.attempt), c.provider, c.model, c.status,
                              f"{c.latency_ms:.1f}", f"{c.tokens_in}/{c.tokens_out}",
                              f"{c.cost_usd:.6f}", c.fallback_from or "", c.error or "")
        console.print(calls)
    if final is not None:
        ex = final.execution
        console.print(f"[bold]Outcome[/bold] (completed topic): {final.status}"
                      + (f"  via {ex.provider}/{ex.model}  ${ex.cost_usd:.6f}" if ex else "")
                      + (f"  error {final.error}" if final.error else ""))
    if trail.audit:
        audit = Table(title="Audit records (audit topic)", title_justify="left")
        for col in ("partition/offset", "kind", "ts", "actor", "hash", "detail"):
            audit.add_column(col)
        for part, off, a in trail.audit:
            audit.add_row(f"{part}/{off}", a.kind, _t(a.ts), a.actor or "", a.hash[:12],
                          a.detail[:80])
        console.print(audit)
    if trail.alerts:
        for e in trail.alerts:
            if e.alert is not None:
                console.print(f"[yellow]alert[/yellow] {e.alert.alert_type}: {e.alert.message}")
    run = agent_run(trail.submitted, trail.llm_events, trail.pending, trail.decisions,
                    trail.final, trail.audit)
    if run is not None:
        head, *lines = agent_lines(run)
        console.print(Text(head, style="bold"))
        for line in lines:  # model text and arguments: never read as markup
            console.print(Text(line), soft_wrap=True)
    if trail.undecodable:
        console.print(f"[red]{trail.undecodable} record(s) of this request could not be decoded "
                      "(see the deadletter topic)[/red]")
