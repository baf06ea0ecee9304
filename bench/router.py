"""Router and lane F benchmarks, each next to a baseline measured in the same run.

1. Routing: decisions per second and the p99 of one decision over a mix of requests (task
   types, strategies, a locked role, explicit models, some providers degraded or down), against
   a plain dict lookup of the task table timed the same way. The ratio is what the router's
   chains, reasons and health checks cost over "just pick the task's provider".
2. Lane F: ``ExecutionService.execute`` on N records with C at a time against the fake provider
   server (routing, limits, budgets, breaker, events: everything but Kafka), against raw
   ``anthropic`` SDK calls to the same server with the same concurrency. The fake server runs
   in this process (a thread), so both sides share its cost; the ratio is Nova's overhead.

    .venv/bin/python bench/router.py [--decisions 100000] [--records 2000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import anthropic

from nova.ids import uuid7
from nova.llm.fake_server import FakeServerThread
from nova.llm.registry import fake_base_url, load_registry
from nova.llm.routing import DEFAULT_TASK_ROUTING, Router, RouteRequest, StateSnapshot
from nova.records import EncodedPrompt, Intent, Message, PipelineRecord
from nova.settings import load_settings
from streams.execution import ExecutionService

MAX_TOKENS = 64
PROMPT = "Write a short poem about the sea and the wind over the harbour at dawn"


def requests_mix() -> list[RouteRequest]:
    tasks = ("code", "creative", "analysis", "search", "translation", "general")
    mix = [RouteRequest(task_type=t, estimated_tokens=2_000) for t in tasks]
    mix += [RouteRequest(task_type="general", strategy=s, estimated_tokens=5_000)
            for s in ("cheapest", "fastest", "priority")]
    mix += [RouteRequest(task_type="code", role="nova"),
            RouteRequest(task_type="analysis", role="analyst"),
            RouteRequest(model="gpt-5-mini"),
            RouteRequest(provider="google", model="gemini-2.5-flash"),
            RouteRequest(task_type="general", estimated_tokens=300_000)]
    return mix


def timed(fn: Callable[[int], Any], n: int) -> tuple[float, list[int]]:
    """Run ``fn(i)`` n times; total seconds and each call's nanoseconds."""
    samples = [0] * n
    clock = time.perf_counter_ns
    started = time.perf_counter()
    for i in range(n):
        t0 = clock()
        fn(i)
        samples[i] = clock() - t0
    return time.perf_counter() - started, samples


def p99_us(samples: list[int]) -> float:
    return statistics.quantiles(samples, n=100)[98] / 1000


def bench_routing(n: int) -> None:
    registry = load_registry()
    router = Router(registry)
    state = StateSnapshot(statuses={"mistral": "degraded", "cohere": "down"},
                          latencies_ms={"openai": 800.0, "anthropic": 900.0, "google": 700.0})
    mix = requests_mix()
    m = len(mix)
    table = dict(DEFAULT_TASK_ROUTING)
    tasks = [r.task_type for r in mix]
    for i in range(2_000):  # warm up both
        router.decide(mix[i % m], state)
        _ = table[tasks[i % m]]
    base_s, base = timed(lambda i: table[tasks[i % m]], n)
    route_s, routed = timed(lambda i: router.decide(mix[i % m], state), n)
    print(f"routing ({m} request shapes, {n} decisions each side)")
    print(f"  baseline dict lookup : {n / base_s:>12,.0f} /s   p99 {p99_us(base):8.2f} us")
    print(f"  Router.decide        : {n / route_s:>12,.0f} /s   p99 {p99_us(routed):8.2f} us")
    print(f"  ratio                : {route_s / base_s:.1f}x the baseline's time per op; "
          f"p99 {p99_us(routed) / max(p99_us(base), 1e-9):.1f}x")


def record(i: int) -> PipelineRecord:
    return PipelineRecord(
        request_id=uuid7(), identity_id=f"bench-{i % 10}", user_id="bench", submitted_at=0,
        prompt=PROMPT, intent=Intent(task_type="creative", action="READ", confidence=0.9),
        encoded=EncodedPrompt(messages=(Message(role="user", content=PROMPT),),
                              token_estimate=len(PROMPT) // 4))


async def bounded(n: int, concurrency: int, one: Callable[[int], Any]) -> float:
    slots = asyncio.Semaphore(concurrency)

    async def run(i: int) -> None:
        async with slots:
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(n)))
    return time.perf_counter() - started


class _NoEntities:
    """No budgets and no rules: the benchmark measures the call path, not governance."""

    def budgets(self):
        return ()

    def rules_for(self, identity_id):
        return ()


NO_ENTITIES = _NoEntities()


async def bench_lane_f(n: int, concurrency: int) -> None:
    with FakeServerThread() as fake:
        settings = load_settings(environment="test", llm_fake_url=fake.url,
                                 llm_max_tokens=MAX_TOKENS)
        service = ExecutionService.build(settings, budgets=NO_ENTITIES, rules=NO_ENTITIES)
        spec = load_registry().provider("anthropic")
        sdk = anthropic.AsyncAnthropic(base_url=fake_base_url(fake.url, spec),
                                       api_key="bench", max_retries=0)
        statuses: dict[str, int] = {}

        async def nova(i: int) -> None:
            result = await service.execute(record(i))
            statuses[result.record.status] = statuses.get(result.record.status, 0) + 1

        async def raw(i: int) -> None:
            await sdk.messages.create(model=spec.default_model, max_tokens=MAX_TOKENS,
                                      messages=[{"role": "user", "content": PROMPT}],
                                      extra_headers={"x-nova-request-id": uuid7()})

        warm = min(200, n)
        await bounded(warm, concurrency, raw)
        await bounded(warm, concurrency, nova)
        statuses.clear()
        raw_s = await bounded(n, concurrency, raw)
        nova_s = await bounded(n, concurrency, nova)
        await sdk.close()
        await service.aclose()
    print(f"lane F against the fake server ({n} requests, {concurrency} at a time)")
    print(f"  baseline raw SDK     : {n / raw_s:>10,.0f} req/s   {raw_s * 1000 / n:6.2f} ms/req")
    print(f"  ExecutionService     : {n / nova_s:>10,.0f} req/s   {nova_s * 1000 / n:6.2f} ms/req"
          f"   outcomes {statuses}")
    print(f"  ratio                : {(n / nova_s) / (n / raw_s):.2f} of the raw throughput; "
          f"+{(nova_s - raw_s) * 1000 / n:.3f} ms per request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    bench_routing(args.decisions)
    asyncio.run(bench_lane_f(args.records, args.concurrency))


if __name__ == "__main__":
    main()
