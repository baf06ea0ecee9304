"""Pipeline benchmark: N requests through the seven lanes, next to a raw Kafka relay of 7 hops.

Run with ``make bench`` (or ``python bench/pipeline.py --requests 1000``). Both figures come from
the same broker in the same run, so the ratio says what Nova's lanes cost on top of Kafka itself:

- **pipeline**: PipelineRecords are produced to ``requests`` with Nova's RecordProducer; the
  real worker (``python -m nova worker``, a subprocess running the seven Faust lanes, calling
  Nova's fake LLM provider server) carries them to ``completed``, which this process consumes.
- **Faust floor**: seven Faust agents configured as the worker's that pass each record on
  unchanged (``bench/faust_floor.py``, a subprocess): what Faust and Kafka cost for seven hops
  with no lane work at all, the floor under the pipeline.
- **relay**: seven consumer → producer stages written directly on aiokafka, in this process,
  forwarding the same encoded bytes (same headers, same keys) through eight topics.

Each also runs 50 requests one at a time on the idle stack (``idle p50``): the latency floor
of seven hops through Faust, or through aiokafka alone, next to the pipeline's.

Requests are submitted as one burst, so the throughput is the sustained rate at saturation and
the latency (receive time minus ``submitted_at``) includes queueing behind the burst. A short
warm-up before each measured run lets consumer groups settle first.

The broker is the launcher's own on free ports in a temporary directory (removed afterwards),
unless KAFKA_BOOTSTRAP_SERVERS names one; topics get a fresh unique prefix either way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic

from nova.ids import uuid7
from nova.kafka.admin import all_partitions, provision, wait_for_leaders
from nova.kafka.clients import kafka_admin, kafka_consumer, kafka_producer
from nova.kafka.launcher import Broker, BrokerLayout, _die_with_parent, free_port, port_open
from nova.kafka.producer import RecordProducer
from nova.records import LaneTiming, PipelineRecord, now_ms
from nova.settings import Settings, load_settings
from nova.signing import load_signer, public_key_text
from schemas import TOPICS, load_schema_set

# Run as a file, this directory is first on sys.path; the repository root names ``bench``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.faust_floor import HOPS, floor_topics
from bench.sync import nearest_rank

REPO = Path(__file__).resolve().parents[1]
PROMPT = "Summarise this thread about the Q3 roadmap"
WARMUP = 20


@dataclass(frozen=True)
class Result:
    name: str
    n: int
    seconds: float
    latencies_ms: list[float]
    submitted: list[int]
    lanes: list[tuple[LaneTiming, ...]]
    cpu_s: dict[str, float]  # CPU seconds each process used during the measured burst
    records: dict[str, int] = field(default_factory=dict)  # records written, per topic
    steady_ms: list[float] = field(default_factory=list)  # latencies at half the burst rate
    steady_split: list[tuple[int, tuple[LaneTiming, ...]]] = field(default_factory=list)
    idle_ms: list[float] = field(default_factory=list)  # latencies one request at a time

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    def quantile(self, q: float) -> float:
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q * 100) - 1]


def request(i: int) -> PipelineRecord:
    return PipelineRecord(request_id=uuid7(), identity_id="identity-bench",
                          user_id=f"user-bench-{i % 10}", submitted_at=now_ms(), prompt=PROMPT)


class Receiver:
    """Consumes ``topic`` from its current end; records when each request id first arrives."""

    def __init__(self, settings: Settings, topic: str, partitions: int) -> None:
        self.topic = topic
        self.parts = [TopicPartition(topic, p) for p in range(partitions)]
        self.consumer = kafka_consumer(settings, group_id=None, enable_auto_commit=False)
        self.codec = load_schema_set()["pipeline_record"]
        # id → (submitted_at, received ms, lane timings)
        self.arrived: dict[str, tuple[int, int, tuple[LaneTiming, ...]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Receiver:
        await self.consumer.start()
        self.consumer.assign(self.parts)
        await self.consumer.seek_to_end(*self.parts)
        for tp in self.parts:  # resolve positions now, so nothing produced later is missed
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()

    async def _run(self) -> None:
        while True:
            polled = await self.consumer.getmany(timeout_ms=200)
            received = now_ms()
            for messages in polled.values():
                for m in messages:
                    rec = PipelineRecord.from_avro(self.codec.decode(m.value, m.headers))
                    self.arrived.setdefault(rec.request_id,
                                            (rec.submitted_at, received, rec.lanes))

    async def wait_for(self, ids: list[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(i in self.arrived for i in ids):
            if self._task is not None and self._task.done():
                self._task.result()
            if time.monotonic() > deadline:
                missing = sum(1 for i in ids if i not in self.arrived)
                raise SystemExit(f"bench: {missing}/{len(ids)} requests did not arrive on "
                                 f"{self.topic} within {timeout_s:.0f}s")
            await asyncio.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (Linux /proc; 0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def topic_ends(settings: Settings, prefix: str) -> dict[str, int]:
    """Records written so far to each topic whose name starts with ``prefix`` (end offsets)."""
    consumer = kafka_consumer(settings, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith(prefix)]
        parts = await all_partitions(consumer, topics)
        ends = await consumer.end_offsets(parts)
    finally:
        await consumer.stop()
    totals: dict[str, int] = {}
    for tp, end in ends.items():
        totals[tp.topic] = totals.get(tp.topic, 0) + end
    return totals


async def measure(
    name: str, receiver: Receiver, send: object, n: int, timeout_s: float, pids: dict[str, int],
    settings: Settings, prefix: str,
) -> Result:
    """Warm up, then send ``n`` requests at once and time their arrival."""
    warm = [request(i) for i in range(WARMUP)]
    await asyncio.gather(*(send(r) for r in warm))  # type: ignore[operator]
    await receiver.wait_for([r.request_id for r in warm], timeout_s)
    await asyncio.sleep(1.5)  # let the warm-up's last records (audit, events) land first
    records = [request(i) for i in range(n)]
    ends0 = await topic_ends(settings, prefix)
    cpu0 = {k: cpu_seconds(pid) for k, pid in pids.items()}
    t0 = now_ms()
    await asyncio.gather(*(send(r) for r in records))  # type: ignore[operator]
    ids = [r.request_id for r in records]
    await receiver.wait_for(ids, timeout_s)
    arrivals = [receiver.arrived[i] for i in ids]
    last = max(received for _, received, _ in arrivals)
    cpu = {k: cpu_seconds(pid) - cpu0[k] for k, pid in pids.items()}
    await asyncio.sleep(1.5)  # the burst's last audit and event records
    ends1 = await topic_ends(settings, prefix)
    return Result(name, n, max(last - t0, 1) / 1000,
                  [float(received - submitted) for submitted, received, _ in arrivals],
                  [submitted for submitted, _, _ in arrivals],
                  [lanes for _, _, lanes in arrivals],
                  cpu,
                  {t: ends1[t] - ends0.get(t, 0) for t in ends1 if ends1[t] > ends0.get(t, 0)})


async def steady(receiver: Receiver, send: object, rate: float, seconds: float,
                 timeout_s: float) -> list[str]:
    """Requests at a steady ``rate`` per second for ``seconds``: their ids, once all arrived."""
    n = max(int(rate * seconds), 1)
    records = [request(i) for i in range(n)]
    start = time.monotonic()
    tasks = []
    for i, rec in enumerate(records):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        rec = rec.model_copy(update={"submitted_at": now_ms()})
        tasks.append(asyncio.create_task(send(rec)))  # type: ignore[operator]
        records[i] = rec
    await asyncio.gather(*tasks)
    ids = [r.request_id for r in records]
    await receiver.wait_for(ids, timeout_s)
    return ids


async def one_at_a_time(receiver: Receiver, send: object, n: int, timeout_s: float
                        ) -> list[float]:
    """``n`` requests, each sent once the previous one arrived: latencies on an idle stack."""
    latencies = []
    for i in range(n):
        rec = request(i)
        await send(rec)  # type: ignore[operator]
        await receiver.wait_for([rec.request_id], timeout_s)
        submitted, received, _ = receiver.arrived[rec.request_id]
        latencies.append(float(received - submitted))
    return latencies


IDLE = 50


# -- the pipeline: the real worker -----------------------------------------------------------


@contextlib.contextmanager
def child(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process that dies with us and is terminated when the block ends."""
    with log.open("wb") as out:
        proc = subprocess.Popen(  # our own interpreter and modules
            [sys.executable, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def steady_latencies(receiver: Receiver, send: object, rate: float, seconds: float,
                           timeout_s: float) -> list[float]:
    """:func:`steady`'s requests, end to end (ms)."""
    ids = await steady(receiver, send, rate, seconds, timeout_s)
    return [float(receiver.arrived[i][1] - receiver.arrived[i][0]) for i in ids]


async def run_pipeline(
    settings: Settings, n: int, timeout_s: float, logs: Path, broker_pid: dict[str, int],
    steady_s: float,
) -> Result:
    await provision(settings)  # topics, and the worker's ACLs on a broker that has them
    fake_port = free_port()
    env = {**os.environ, **settings.to_env(),
           "NOVA_LLM_FAKE_URL": f"http://127.0.0.1:{fake_port}",
           # the worker verifies decisions with the gateway's public key (nova.signing)
           "NOVA_SIGNING_PUBLIC_KEY": public_key_text(load_signer(settings).public)}
    env.pop("NOVA_WORKER_NAME", None)
    with child(["-m", "nova.llm.fake_server", "--port", str(fake_port)], env,
               logs / "fake-llm.log") as fake, \
            child(["-m", "nova", "worker"], env, logs / "worker.log") as worker:
        deadline = time.monotonic() + 30
        while not port_open(fake_port):
            if time.monotonic() > deadline:
                raise SystemExit("bench: the fake LLM server did not start")
            await asyncio.sleep(0.1)
        producer = RecordProducer(settings)
        await producer.start()
        try:
            async with Receiver(settings, settings.topic("completed"),
                                settings.topic_partitions) as receiver:

                async def send(rec: PipelineRecord) -> None:
                    await producer.send("requests", rec.request_id, rec)

                pids = {"worker": worker.pid, "fake LLM": fake.pid, **broker_pid}
                result = await measure("pipeline", receiver, send, n, timeout_s, pids, settings,
                                       settings.topic_prefix)
                rate = result.rate / 2
                print(f"pipeline: a steady {rate:.0f} req/s (half the burst rate) for "
                      f"{steady_s:.0f} s ...", flush=True)
                for rid in await steady(receiver, send, rate, steady_s, timeout_s):
                    submitted, received, lanes = receiver.arrived[rid]
                    result.steady_ms.append(float(received - submitted))
                    result.steady_split.append((submitted, lanes))
                result.idle_ms.extend(await one_at_a_time(receiver, send, IDLE, timeout_s))
                return result
        finally:
            await producer.stop()


# -- the baseline: a raw aiokafka relay ------------------------------------------------------


async def relay_stage(settings: Settings, source: str, target: str, group: str) -> None:
    consumer = kafka_consumer(settings, source, group_id=group, auto_offset_reset="earliest",
                              enable_auto_commit=True, auto_commit_interval_ms=1000)
    producer = kafka_producer(settings, acks="all", enable_idempotence=True, linger_ms=2)
    await consumer.start()
    await producer.start()
    try:
        while True:
            polled = await consumer.getmany(timeout_ms=100)
            futures = [await producer.send(target, m.value, key=m.key, headers=list(m.headers))
                       for messages in polled.values() for m in messages]
            if futures:
                await asyncio.gather(*futures)
    finally:
        await producer.stop()
        await consumer.stop()


@contextlib.asynccontextmanager
async def relay(settings: Settings, topics: list[str]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(relay_stage(settings, topics[i],
                                             topics[i + 1], f"{topics[i]}-relay"))
             for i in range(HOPS)]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def create_topics(settings: Settings, topics: list[str]) -> None:
    """The baselines' own topics, each with a leader before anything is sent."""
    admin = kafka_admin(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, settings.topic_partitions, 1) for t in topics])
    finally:
        await admin.close()
    await wait_for_leaders(settings, topics)


