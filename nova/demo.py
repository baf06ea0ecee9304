"""``nova demo``: start the stack, submit a scripted batch over HTTP, report from ClickHouse.

Everything the demo prints is read back from what the system recorded (the gateway's status
API and ClickHouse), never from what the script believes it sent.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from analytics.client import ClickHouse
from analytics.queries import lane_row_count, lane_summary, status_counts
from nova.auth.tokens import issue_token
from nova.settings import Settings
from nova.stack import running_stack

PROMPTS = [
    ("Summarise this thread about the Q3 roadmap", None),
    ("Write a Python function that parses ISO dates", None),
    ("Translate 'governance before execution' into French", None),
    ("Search our notes for the supplier contract", None),
    ("Analyse last week's support tickets and compare with the week before", None),
    ("Write a short poem about Kafka topics", None),
]


def token_for(settings: Settings, identity: str, *roles: str) -> str:
    return issue_token(settings, sub=f"user-{identity}", identity=identity,
                       roles=roles or ("member",), now=datetime.now(UTC))


async def wait_for(predicate: Any, timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(interval_s)
    return False


async def run_demo(settings: Settings, n_requests: int = 30, console: Console | None = None) -> int:
    out = console or Console()
    async with running_stack(settings, install_signal_handlers=False) as stack:
        services = stack.app.state.services
        ch: ClickHouse = services.clickhouse
        alice = token_for(settings, "identity-alice", "member", "approver")
        async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=30) as http:
            headers = {"Authorization": f"Bearer {alice}"}
            ids: list[str] = []
            t0 = time.perf_counter()
            for i in range(n_requests):
                prompt, action = PROMPTS[i % len(PROMPTS)]
                body: dict[str, Any] = {"prompt": prompt}
                if action:
                    body["action"] = action
                r = await http.post("/api/v2/nova/requests", json=body, headers=headers)
                r.raise_for_status()
                ids.append(r.json()["request_id"])
            out.print(f"submitted {len(ids)} requests through {settings.gateway_url}")

            async def all_done() -> bool:
                for rid in ids:
                    r = await http.get(f"/api/v2/nova/requests/{rid}", headers=headers)
                    if r.status_code != 200 or r.json()["status"] not in ("completed", "denied", "failed"):
                        return False
                return True

            if not await wait_for(all_done, 120):
                out.print("[red]not every request finished within 120 s[/red]")
                return 1
            elapsed = time.perf_counter() - t0

        async def landed() -> bool:
            rows = await asyncio.to_thread(lane_row_count, ch, ids)
            done = sum((await asyncio.to_thread(status_counts, ch, ids)).values())
            return rows >= 7 * len(ids) and done >= len(ids)

        if not await wait_for(landed, 60, 0.5):
            out.print("[red]ClickHouse did not receive every lane event within 60 s[/red]")
            return 1
        summary = await asyncio.to_thread(lane_summary, ch, ids)
        statuses = await asyncio.to_thread(status_counts, ch, ids)
        total_rows = await asyncio.to_thread(lane_row_count, ch, ids)

    table = Table(title=f"Per-lane latency, {len(ids)} requests (read back from ClickHouse)")
    for col in ("lane", "rows", "p50 ms", "p99 ms"):
        table.add_column(col, justify="right" if col != "lane" else "left")
    for row in summary:
        table.add_row(str(row["lane"]), str(row["rows"]), f"{row['p50_ms']:.2f}",
                      f"{row['p99_ms']:.2f}")
    out.print(table)
    out.print(f"lane rows: {total_rows} (expected {7 * len(ids)}); request outcomes: {statuses}")
    out.print(f"all {len(ids)} requests finished in {elapsed:.1f} s")
    return 0 if total_rows == 7 * len(ids) else 1
