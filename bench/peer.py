"""Peer benchmark: Nova's synchronous path next to a LiteLLM proxy, on one fake upstream.

Run with ``make bench-peer`` (or ``python bench/peer.py --seconds 15``). Both systems are what
their users run, on this machine, in front of the same OpenAI-compatible upstream (Nova's fake
provider server, in its own process, answering at once):

- **Nova**: ``python -m nova up`` (broker, worker, gateway); a client posts
  ``POST /api/v2/nova/requests`` with ``wait_ms`` and ``"provider": "openai"``, so each request
  passes the seven lanes and makes one call to the upstream's ``/openai/v1/chat/completions``.
- **LiteLLM**: ``litellm --config … --num_workers 2`` (the proxy, two worker processes, no
  database), in its own virtualenv under Nova's cache directory, installed on first use
  (``LITELLM_VERSION``); a client posts ``/v1/chat/completions`` to it, routed to the same
  upstream path.

Runs are interleaved (Nova 10, LiteLLM 10, Nova 50, LiteLLM 50 connections, ``--rounds`` times)
and each line prints req/s, p50/p99 latency and non-2xx answers; the upstream's own count of
calls (``GET /_calls``) is printed next to each system's completed requests, which must be
equal (one provider call per request, none lost, none doubled). At the end: each process's RSS.

Targets (issue 9): Nova >= 1.5x LiteLLM's req/s at 50 connections, Nova's p50 at 10
connections no higher than LiteLLM's, 0 non-2xx, upstream calls == completed requests.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a file, this directory is first on sys.path; the repository root is what names
# ``bench.sync`` (the sync bench's process helpers, shared rather than copied).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from bench.sync import cpu_s, fast_providers, processes, rss_mb, spawned, wait_ready
from nova.auth.tokens import issue_token
from nova.kafka.launcher import free_port
from nova.settings import load_settings

LITELLM_VERSION = "1.106.12"  # newer [proxy] extras need litellm-proxy packages not on our index
PROMPT = "Summarise the notes of our Monday meeting in three bullet points"
MODEL = "gpt-5-mini"  # a model of Nova's openai provider; LiteLLM is told the same name


@dataclass
class Run:
    system: str
    connections: int
    latencies_ms: list[float] = field(default_factory=list)
    non_2xx: int = 0
    elapsed_s: float = 0.0
    upstream_calls: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0

    def q(self, quantile: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[
            int(quantile * 100) - 1]


def litellm_venv(cache_dir: Path) -> Path:
    """The LiteLLM proxy's own virtualenv (installed once, then reused): its ``litellm``."""
    venv = cache_dir / f"litellm-{LITELLM_VERSION}"
    exe = venv / "bin" / "litellm"
    if exe.exists():
        return exe
    print(f"installing LiteLLM {LITELLM_VERSION} into {venv} (first use only) ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q",
                    f"litellm[proxy]=={LITELLM_VERSION}"], check=True)
    return exe


def litellm_config(path: Path, upstream: str) -> Path:
    path.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {upstream}/openai/v1\n"
        "      api_key: fake\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    return path


async def upstream_calls(upstream: str) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        summary = (await http.get(f"{upstream}/_calls")).json()
    return int(sum(summary.get("by_provider", {}).values()))


async def one(http: httpx.AsyncClient, system: str, headers: dict[str, str], run: Run,
              i: int) -> None:
    started = time.perf_counter()
    try:
        if system == "nova":
            r = await http.post("/api/v2/nova/requests", headers=headers, json={
                "prompt": f"{PROMPT} #{i}", "provider": "openai", "model": MODEL,
                "wait_ms": 30_000})
            ok = r.status_code == 200 and r.json().get("status") == "completed"
        else:
            r = await http.post("/v1/chat/completions", headers=headers, json={
                "model": MODEL, "messages": [{"role": "user", "content": f"{PROMPT} #{i}"}]})
            ok = r.status_code == 200
    except httpx.HTTPError:
        ok = False
    if not ok:
        run.non_2xx += 1
        return
    run.latencies_ms.append((time.perf_counter() - started) * 1000)


async def load(system: str, base_url: str, connections: int, seconds: float,
               tokens: list[str], upstream: str) -> Run:
    run = Run(system, connections)
    calls0 = await upstream_calls(upstream)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        deadline = time.perf_counter() + seconds
        counter = iter(range(10**9))

        async def client(c: int) -> None:
            headers = {"Authorization": f"Bearer {tokens[c % len(tokens)]}"}
            while time.perf_counter() < deadline:
                await one(http, system, headers, run, next(counter))

        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(connections)))
        run.elapsed_s = time.perf_counter() - started
    await asyncio.sleep(1.0)  # a call answered after its client gave up still counts upstream
    run.upstream_calls = await upstream_calls(upstream) - calls0
    return run


def line(run: Run) -> str:
    return (f"  {run.system:<8} {run.connections:>3} conn  {run.rate:7.1f} req/s  "
            f"p50 {run.q(0.5):7.1f} ms  p99 {run.q(0.99):8.1f} ms  non-2xx {run.non_2xx:<4} "
            f"completed {len(run.latencies_ms):<6} upstream calls {run.upstream_calls}")