async def run_relay(
    settings: Settings, n: int, timeout_s: float, broker_pid: dict[str, int],
    steady_rate: float, steady_s: float,
) -> Result:
    topics = [settings.topic(f"relay{i}") for i in range(HOPS + 1)]
    await create_topics(settings, topics)
    codec = load_schema_set()[TOPICS["requests"].value_schema]
    producer = kafka_producer(settings, acks="all", enable_idempotence=True, linger_ms=2)
    await producer.start()
    try:
        async with relay(settings, topics), Receiver(
            settings, topics[-1], settings.topic_partitions,
        ) as receiver:

            async def send(rec: PipelineRecord) -> None:
                # Byte for byte what RecordProducer sends to `requests`.
                await producer.send_and_wait(topics[0], codec.encode(rec.to_avro()),
                                             key=rec.request_id.encode(), headers=[codec.header])

            pids = {"relay (this process)": os.getpid(), **broker_pid}
            result = await measure("relay", receiver, send, n, timeout_s, pids, settings,
                                   settings.topic("relay"))
            result.steady_ms.extend(await steady_latencies(receiver, send, steady_rate,
                                                           steady_s, timeout_s))
            result.idle_ms.extend(await one_at_a_time(receiver, send, IDLE, timeout_s))
            return result
    finally:
        await producer.stop()


