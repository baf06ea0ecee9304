"""Spend shared across workers and restarts: every LLM call's cost, read back from ``events``.

Budgets are only as good as the spend they are checked against. One worker's memory knows
its own calls; the ``events`` topic knows everyone's. So each worker tails every partition of
``events`` (no consumer group: every worker needs all of it, not a share), starting at the
beginning of the oldest budget window still open (this month, or this ISO week when it began
in the previous month), and charges every successful LLM call to a :class:`SpendLedger`.
Calls this worker made itself were charged when they returned; their events are recognised by
``event_id`` and skipped, so nothing is counted twice. A restarted worker replays the window
and starts with the spend its predecessor left.

Why a ledger of totals rather than charging the budgets directly: budgets arrive on another
topic, in any order relative to spend, and may be created mid-window. The ledger keeps totals
per (scope, subject, period window) for every subject whether or not a budget names it yet,
and the budget book's spend is derived from it whenever either side changes. A budget created
on the 20th therefore sees the month's spend so far: a budget is about a calendar window, not
about the time since someone typed it in.

Bound on the shared view: another worker's call is seen here after its event travels the
topic (milliseconds on a healthy cluster), so concurrent requests on several workers can
overshoot a hard limit by at most the calls in flight at that moment; the next check refuses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from nova.llm.budgets import EACH, Budget, Period, SpendState, spend_key, window_start
from nova.records import Event
from nova.settings import Settings
from schemas import TOPICS, SchemaSet, load_schema_set

log = logging.getLogger(__name__)

PERIODS: tuple[Period, ...] = ("day", "week", "month")
SCOPES: tuple[str, ...] = ("identity", "sphere", "provider")


@dataclass(frozen=True)
class Charge:
    """One successful call's cost, with the subjects it is charged to."""

    event_id: str
    subjects: Mapping[str, str]
    cost_usd: float
    at: datetime


@dataclass
class SpendLedger:
    """Totals per (scope, subject, period) for the current window of each; pure, no I/O.

    An entry holds its window start; a charge in a later window replaces it (the reset), a
    charge in an earlier window is ignored, so charges may arrive in any order across
    partitions and the totals of the open windows are still exact.
    """

    totals: dict[tuple[str, str, str], tuple[str, float]] = field(default_factory=dict)

    def add(self, subjects: Mapping[str, str], cost_usd: float, at: datetime) -> None:
        if cost_usd <= 0:
            return
        for scope, subject in subjects.items():
            for period in PERIODS:
                start = window_start(period, at).isoformat()
                key = (scope, subject, period)
                current = self.totals.get(key)
                if current is None or current[0] < start:
                    self.totals[key] = (start, round(cost_usd, 9))
                elif current[0] == start:
                    self.totals[key] = (start, round(current[1] + cost_usd, 9))

    def spent(self, scope: str, subject: str, period: Period, now: datetime) -> float:
        entry = self.totals.get((scope, subject, period))
        if entry is None or entry[0] != window_start(period, now).isoformat():
            return 0.0
        return entry[1]

    def subjects(self, scope: str) -> set[str]:
        return {s for (sc, s, _) in self.totals if sc == scope}

    def book_spend(self, budgets: Iterable[Budget], now: datetime) -> SpendState:
        """The spend state a :class:`~nova.llm.budgets.BudgetBook` needs for ``budgets``."""
        spend: SpendState = {}
        for budget in budgets:
            subjects = self.subjects(budget.scope) if budget.subject == EACH else {budget.subject}
            start = window_start(budget.period, now).isoformat()
            for subject in subjects:
                spent = self.spent(budget.scope, subject, budget.period, now)
                if spent > 0:
                    spend[spend_key(budget, subject)] = {"window_start": start, "spent_usd": spent}
        return spend


def tracking_start(now: datetime) -> datetime:
    """Where replay starts: the oldest window still open (this month or this ISO week)."""
    return min(window_start("month", now), window_start("week", now))


