"""Sync-path benchmark: ``POST /api/v2/nova/requests`` with ``wait_ms`` through a real ``nova up``.

Run with ``make bench`` (or ``python bench/sync.py --sequential 200 --seconds 20``). It starts
what a user runs: ``python -m nova up`` (broker, worker, gateway) on free ports in a temporary
directory, and Nova's fake provider server as a process of its own (so its CPU is not Nova's).
Each figure is printed next to a baseline measured in the same run on the same machine:

- **idle latency**: requests one at a time, each answered with the seven lanes and one provider
  call; the baseline is the same HTTP client calling the fake provider directly, so
  ``overhead = Nova - direct`` is what Nova adds to a provider call. The lanes' own work (the sum
  of the lane durations the answer reports) is split from the rest (Kafka hand-offs, the
  gateway, HTTP).
- **throughput** at 10 and 50 connections for a fixed time: Nova's completed requests per second
  and p50/p99 latency, next to the direct provider's at the same concurrency (the ceiling any
  proxy in front of it has), with non-2xx answers counted.
- **CPU per request** of the ``nova up`` process (gateway), the worker and the broker over the
  throughput runs (from ``/proc``), and **RSS** of each at the end.

Provider rate limits are raised (a providers file with rpm/tpm x1000, ``NOVA_PROVIDERS_FILE``)
and so is the per-identity limit, so the figures measure Nova's own cost, not its limits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import httpx
import yaml

from nova.auth.tokens import issue_token
from nova.kafka.launcher import free_port
from nova.kafka.tail import open_reader
from nova.records import PipelineRecord
from nova.settings import Settings, load_settings
from schemas import headers as hdr

REPO = Path(__file__).resolve().parents[1]
PROMPT = "Summarise the notes of our Monday meeting in three bullet points"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LANES = "ABCDEFG"
HAND_OFFS = ("requests", "intents", "contexts", "encoded", "governed", "executable", "executed",
             "completed")  # lane A reads the first, lane G writes the last


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    elapsed_s: float = 0.0
    lane_ms: list[float] = field(default_factory=list)
    per_lane: dict[str, list[float]] = field(default_factory=dict)  # lane -> its durations
    sent_answered: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> epoch ms

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0

    def q(self, quantile: float) -> float:
        return nearest_rank(self.latencies_ms, quantile) if self.latencies_ms else float("nan")


def fast_providers(path: Path) -> Path:
    """The packaged providers file with every limit x1000 (limits are not what we measure)."""
    data = yaml.safe_load(resources.files("nova.llm").joinpath("providers.yaml").read_text())
    for spec in data["providers"]:
        spec["rpm"] *= 1000
        spec["tpm"] *= 1000
    path.write_text(yaml.safe_dump(data))
    return path


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found.extend(int(c) for c in text)
    return found


def processes(up_pid: int) -> dict[str, int]:
    """The gateway (``nova up`` itself), its worker and its broker, by their command lines."""
    named = {"gateway": up_pid}
    for child in children(up_pid):
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "java" in cmd:
            named["broker"] = child
        elif " worker" in cmd:
            named["worker"] = child
    return named


@contextlib.contextmanager
def spawned(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    out = log.open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        out.close()


async def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                sys.exit(f"{url}: nova up exited with {proc.returncode}; its log: {log}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.5)
    sys.exit(f"{url} not ready after {timeout_s:.0f} s; log: {log}")


async def one_nova(http: httpx.AsyncClient, headers: dict[str, str], run: Run, i: int) -> None:
    sent_ms = time.time() * 1000
    started = time.perf_counter()
    r = await http.post("/api/v2/nova/requests", headers=headers,
                        json={"prompt": f"{PROMPT} #{i}", "wait_ms": 30_000})
    took = (time.perf_counter() - started) * 1000
    if r.status_code != 200 or r.json().get("status") != "completed":
        run.failures += 1
        return
    run.latencies_ms.append(took)
    run.sent_answered[r.json()["request_id"]] = (sent_ms, sent_ms + took)
    lanes = r.json()["lanes"]
    run.lane_ms.append(sum(lane["duration_ms"] for lane in lanes))
    for lane in lanes:
        run.per_lane.setdefault(lane["lane"], []).append(lane["duration_ms"])


async def one_direct(http: httpx.AsyncClient, run: Run, i: int) -> None:
    started = time.perf_counter()
    r = await http.post("/anthropic/v1/messages", headers={"anthropic-version": "2023-06-01",
                                                             "x-api-key": "fake"},
                        json={"model": "claude-sonnet-4-6", "max_tokens": 1024,
                              "messages": [{"role": "user", "content": f"{PROMPT} #{i}"}]})
    took = (time.perf_counter() - started) * 1000
    if r.status_code != 200:
        run.failures += 1
        return
    run.latencies_ms.append(took)


async def sequential(target: str, base_url: str, n: int, token: str) -> Run:
    run = Run()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        started = time.perf_counter()
        for i in range(n):
            if target == "nova":
                await one_nova(http, headers, run, i)
            else:
                await one_direct(http, run, i)
        run.elapsed_s = time.perf_counter() - started
    return run


async def load(target: str, base_url: str, connections: int, seconds: float,
               tokens: list[str]) -> Run:
    run = Run()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        deadline = time.perf_counter() + seconds
        counter = iter(range(10**9))

        async def client(c: int) -> None:
            headers = {"Authorization": f"Bearer {tokens[c % len(tokens)]}"}
            while time.perf_counter() < deadline:
                i = next(counter)
                if target == "nova":
                    await one_nova(http, headers, run, i)
                else:
                    await one_direct(http, run, i)

        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(connections)))
        run.elapsed_s = time.perf_counter() - started
    return run


async def hand_offs(settings: Settings) -> dict[str, dict[str, int]]:
    """Each hand-off topic's records: request id -> the record's Kafka timestamp (epoch ms, set
    by the producer when it sent it), plus the lanes' timings from ``completed``."""
    stamps: dict[str, dict[str, int]] = {}
    for topic in HAND_OFFS:
        found = stamps.setdefault(topic, {})
        async with await open_reader(settings, [topic]) as reader:
            consumer, parts = reader.consumer, reader.parts
            ends = await consumer.end_offsets(parts)
            while any([await consumer.position(tp) < ends[tp] for tp in parts]):
                for messages in (await consumer.getmany(timeout_ms=1000)).values():
                    for m in messages:
                        rid = hdr.header(m.headers, hdr.REQUEST)
                        if rid is not None:
                            found.setdefault(rid, m.timestamp)
    return stamps