async def run_floor(
    settings: Settings, n: int, timeout_s: float, logs: Path, broker_pid: dict[str, int],
    steady_rate: float, steady_s: float,
) -> Result:
    """Seven pass-through Faust agents (``bench/faust_floor.py``) between eight topics."""
    topics = floor_topics(settings)
    await create_topics(settings, topics)
    codec = load_schema_set()[TOPICS["requests"].value_schema]
    env = {**os.environ, **settings.to_env(),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    producer = kafka_producer(settings, acks="all", enable_idempotence=True, linger_ms=0)
    await producer.start()
    try:
        with child(["-m", "bench.faust_floor"], env, logs / "faust-floor.log") as floor:
            async with Receiver(settings, topics[-1], settings.topic_partitions) as receiver:

                async def send(rec: PipelineRecord) -> None:
                    await producer.send_and_wait(topics[0], codec.encode(rec.to_avro()),
                                                 key=rec.request_id.encode(),
                                                 headers=[codec.header])

                pids = {"faust floor": floor.pid, **broker_pid}
                result = await measure("Faust floor", receiver, send, n, timeout_s, pids,
                                       settings, settings.topic("floor"))
                result.steady_ms.extend(await steady_latencies(receiver, send, steady_rate,
                                                               steady_s, timeout_s))
                result.idle_ms.extend(await one_at_a_time(receiver, send, IDLE, timeout_s))
                return result
    finally:
        await producer.stop()


# -- the run ---------------------------------------------------------------------------------


def row(label: str, rate: str, p50: str, p99: str) -> str:
    return f"  {label:<30} {rate:>10} {p50:>10} {p99:>10}"


def idle_p50(r: Result) -> str:
    return f"{statistics.median(r.idle_ms):.1f}" if r.idle_ms else "-"


def report(pipe: Result, floor: Result, base: Result, settings: Settings,
           external: bool) -> None:
    where = "external" if external else "launcher's own"
    print(f"\nNova pipeline benchmark: {pipe.n} requests, {settings.topic_partitions} partitions, "
          f"{where} broker {settings.bootstrap_servers}, {os.cpu_count()} CPUs")
    print(row("", "req/s", "p50 ms", "p99 ms") + f" {'idle p50':>10} {'CPU ms/req':>11}")
    for r, label in ((pipe, "pipeline (7 Faust lanes)"),
                     (floor, "Faust floor (7 pass-through)"),
                     (base, "raw aiokafka relay (7 hops)")):
        cpu = 1000 * sum(v for k, v in r.cpu_s.items() if k != "fake LLM") / r.n
        print(row(label, f"{r.rate:,.0f}", f"{r.quantile(0.5):,.0f}", f"{r.quantile(0.99):,.0f}")
              + f" {idle_p50(r):>10} {cpu:>11.1f}")
    for r, label in ((base, "relay"), (floor, "floor")):
        print(row(f"pipeline / {label}", f"{pipe.rate / r.rate:.2f}x",
                  f"{pipe.quantile(0.5) / max(r.quantile(0.5), 1):.1f}x",
                  f"{pipe.quantile(0.99) / max(r.quantile(0.99), 1):.1f}x"))
    print("  (idle p50: one request at a time, the pipeline's including its provider call; CPU:"
          " the processes' own and the broker's, the fake LLM's excluded)")
    print(f"  ({pipe.n} requests in {pipe.seconds:.1f}s through the lanes, "
          f"{base.seconds:.1f}s through the relay; latency = arrival - submitted_at)")
    for r in (pipe, floor, base):
        used = ", ".join(f"{k} {v:.1f}" for k, v in r.cpu_s.items())
        print(f"  CPU seconds during the {r.name} burst: {used}")
    if len(pipe.steady_ms) > 1:
        q = statistics.quantiles(pipe.steady_ms, n=100, method="inclusive")
        print(f"  steady load at half the burst rate ({len(pipe.steady_ms)} requests): "
              f"end-to-end p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms (target: p99 <= 100 ms)")
        for r in (floor, base):
            if len(r.steady_ms) > 1:
                q = statistics.quantiles(r.steady_ms, n=100, method="inclusive")
                print(f"    the {r.name} at the same rate: p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms")
    per_request = {k: 1000 * v / pipe.n for k, v in pipe.cpu_s.items()}
    nova_cpu = sum(v for k, v in per_request.items() if k != "fake LLM")
    print("  CPU ms per request: " + ", ".join(f"{k} {v:.1f}" for k, v in per_request.items())
          + f"; Nova (worker + broker) {nova_cpu:.1f} (target: <= 8 in all, with the gateway's)")
    total = sum(pipe.records.values())
    prefix = settings.topic_prefix
    by_topic = ", ".join(f"{t.removeprefix(prefix + '.').removeprefix(prefix + '-')} "
                         f"{c / pipe.n:.2f}"
                         for t, c in sorted(pipe.records.items(), key=lambda kv: -kv[1]))
    print(f"  Kafka records per request: {total / pipe.n:.2f} (target: <= 10): {by_topic}")
    print("\nWhere a pipeline request spends its time, ms from its lane timings "
          "(queue: since the previous lane finished, or since submission for A):")
    print("  lane              " + "".join(f"{lane:>8}" for lane in "ABCDEFG"))
    burst = list(zip(pipe.submitted, pipe.lanes, strict=True))
    for label, split, quantiles in (("burst", burst, (0.5,)),
                                    ("steady", pipe.steady_split, (0.5, 0.99))):
        waits: dict[str, list[float]] = {}
        work: dict[str, list[float]] = {}
        for submitted, timings in split:
            prev = float(submitted)
            for t in timings:
                waits.setdefault(t.lane, []).append(t.started_at - prev)
                work.setdefault(t.lane, []).append(t.duration_ms)
                prev = t.started_at + t.duration_ms
        for level in quantiles:
            for part, values in (("queue", waits), ("work", work)):
                print(f"  {label} {part} p{level * 100:.0f}".ljust(20) + "".join(
                    f"{nearest_rank(values.get(x, [0.0]), level):>8.1f}" for x in "ABCDEFG"))


async def run(args: argparse.Namespace, tmp: Path) -> None:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    tag = uuid.uuid4().hex[:8]
    settings = load_settings(
        environment="test", data_dir=tmp / "data", topic_prefix=f"bench{tag}",
        topic_partitions=args.partitions, run_sink=False, log_level="error",
        kafka_client="admin",  # the bench is the operator: it provisions and feeds the topics
        **({} if external else {"kafka_port": free_port(), "kafka_controller_port": free_port()}),
    )
    broker: Broker | None = None
    if not external:
        print(f"starting a Kafka broker on {settings.bootstrap_servers} ...", flush=True)
        broker = Broker(settings, BrokerLayout.from_settings(settings))
        await asyncio.to_thread(broker.start, attached=True)
    try:
        print(f"pipeline: {args.requests} requests through the seven lanes ...", flush=True)
        broker_pid = ({"broker": broker.process.pid}
                      if broker is not None and broker.process is not None else {})
        pipe = await run_pipeline(settings, args.requests, args.timeout, tmp, broker_pid,
                                  args.steady_seconds)
        print(f"Faust floor: {args.requests} records through {HOPS} pass-through agents ...",
              flush=True)
        rate = pipe.rate / 2  # the pipeline's steady rate, for the floor and the relay too
        floor = await run_floor(settings, args.requests, args.timeout, tmp, broker_pid, rate,
                                args.steady_seconds)
        print(f"relay: {args.requests} records through {HOPS} raw hops ...", flush=True)
        base = await run_relay(settings, args.requests, args.timeout, broker_pid, rate,
                               args.steady_seconds)
    finally:
        if broker is not None:
            await asyncio.to_thread(broker.stop)
    report(pipe, floor, base, settings, bool(external))


def main(argv: list[str] | None = None) -> None:
    # Fresh topics answer "not leader" for a moment; aiokafka logs each retry at ERROR. A real
    # failure still ends the run (a request missing at the deadline), so keep only CRITICAL.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per run (1000)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic (4)")
    parser.add_argument("--timeout", type=float, default=240, help="seconds allowed per run")
    parser.add_argument("--steady-seconds", type=float, default=10.0,
                        help="seconds of steady load at half the burst rate (10)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nova-bench-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