def summary(runs: list[Run]) -> None:
    def best(system: str, connections: int) -> Run:
        mine = [r for r in runs if r.system == system and r.connections == connections]
        return sorted(mine, key=lambda r: r.rate)[len(mine) // 2]  # the median round

    print("\nmedian round, Nova next to LiteLLM:")
    for connections in (10, 50):
        nova, peer = best("nova", connections), best("litellm", connections)
        ratio = nova.rate / peer.rate if peer.rate else float("nan")
        print(f"  {connections} connections: Nova {nova.rate:.1f} req/s p50 {nova.q(0.5):.1f} ms"
              f" | LiteLLM {peer.rate:.1f} req/s p50 {peer.q(0.5):.1f} ms | req/s ratio "
              f"{ratio:.2f}x (target at 50: >= 1.5x; p50 at 10: Nova <= LiteLLM)")
    non_2xx = sum(r.non_2xx for r in runs if r.system == "nova")
    mismatched = [r for r in runs if r.upstream_calls != len(r.latencies_ms) + r.non_2xx
                  and r.system == "nova"]
    print(f"  Nova non-2xx {non_2xx}; rounds where upstream calls != requests answered: "
          f"{len(mismatched)}")


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="nova-bench-peer-"))
    settings = load_settings(data_dir=tmp / "data")
    exe = litellm_venv(settings.cache_dir)
    fake_port, gateway_port, litellm_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "NOVA_DATA_DIR": str(tmp / "data"),
        "NOVA_KAFKA_PORT": str(free_port()),
        "NOVA_KAFKA_CONTROLLER_PORT": str(free_port()),
        "NOVA_GATEWAY_PORT": str(gateway_port),
        "NOVA_LLM_FAKE_URL": f"http://127.0.0.1:{fake_port}",
        "NOVA_PROVIDERS_FILE": str(fast_providers(tmp / "providers.yaml")),
        "NOVA_GATEWAY_RPM_PER_IDENTITY": "1000000",
        "NOVA_LOG_LEVEL": "warning",
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    settings = load_settings(data_dir=tmp / "data", gateway_port=gateway_port)
    upstream = f"http://127.0.0.1:{fake_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    peer = f"http://127.0.0.1:{litellm_port}"
    peer_env = {k: v for k, v in os.environ.items() if not k.startswith(("NOVA_", "PYTHON"))}
    master_key = f"sk-bench-{secrets.token_hex(16)}"  # clients authenticate to both systems
    peer_env.update({"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
                     "LITELLM_MASTER_KEY": master_key, "NO_DOCS": "True",
                     "DISABLE_ADMIN_UI": "True"})
    fake_cmd = [sys.executable, "-m", "nova.llm.fake_server", "--port", str(fake_port)]
    peer_cmd = [str(exe), "--config", str(litellm_config(tmp / "litellm.yaml", upstream)),
                "--host", "127.0.0.1", "--port", str(litellm_port), "--num_workers", "2"]
    with spawned(fake_cmd, env, tmp / "fake.log") as fake, \
         spawned(peer_cmd, peer_env, tmp / "litellm.log") as litellm, \
         spawned([sys.executable, "-m", "nova", "up"], env, tmp / "up.log") as up:
        await wait_ready(f"{gateway}/ready", up, tmp / "up.log", 300)
        await wait_ready(f"{peer}/health/liveliness", litellm, tmp / "litellm.log", 300)
        now = datetime.now(UTC)
        tokens = [issue_token(settings, sub=f"user-peer-{c}", identity=f"identity-peer-{c}",
                              roles=["member"], now=now) for c in range(50)]
        print(f"peer bench: Nova (nova up) and LiteLLM {LITELLM_VERSION} (2 workers) on one fake "
              f"upstream, {os.cpu_count()} cores, {args.seconds:.0f} s per run, "
              f"{args.rounds} round(s)", flush=True)
        keys = {"nova": tokens, "litellm": [master_key]}
        for system, url in (("nova", gateway), ("litellm", peer)):  # warm-up
            await load(system, url, 4, 3, keys[system], upstream)
        runs: list[Run] = []
        for _ in range(args.rounds):
            for connections in (10, 50):
                for system, url in (("nova", gateway), ("litellm", peer)):
                    run = await load(system, url, connections, args.seconds, keys[system],
                                     upstream)
                    runs.append(run)
                    print(line(run), flush=True)
        summary(runs)
        pids = {**processes(up.pid), "fake upstream": fake.pid, "litellm": litellm.pid}
        rss = ", ".join(f"{name} {rss_mb(pid):.0f} MB" for name, pid in pids.items())
        cpu = ", ".join(f"{name} {cpu_s(pid):.0f} s" for name, pid in pids.items())
        print(f"RSS after the runs: {rss}\nCPU since start: {cpu}\nlogs: {tmp}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per run (15)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (1)")
    asyncio.run(main(parser.parse_args()))
