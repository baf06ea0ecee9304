"""Chaos run: ``nova up`` under load while its worker and broker are killed, then an audit of
what was recorded. ``make chaos`` runs it with 10,000 requests; ``make test`` with fewer
(``tests/integration/test_chaos.py``, ``NOVA_CHAOS_REQUESTS``).

Modelled on Kafka's own transactions system test (``tests/kafkatest/tests/core/
transactions_test.py``: seed the input, run the copier, hard-kill brokers and clients during
the copy, then consume everything and check that the output is the input, nothing lost or
doubled). Here:

1. ``nova up`` runs in its own data dir on free ports, calling a fake provider server that
   counts every call per request (this process runs it, so the count survives the stack).
2. The requests are seeded over HTTP as a client would, each with its own ``Idempotency-Key``,
   retried with the same key after a 503 (the broker is away) or a dropped connection.
3. While the lanes work through them, the worker is SIGKILLed three times and the broker once
   (when a fifth, two fifths, three fifths and four fifths are completed). Nothing restarts
   them but ``nova up``. The recovery time of a fault runs from the kill to the first
   completion written after it (by the restarted worker, or through the restarted broker).
4. Once every accepted request is on ``completed``: input (``requests``) and output
   (``completed``) are compared, completions per request and provider calls per request are
   counted, the audit chains are verified; then ``nova up`` is stopped, the broker alone is
   started again, and a replay of the topics into a fresh database must equal the live
   analytics (``analytics.compare``).

What "duplicated" means: delivery is at least once (README, "Topics and keying"), so a worker
killed mid-stream writes some completion records twice when it re-reads what it had not
committed; those copies are identical and every reader deduplicates them by request id. They are
counted as ``redelivered``. A *duplicated* completion is a request that completed twice with a
different outcome (status, error, provider, model or answer), or that the analytics count twice;
that must be 0, like lost requests.

Provider calls: counted by the fake provider as they arrive (before it answers), so a call
cut off by a SIGKILL counts. Lane F marks each call on the broker before making it, so a request
whose call was under way when its worker died is answered ``failed`` (``interrupted``) rather
than called again (``NOVA_LLM_AFTER_CRASH=fail``, the default): at most one call per request,
and the interrupted requests are counted (``interrupted``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/chaos.py``, this directory is first on sys.path and its analytics.py
# would shadow ``analytics``. Drop it before importing anything.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from analytics import compare
from analytics.client import ClickHouse
from analytics.queries import refresh_rollups
from analytics.replay import replay_into
from nova.audit.verify import verify_audit
from nova.auth.tokens import issue_token
from nova.kafka.launcher import Broker, free_port
from nova.kafka.tail import TopicReader, open_reader
from nova.llm.fake_server import FakeServerThread
from nova.records import PipelineRecord
from nova.settings import Settings, load_settings

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
PROMPTS = ("Summarise this thread", "Summarise this thread about the Q3 roadmap",
           "Translate 'good morning' into French", "Write a short poem about the sea")
# What strikes when (the share of requests completed): make chaos's full run, and the short
# form of make test, one fault of each kind, whose recoveries (some 20 s each on a loaded
# two-core machine) are most of its time.
FAULTS = (("worker", 0.2), ("broker", 0.4), ("worker", 0.6), ("worker", 0.8))
IDENTITIES = 20
CONCURRENCY = 12


@dataclass
class Fault:
    what: str  # "worker" or "broker"
    at_completed: int  # requests completed when it struck
    pid: int = 0
    recovery_s: float | None = None  # from the kill to the first completion written after it
    calls_before: int = 0  # provider calls the fake provider had received when it struck


@dataclass
class Report:
    requests: int
    accepted: int = 0
    input: int = 0
    output: int = 0
    lost: int = 0
    unexpected: int = 0  # completed, never requested
    duplicated: int = 0  # completed twice with different outcomes, or counted twice
    redelivered: int = 0  # identical completion records written again (at least once)
    provider_calls: int = 0
    max_calls_per_request: int = 0
    requests_called_twice: int = 0
    # answered failed because their call was under way when the worker was SIGKILLed
    interrupted: int = 0
    audit_checked: int = 0
    audit_intact: bool = False
    analytics_rows: int = 0
    replay_differences: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    seconds: float = 0.0  # from the start to the last completion
    checks_s: float = 0.0  # then reading everything back, the audit walk and the replay

    @property
    def ok(self) -> bool:
        return (self.accepted == self.requests and self.input == self.output == self.accepted
                and self.lost == self.unexpected == self.duplicated == 0
                and self.max_calls_per_request <= 1
                and self.audit_intact
                and not self.replay_differences
                and all(f.recovery_s is not None for f in self.faults))

    def lines(self) -> list[str]:
        faults = "; ".join(
            f"{f.what} SIGKILL after {f.at_completed} completions: recovered in "
            + (f"{f.recovery_s:.1f} s" if f.recovery_s is not None else "NEVER")
            for f in self.faults)
        return [
            f"chaos: {self.requests} requests, all completed {self.seconds:.0f} s after the start "
            f"({'OK' if self.ok else 'FAILED'}); checked in {self.checks_s:.0f} s",
            f"  requests in {self.input} (accepted {self.accepted}), out {self.output}, "
            f"lost {self.lost}, unexpected {self.unexpected}",
            f"  duplicated completions {self.duplicated} (identical redelivered records "
            f"{self.redelivered})",
            f"  provider calls {self.provider_calls}, at most {self.max_calls_per_request} per "
            f"request, {self.requests_called_twice} requests called twice; "
            f"{self.interrupted} answered interrupted (their call was cut off by a SIGKILL)",
            f"  audit chain {'intact' if self.audit_intact else 'BROKEN'} "
            f"({self.audit_checked} records)",
            f"  analytics: {self.analytics_rows} rows, "
            + ("equal to a replay" if not self.replay_differences
               else f"differ from a replay in {', '.join(self.replay_differences)}"),
            f"  faults: {faults}",
        ]


# -- the stack ---------------------------------------------------------------------------


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def child_running(parent: int, marker: str) -> int | None:
    """The pid of ``parent``'s live child whose command line contains ``marker``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or parent_of(int(entry.name)) != parent:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in argv and state != "Z":
            return int(entry.name)
    return None