async def lane_timings(settings: Settings) -> dict[str, dict[str, tuple[int, float]]]:
    """request id -> lane -> (started at, epoch ms; duration ms), from ``completed``."""
    out: dict[str, dict[str, tuple[int, float]]] = {}
    async with await open_reader(settings, ["completed"]) as reader:
        consumer, parts = reader.consumer, reader.parts
        ends = await consumer.end_offsets(parts)
        while any([await consumer.position(tp) < ends[tp] for tp in parts]):
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                for m in messages:
                    rec = PipelineRecord.from_avro(reader.decode(m))
                    out[rec.request_id] = {t.lane: (t.started_at, t.duration_ms)
                                           for t in rec.lanes}
    return out


async def where_the_time_goes(settings: Settings, run: Run) -> str:
    """One idle request's time, hop by hop (p50 over ``run``'s requests, ms): the gateway before
    its hand-off, each Kafka hop (a lane's end to the next lane's start, through its topic),
    each lane's work, and the gateway from ``completed`` to the answer. Kafka timestamps are
    milliseconds, so each hop is within a millisecond; the sums are what to read."""
    stamps, lanes = await hand_offs(settings), await lane_timings(settings)
    splits: list[tuple[float, dict[str, float]]] = []  # (end to end ms, its split)
    for rid, (sent, answered) in run.sent_answered.items():
        timings = lanes.get(rid)
        if timings is None or any(rid not in stamps[t] for t in HAND_OFFS) or \
                any(code not in timings for code in LANES):
            continue
        split = {"gateway in": stamps["requests"][rid] - sent}
        previous_end = float(stamps["requests"][rid])
        for code, topic in zip(LANES, HAND_OFFS[1:], strict=True):
            started, duration = timings[code]
            split[f"->{code}"] = started - previous_end
            split[code] = duration
            previous_end = started + duration
            if topic == "completed":
                split["gateway out"] = answered - previous_end
        splits.append((answered - sent, split))
    if not splits:
        return "  (no request's hand-offs found)"
    p50 = {k: statistics.median(s[k] for _, s in splits) for k in splits[0][1]}
    hops = sum(p50[f"->{c}"] for c in LANES)
    work = sum(p50[c] for c in LANES)
    gateway = p50["gateway in"] + p50["gateway out"]
    return ("  where the time goes (p50 ms): " + " | ".join(f"{k} {v:.1f}" for k, v in p50.items())
            + f"\n  sums: Kafka hops {hops:.1f} ms (7, each a lane's send, the broker and the "
            f"next lane's fetch), lane work {work:.1f} ms, gateway {gateway:.1f} ms"
            + "\n  each part's p99 (ms): " + " | ".join(
                f"{k} {nearest_rank([s[k] for _, s in splits], 0.99):.0f}" for k in p50)
            + "".join(f"\n  slowest ({total:.0f} ms), where its time went: " + ", ".join(
                f"{k} {v:.0f}" for k, v in sorted(s.items(), key=lambda kv: -kv[1])[:4])
                for total, s in sorted(splits, key=lambda ts: -ts[0])[:3]))