def charge_of(event: Event, sphere_of: Callable[[str], str | None]) -> Charge | None:
    """The charge an ``events`` record carries: successful LLM calls that cost something."""
    call = event.llm
    if event.kind != "llm" or call is None or call.status != "ok" or call.cost_usd <= 0:
        return None
    subjects = {"provider": call.provider}
    if event.identity_id:
        subjects["identity"] = event.identity_id
        sphere = sphere_of(event.identity_id)
        if sphere:
            subjects["sphere"] = sphere
    return Charge(event.event_id, subjects, call.cost_usd,
                  datetime.fromtimestamp(event.ts / 1000, tz=UTC))


class ChargeSink(Protocol):
    """Where charges go: :class:`streams.execution.ExecutionService` implements it."""

    def charge(self, charges: Iterable[Charge]) -> int: ...


class SpendTracker:
    """Tails ``events`` from the start of the open windows and feeds a :class:`ChargeSink`."""

    def __init__(
        self,
        settings: Settings,
        sink: ChargeSink,
        *,
        sphere_of: Callable[[str], str | None] = lambda _: None,
        schemas: SchemaSet | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.sphere_of = sphere_of
        self.clock = clock
        self._schemas = schemas or load_schema_set()
        self._codec = self._schemas[TOPICS["events"].value_schema]
        self._topic = settings.topic("events")
        self.ready = asyncio.Event()  # set once the backlog up to start-up is charged
        self.charged = 0
        self.skipped_own = 0

    async def run(self) -> None:
        """Run until cancelled; a broker hiccup is logged and retried, never fatal."""
        from aiokafka import TopicPartition

        from nova.kafka.admin import all_partitions
        from nova.kafka.tail import (
            BATCHED_FETCH_BYTES,
            LAGGING_FETCH_WAIT_MS,
            TopicReader,
            open_reader,
        )

        while True:
            reader: TopicReader | None = None
            try:
                # other workers' charges may arrive a quarter of a second late; a worker's own
                # are charged at once (``charge_own``)
                reader = await open_reader(self.settings, ["events"], self._schemas,
                                           assign=False, fetch_min_bytes=BATCHED_FETCH_BYTES,
                                           fetch_max_wait_ms=LAGGING_FETCH_WAIT_MS)
                consumer = reader.consumer
                # every partition the cluster has, or (not created yet) those it will have
                parts = await all_partitions(consumer, reader.names) or [
                    TopicPartition(self._topic, p) for p in range(self.settings.topic_partitions)]
                await self._seek_start(consumer, parts)
                await self._tail(consumer, parts)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("spend tracker failed; restarting in 1s")
                await asyncio.sleep(1)
            finally:
                if reader is not None:
                    await reader.close()

    async def _seek_start(self, consumer: Any, parts: list[Any]) -> None:
        start_ms = int(tracking_start(self.clock()).timestamp() * 1000)
        # the offsets are looked up before the partitions are assigned: see nova.kafka.tail
        found = await consumer.offsets_for_times({tp: start_ms for tp in parts})
        ends = await consumer.end_offsets(parts)
        consumer.assign(parts)
        for tp in parts:
            hit = found.get(tp)
            consumer.seek(tp, hit.offset if hit is not None else ends[tp])

    async def _tail(self, consumer: Any, parts: list[Any]) -> None:
        backlog = await consumer.end_offsets(parts)
        while True:
            polled = await consumer.getmany(timeout_ms=500, max_records=5000)
            charges: list[Charge] = []
            for messages in polled.values():
                for msg in messages:
                    charge = self._decode(msg.value, msg.headers)
                    if charge is not None:
                        charges.append(charge)
            if charges:
                applied = self.sink.charge(charges)
                self.charged += applied
                self.skipped_own += len(charges) - applied
            if not self.ready.is_set():
                positions = {tp: await consumer.position(tp) for tp in parts}
                if all(positions[tp] >= backlog[tp] for tp in parts):
                    self.ready.set()

    def _decode(self, value: bytes | None, headers: Any) -> Charge | None:
        if value is None:
            return None
        try:
            event = Event.from_avro(self._codec.decode(value, headers))
        except Exception as exc:  # noqa: BLE001 - a bad record must not stop spend tracking
            log.warning("spend tracker skipped an undecodable event: %s", exc)
            return None
        return charge_of(event, self.sphere_of)