MARKERS = {"worker": "-m nova worker", "broker": "kafka.Kafka"}


class Stack:
    """``nova up`` in a data dir of its own, on free ports, calling ``fake_url``."""

    def __init__(self, home: Path, fake_url: str) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("NOVA_", "KAFKA_")) and not k.endswith("_API_KEY")}
        self.env.update({
            "NOVA_DATA_DIR": str(home / "data"), "NOVA_KAFKA_PORT": str(free_port()),
            "NOVA_KAFKA_CONTROLLER_PORT": str(free_port()),
            "NOVA_GATEWAY_PORT": str(free_port()), "NOVA_LLM_FAKE_URL": fake_url,
            # one client seeding thousands of requests: the load, not the limit, is under test
            "NOVA_GATEWAY_RPM_PER_IDENTITY": "1000000",
        })
        self.settings = load_settings(
            data_dir=home / "data", kafka_port=int(self.env["NOVA_KAFKA_PORT"]),
            kafka_controller_port=int(self.env["NOVA_KAFKA_CONTROLLER_PORT"]),
            gateway_port=int(self.env["NOVA_GATEWAY_PORT"]), kafka_client="tools")
        self.url = f"http://127.0.0.1:{self.env['NOVA_GATEWAY_PORT']}"
        self.log_path = home / "nova-up.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # our own interpreter and module
                [sys.executable, "-m", "nova", "up"], cwd=REPO, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child(self, what: str) -> int | None:
        assert self.proc is not None
        return child_running(self.proc.pid, MARKERS[what])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def running(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"nova up exited ({self.proc.returncode}):\n{self.log()[-3000:]}")


# -- the client --------------------------------------------------------------------------