def nearest_rank(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (at least one), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(label: str, run: Run, baseline: Run) -> str:
    ratio = run.rate / baseline.rate if baseline.rate else float("nan")
    return (f"  {label:<24} nova {run.rate:7.1f} req/s  p50 {run.q(0.5):7.1f} ms  "
            f"p99 {run.q(0.99):7.1f} ms  non-2xx {run.failures:<4} | direct {baseline.rate:7.1f} "
            f"req/s  p50 {baseline.q(0.5):6.1f} ms | ratio {ratio:.2f}x")


@dataclass(frozen=True)
class Stack:
    """A running ``nova up`` with its fake provider, as :func:`nova_up` starts it."""

    tmp: Path
    up: subprocess.Popen[bytes]
    gateway: str
    fake: str
    settings: Settings
    kafka_port: int
    controller_port: int
    tokens: list[str]

    def admin_settings(self) -> Settings:
        """Settings of the tools principal that reads topics (bench readers only)."""
        return load_settings(data_dir=self.tmp / "data", kafka_port=self.kafka_port,
                             kafka_controller_port=self.controller_port, kafka_client="admin")


@contextlib.asynccontextmanager
async def nova_up(prefix: str) -> AsyncIterator[Stack]:
    """``python -m nova up`` on free ports in a temporary directory, the fake provider in a
    process of its own, provider and identity limits raised; 50 member tokens."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    fake_port, gateway_port = free_port(), free_port()
    kafka_port, controller_port = free_port(), free_port()
    env = {
        **os.environ,
        "NOVA_DATA_DIR": str(tmp / "data"),
        "NOVA_KAFKA_PORT": str(kafka_port),
        "NOVA_KAFKA_CONTROLLER_PORT": str(controller_port),
        "NOVA_GATEWAY_PORT": str(gateway_port),
        "NOVA_LLM_FAKE_URL": f"http://127.0.0.1:{fake_port}",
        "NOVA_PROVIDERS_FILE": str(fast_providers(tmp / "providers.yaml")),
        "NOVA_GATEWAY_RPM_PER_IDENTITY": "1000000",
        "NOVA_LOG_LEVEL": "warning",
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    settings = load_settings(data_dir=tmp / "data", gateway_port=gateway_port)
    gateway = f"http://127.0.0.1:{gateway_port}"
    fake_cmd = [sys.executable, "-m", "nova.llm.fake_server", "--port", str(fake_port)]
    with spawned(fake_cmd, env, tmp / "fake.log"), \
         spawned([sys.executable, "-m", "nova", "up"], env, tmp / "up.log") as up:
        await wait_ready(f"{gateway}/ready", up, tmp / "up.log", 300)
        now = datetime.now(UTC)
        tokens = [issue_token(settings, sub=f"user-bench-{c}", identity=f"identity-bench-{c}",
                              roles=["member"], now=now) for c in range(50)]
        yield Stack(tmp, up, gateway, f"http://127.0.0.1:{fake_port}", settings, kafka_port,
                    controller_port, tokens)


async def main(args: argparse.Namespace) -> None:
    async with nova_up("nova-bench-sync-") as stack:
        gateway, fake, tokens, up = stack.gateway, stack.fake, stack.tokens, stack.up
        print(f"sync path: nova up on this machine ({os.cpu_count()} cores), fake provider in "
              "its own process", flush=True)
        await sequential("nova", gateway, 20, tokens[0])  # warm-up: consumers settled, JIT-free
        await sequential("direct", fake, 20, tokens[0])
        nova = await sequential("nova", gateway, args.sequential, tokens[0])
        direct = await sequential("direct", fake, args.sequential, tokens[0])
        overhead = [n - d for n, d in zip(sorted(nova.latencies_ms), sorted(direct.latencies_ms),
                                          strict=False)]
        lanes = statistics.median(nova.lane_ms) if nova.lane_ms else float("nan")
        print(f"idle latency, {args.sequential} sequential requests:")
        print(f"  nova p50 {nova.q(0.5):.1f} ms  p99 {nova.q(0.99):.1f} ms  (non-2xx "
              f"{nova.failures}) | direct provider p50 {direct.q(0.5):.1f} ms  p99 "
              f"{direct.q(0.99):.1f} ms")
        if overhead:
            p50, p99 = nearest_rank(overhead, 0.5), nearest_rank(overhead, 0.99)
            print(f"  overhead (nova - direct) p50 {p50:.1f} ms  p99 {p99:.1f} ms; of the p50: "
                  f"lane work {lanes:.1f} ms, Kafka hand-offs + gateway {p50 - lanes:.1f} ms "
                  "(target: p50 ≤ 25 ms, p99 ≤ 60 ms)")
            print("  lane work p50 by lane (ms; lane F's includes the provider call): " + ", ".join(
                      f"{k} {statistics.median(v):.1f}" for k, v in sorted(nova.per_lane.items())))
            print(await where_the_time_goes(stack.admin_settings(), nova), flush=True)
        pids = processes(up.pid)
        before = {name: cpu_s(pid) for name, pid in pids.items()}
        completed = 0
        print(f"throughput, {args.seconds:.0f} s per run:")
        for connections in (10, 50):
            n_run = await load("nova", gateway, connections, args.seconds, tokens)
            d_run = await load("direct", fake, connections, args.seconds, tokens)
            completed += len(n_run.latencies_ms)
            print(line(f"{connections} connections", n_run, d_run), flush=True)
        after = {name: cpu_s(pid) for name, pid in pids.items()}
        if completed:
            per = {name: (after[name] - before[name]) * 1000 / completed for name in pids}
            total = sum(per.values())
            split = ", ".join(f"{name} {ms:.1f}" for name, ms in per.items())
            print(f"CPU per completed request: {total:.1f} ms ({split}); target ≤ 8 ms")
        print("RSS: " + ", ".join(f"{name} {rss_mb(pid):.0f} MB" for name, pid in pids.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0)
    asyncio.run(main(parser.parse_args()))
