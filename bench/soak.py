"""Memory soak: does any process of ``nova up`` grow while it serves a steady half load?

Run with ``make bench-soak`` (or ``python bench/soak.py --minutes 5``). It starts ``nova up``
as ``bench/sync.py`` does (fake provider in its own process, limits raised), measures the
sync path's saturated rate at 10 connections for a few seconds, then sends requests at half
that rate, open loop (one every 1/rate seconds whatever the answers do, at most 50 in flight),
for the run's length. Every two seconds it reads the RSS of the gateway (``nova up`` itself),
the worker and the broker from ``/proc``.

The baseline is the run itself: each process's mean RSS over the **first third** of the run,
next to its mean over the **last third**, and the mean of each sixth, for the shape. A process
that keeps something per request (a tracker entry never dropped, a cache without a bound)
grows between the two; one whose memory is bounded does not. The first third starts after a
warm-up at the same rate, so imports, JIT (the broker's) and what fills once are not counted as
growth: the warm-up (150 s) outlasts the gateway's longest time window, the 120 s for which
its tracker and live feed keep a finished request (a 30 s warm-up put that window's filling
into the first third: +7% that levelled off by the fourth sixth). Target: no
growth, read as less than 5% (Python's allocator and the JVM's heap sizing move by a few
percent on their own).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

# Run as a file, this directory is first on sys.path; the repository root is what names
# ``bench.sync`` (its stack and client helpers, shared rather than copied).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sync import Run, load, nova_up, one_nova, processes, rss_mb, sequential

SAMPLE_S = 2.0
GROWTH_TARGET = 0.05


async def one_request(http: httpx.AsyncClient, headers: dict[str, str], run: Run, i: int) -> None:
    """One request; a transport error (the stack went away) counts as a failure."""
    try:
        await one_nova(http, headers, run, i)
    except httpx.HTTPError:
        run.failures += 1


async def paced(gateway: str, tokens: list[str], rate: float, seconds: float,
                samples: dict[str, list[tuple[float, float]]], pids: dict[str, int]) -> Run:
    """Requests at ``rate`` per second for ``seconds``; RSS sampled into ``samples``."""
    run = Run()
    in_flight: set[asyncio.Task[None]] = set()
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=gateway, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        next_sample = started
        i = 0
        while (now := time.perf_counter()) - started < seconds:
            if now >= next_sample:
                for name, pid in pids.items():
                    samples.setdefault(name, []).append((now - started, rss_mb(pid)))
                next_sample += SAMPLE_S
            if len(in_flight) < 50:
                headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
                task = asyncio.create_task(one_request(http, headers, run, i))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            else:
                run.failures += 1  # the stack fell behind: counted, not queued without bound
            i += 1
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        if in_flight:
            await asyncio.gather(*in_flight)
        run.elapsed_s = time.perf_counter() - started
    return run


def thirds(points: list[tuple[float, float]], seconds: float) -> tuple[float, float]:
    first = [mb for t, mb in points if t < seconds / 3]
    last = [mb for t, mb in points if t >= 2 * seconds / 3]
    return statistics.mean(first), statistics.mean(last)


def sixths(points: list[tuple[float, float]], seconds: float) -> list[float]:
    """Mean RSS of each sixth of the run: the shape (a window filling flattens, a leak not)."""
    return [statistics.mean([mb for t, mb in points if k * seconds / 6 <= t < (k + 1) * seconds / 6]
                            or [0.0]) for k in range(6)]


async def main(args: argparse.Namespace) -> None:
    seconds = args.minutes * 60
    async with nova_up("nova-bench-soak-") as stack:
        pids = processes(stack.up.pid)
        await sequential("nova", stack.gateway, 20, stack.tokens[0])  # consumers settled
        saturated = await load("nova", stack.gateway, 10, args.probe_seconds, stack.tokens)
        rate = saturated.rate / 2
        print(f"memory soak: nova up, saturated at {saturated.rate:.1f} req/s (10 connections, "
              f"{args.probe_seconds:.0f} s); {rate:.1f} req/s for {args.minutes:g} min after a "
              f"{args.warmup_seconds:.0f} s warm-up", flush=True)
        await paced(stack.gateway, stack.tokens, rate, args.warmup_seconds, {}, pids)
        samples: dict[str, list[tuple[float, float]]] = {}
        run = await paced(stack.gateway, stack.tokens, rate, seconds, samples, pids)
        print(f"  {len(run.latencies_ms)} completed ({run.rate:.1f} req/s), p50 "
              f"{run.q(0.5):.1f} ms, p99 {run.q(0.99):.1f} ms, non-2xx or shed {run.failures}")
        print("  RSS, mean of the first third (baseline) -> mean of the last third:")
        worst = 0.0
        for name, points in samples.items():
            first, last = thirds(points, seconds)
            growth = (last - first) / first
            worst = max(worst, growth)
            print(f"    {name:<8} {first:7.1f} MB -> {last:7.1f} MB  ({growth:+.1%});"
                  f"  by sixth: {' '.join(f'{mb:.0f}' for mb in sixths(points, seconds))}")
        verdict = "met" if worst < GROWTH_TARGET else "NOT met"
        print(f"  largest growth {worst:+.1%} (target: no growth, < {GROWTH_TARGET:.0%}): "
              f"{verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--probe-seconds", type=float, default=10.0)
    parser.add_argument("--warmup-seconds", type=float, default=150.0)
    asyncio.run(main(parser.parse_args()))