class Client:
    """Submits requests as a careful client does: one Idempotency-Key per request, retried
    with the same key until the gateway answers it."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        now = datetime.now(UTC)
        self.tokens = [issue_token(stack.settings, f"user-chaos-{i}", f"identity-chaos-{i}",
                                   ["member"], now) for i in range(IDENTITIES)]
        self.http = httpx.AsyncClient(base_url=stack.url, timeout=60)
        self.accepted: list[str] = []

    async def submit(self, i: int, wait_ms: int | None = None, deadline_s: float = 600) -> Any:
        body: dict[str, Any] = {"prompt": PROMPTS[i % len(PROMPTS)]}
        if wait_ms is not None:
            body["wait_ms"] = wait_ms  # the gateway answers once the request is finished
        headers = {"Authorization": f"Bearer {self.tokens[i % IDENTITIES]}",
                   "Idempotency-Key": str(uuid.uuid4())}
        give_up = time.monotonic() + deadline_s
        while time.monotonic() < give_up:
            try:
                r = await self.http.post("/api/v2/nova/requests", json=body, headers=headers)
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
                continue
            if r.status_code in (200, 202):
                self.accepted.append(str(r.json()["request_id"]))
                return r.json()
            if r.status_code in (429, 503):
                await asyncio.sleep(min(float(r.headers.get("retry-after", "1")), 5))
                continue
            raise RuntimeError(f"request {i}: {r.status_code} {r.text}")
        raise RuntimeError(f"request {i}: not accepted within {deadline_s:.0f} s")


# -- reading back --------------------------------------------------------------------------


async def read_all(settings: Settings, name: str) -> list[Any]:
    """Every committed record of topic ``name`` up to its current end, decoded."""
    out: list[Any] = []
    async with await open_reader(settings, [name], isolation_level="read_committed") as reader:
        consumer, parts = reader.consumer, reader.parts
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        while any([await consumer.position(tp) < ends[tp] for tp in parts]):
            for tp, messages in (await consumer.getmany(timeout_ms=1000,
                                                        max_records=10_000)).items():
                out += [reader.decode(m) for m in messages if m.offset < ends[tp]]
    return [PipelineRecord.from_avro(data) for data in out]


def outcome(record: PipelineRecord) -> tuple[Any, ...]:
    ex = record.execution
    return (record.status, record.error, ex.provider if ex else None, ex.model if ex else None,
            ex.text if ex else None)


async def analytics_landed(client: Client, expected: int, timeout_s: float) -> int:
    """Until the live sink holds one row per request and its counts stop moving."""
    token = issue_token(client.stack.settings, "user-chaos-ops", "identity-chaos-ops",
                        ["operator"], datetime.now(UTC))
    headers = {"Authorization": f"Bearer {token}"}
    sql = ("SELECT (SELECT count() FROM requests FINAL), (SELECT count() FROM lane_events), "
           "(SELECT count() FROM audit_events)")
    last: list[Any] = []
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        with contextlib.suppress(httpx.HTTPError):
            r = await client.http.post("/api/v2/analytics/sql", json={"sql": sql},
                                       headers=headers)
            if r.status_code == 200:
                row = r.json()["rows"][0]
                if row[0] >= expected and row == last:
                    return int(row[0])
                last = row
        await asyncio.sleep(2)
    raise RuntimeError(f"the analytics did not land: last counts {last}, {expected} expected")


# -- the run -----------------------------------------------------------------------------


class Completions:
    """The ``completed`` topic as it is written: which requests are done, and when the first
    completion made after a given instant arrived (a record's timestamp is when its producer
    made it; one made after a broker kill waits in the producer until the broker is back, so
    its arrival, not its timestamp, says when the pipeline completed requests again)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.done: set[str] = set()
        self.arrivals: list[tuple[float, int]] = []  # (wall clock seconds, record timestamp ms)
        self.changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        reader = await open_reader(self.settings, ["completed"],
                                   isolation_level="read_committed")
        self._task = asyncio.create_task(self._run(reader))

    async def _run(self, reader: TopicReader) -> None:
        try:
            while True:
                polled = await reader.consumer.getmany(timeout_ms=500, max_records=10_000)
                arrived = time.time()
                for messages in polled.values():
                    for m in messages:
                        self.done.add(str(reader.decode(m)["request_id"]))
                        self.arrivals.append((arrived, m.timestamp))
                if polled:
                    async with self.changed:
                        self.changed.notify_all()
        finally:
            await reader.close()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def until(self, check: Any) -> None:
        async with self.changed:
            await self.changed.wait_for(check)

    def first_made_after(self, instant_s: float, start: int = 0) -> float | None:
        """When the first completion made after ``instant_s`` arrived (None: none yet), looking
        at arrivals from index ``start`` on."""
        return next((at for at, made_ms in self.arrivals[start:] if made_ms > instant_s * 1000),
                    None)


async def strike(stack: Stack, done: Completions, n: int, report: Report,
                 schedule: tuple[tuple[str, float], ...], calls_made: Callable[[], int]) -> None:
    """Each fault once its share of the requests is completed and the previous one recovered."""
    for what, share in schedule:
        due = share * n
        await done.until(lambda: len(done.done) >= due)  # noqa: B023
        pid = stack.child(what)
        if pid is None:
            raise RuntimeError(f"nova up runs no {what}:\n{stack.log()[-3000:]}")
        fault = Fault(what, len(done.done), pid, calls_before=calls_made())
        report.faults.append(fault)
        struck, seen = time.time(), len(done.arrivals)
        os.kill(pid, signal.SIGKILL)
        await done.until(lambda: done.first_made_after(struck, seen) is not None)  # noqa: B023
        fault.recovery_s = (done.first_made_after(struck, seen) or struck) - struck


async def seed(client: Client, n: int) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await client.submit(queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def completed_ids(settings: Settings) -> set[str]:
    return {r.request_id for r in await read_all(settings, "completed")}


async def run_chaos(n: int, home: Path, timeout_s: float = 3600,
                    faults: tuple[tuple[str, float], ...] = FAULTS) -> Report:
    """Seed ``n`` requests through a ``nova up`` under ``faults``; what was recorded."""
    report = Report(requests=n + 1)
    fake = FakeServerThread().start()
    stack = Stack(home, fake.url)
    started = time.monotonic()
    client: Client | None = None
    done = Completions(stack.settings)
    try:
        stack.start()
        client = Client(stack)
        async def the_run() -> set[str]:
            assert client is not None
            await client.submit(n, wait_ms=60_000, deadline_s=600)  # up: one request through
            await done.start()
            received = fake.state.all_bodies
            await asyncio.gather(seed(client, n), strike(stack, done, n, report, faults,
                                                                 lambda: len(received())))
            accepted = set(client.accepted)
            await done.until(lambda: accepted <= done.done)
            report.seconds = time.monotonic() - started
            report.analytics_rows = await analytics_landed(client, len(accepted), 600)
            return accepted

        async with asyncio.timeout(timeout_s):
            accepted = await while_running(stack, the_run())
        report.accepted = len(accepted)
        await check_topics(stack.settings, accepted, report)
        calls = Counter(b.request_id for b in fake.state.all_bodies() if b.request_id)
        report.provider_calls = sum(calls.values())
        report.max_calls_per_request = max(calls.values(), default=0)
        report.requests_called_twice = sum(1 for v in calls.values() if v > 1)
        audit = await verify_audit(stack.settings)
        report.audit_checked, report.audit_intact = audit.report.checked, audit.report.ok
    finally:
        await done.stop()
        if client is not None:
            await client.http.aclose()
        stack.stop()
        fake.stop()
    report.replay_differences = await replay_differs(stack)
    report.checks_s = time.monotonic() - started - report.seconds
    return report


async def while_running(stack: Stack, work: Coroutine[Any, Any, T]) -> T:
    """``work``'s result, or the reason ``nova up`` exited before it was done."""

    async def watch() -> None:
        while True:
            stack.running()
            await asyncio.sleep(2)

    task, watcher = asyncio.ensure_future(work), asyncio.ensure_future(watch())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            watcher.result()  # raises: nova up is gone
        return task.result()
    finally:
        for t in (task, watcher):
            t.cancel()
        await asyncio.gather(task, watcher, return_exceptions=True)


async def check_topics(settings: Settings, accepted: set[str], report: Report) -> None:
    requested = {r.request_id for r in await read_all(settings, "requests")}
    completions = await read_all(settings, "completed")
    outcomes: dict[str, set[tuple[Any, ...]]] = {}
    for r in completions:
        outcomes.setdefault(r.request_id, set()).add(outcome(r))
    done = set(outcomes)
    report.input, report.output = len(requested), len(done & requested)
    report.lost = len(requested - done)
    report.unexpected = len(done - requested) + len(accepted - requested)
    report.duplicated = sum(1 for o in outcomes.values() if len(o) > 1)
    report.redelivered = len(completions) - len(done)
    report.interrupted = len({r.request_id for r in completions if r.status == "failed"
                              and (r.error or "").startswith("interrupted:")})


async def replay_differs(stack: Stack) -> list[str]:
    """Replay the topics into a fresh database beside the live one; what differs.

    In a process of its own: a process opens one embedded ClickHouse path at most, and the
    caller (a test session) may have opened another.
    """
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(REPO / "bench" / "chaos.py"), "--replay-check"],
        cwd=REPO, env={**stack.env, "NOVA_KAFKA_CLIENT": "tools"}, capture_output=True,
        text=True, timeout=1800, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return [f"replay failed ({done.returncode}): {done.stderr.strip()[-2000:]}"]
    return list(json.loads(lines[-1]))


async def replay_check(settings: Settings) -> list[str]:
    """``--replay-check``: start the stopped stack's broker alone, replay, compare."""
    broker = Broker(settings)
    await asyncio.to_thread(broker.start, attached=False)
    live = ClickHouse(settings.clickhouse_url, settings.clickhouse_database)
    try:
        await asyncio.to_thread(refresh_rollups, live)
        before = await asyncio.to_thread(compare.snapshot, live)
        replayed = live.with_database("chaos_replay")
        await replay_into(settings, replayed)
        after = await asyncio.to_thread(compare.snapshot, replayed)
        if before["counts"]["requests"] == 0:
            return ["requests (empty)"]
        return compare.differences(before, after)
    finally:
        live.close()
        await asyncio.to_thread(broker.stop)


@contextlib.contextmanager
def home_dir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="nova-chaos-") as tmp:
        yield Path(tmp)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int,
                        default=int(os.environ.get("NOVA_CHAOS_REQUESTS", "10000")),
                        help="requests to seed (10000, or NOVA_CHAOS_REQUESTS)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this directory and keep it (logs, data) afterwards")
    parser.add_argument("--replay-check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.replay_check:  # the child process of replay_differs, settings from its environment
        print(json.dumps(asyncio.run(replay_check(load_settings()))))
        return
    with home_dir(args.keep) as home:
        report = asyncio.run(run_chaos(args.requests, home))
    print("\n".join(report.lines()))
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
