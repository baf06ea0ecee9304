"""``nova demo``: start the stack, submit a scripted batch over HTTP, report from ClickHouse.

After the batch: the governance scenarios (held payments decided, a crossing refused) and an
agent whose ``send_message`` pauses its run at a checkpoint until an approver approves it.
Everything the demo prints is read back from what the system recorded (the gateway's status
and checkpoint APIs, Kafka and ClickHouse), never from what the script believes it sent.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from analytics.client import ClickHouse
from analytics.queries import lane_row_count, lane_summary, status_counts
from nova.audit.verify import verify_audit
from nova.auth.tokens import issue_token
from nova.cli.stack import running_stack
from nova.settings import Settings

PROMPTS = [
    ("Summarise this thread about the Q3 roadmap", None),
    ("Write a Python function that parses ISO dates", None),
    ("Translate 'governance before execution' into French", None),
    ("Search our notes for the supplier contract", None),
    ("Analyse last week's support tickets and compare with the week before", None),
    ("Write a short poem about Kafka topics", None),
]


# The batch follows its requests itself: each submission is answered 202 at once (RFC 7240),
# not with its outcome after the server's default wait.
RESPOND_ASYNC = {"Prefer": "respond-async"}
DEMO_IBAN = "FR76 3000 6000 0112 3456 7890 189"


async def iban_stayed_home(
    http: httpx.AsyncClient, fake_url: str | None, request_id: str, out: Console
) -> bool:
    """What the provider received for the IBAN payment: a placeholder, never the IBAN."""
    if fake_url is None:
        out.print("(real providers: what they received is not inspectable from here)")
        return True
    r = await http.get(f"{fake_url}/_bodies/{request_id}")
    r.raise_for_status()
    received = json.dumps(r.json())
    compact = DEMO_IBAN.replace(" ", "")
    if compact in received.replace(" ", "") or not received.strip("[]"):
        out.print(f"[red]the provider received the IBAN (or nothing) for {request_id}[/red]")
        return False
    out.print("            the provider received '[IBAN_1]', never the IBAN; the answer shows "
              "the IBAN again")
    return True


async def governance_scenarios(
    http: httpx.AsyncClient,
    alice: dict[str, str],
    bob: dict[str, str],
    out: Console,
    ids: list[str],
    fake_url: str | None = None,
    approver: dict[str, str] | None = None,
) -> bool:
    """Held (an IBAN payment, held not denied) → approved → completed with the provider never
    seeing the IBAN; held → rejected; another identity's thread → 403. Alice never decides
    her own requests (four eyes): ``approver`` is another person of her identity, and her own
    attempt to approve is shown refused first."""
    approver = approver or alice
    out.rule("Governance before execution")
    scenarios = [
        (f"Pay invoice INV-2041 of 1,200 EUR to ACME Corp, IBAN {DEMO_IBAN}", "approve"),
        ("Delete the file quarterly-draft.docx from the shared drive", "reject"),
    ]
    for prompt, decision in scenarios:
        r = await http.post(
            "/api/v2/nova/requests", headers=alice, json={"prompt": prompt, "wait_ms": 15000}
        )
        if r.status_code != 423:
            out.print(f"[red]expected 423 for {prompt!r}, got {r.status_code}: {r.text}[/red]")
            return False
        held = r.json()
        out.print(
            f"423 Locked  {prompt!r}\n            checkpoint {held['checkpoint_id']}: "
            f"{held['reason']}"
        )
        url = f"/api/v2/governance/checkpoints/{held['checkpoint_id']}/{decision}"
        if approver is not alice:
            own = await http.post(url, headers=alice, json={"reason": "my own request"})
            out.print(f"            the submitter's own {decision} → {own.status_code} "
                      f"({own.json().get('detail', '')})")
            if own.status_code != 403:
                return False
        d = await http.post(url, headers=approver, json={"reason": f"demo {decision}"})
        d.raise_for_status()
        rid = held["request_id"]
        ids.append(rid)

        async def finished(rid: str = rid) -> bool:
            g = await http.get(f"/api/v2/nova/requests/{rid}", headers=alice)
            return g.status_code == 200 and g.json()["status"] in ("completed", "rejected")

        if not await wait_for(finished, 60):
            out.print(f"[red]request {rid} did not finish after {decision}[/red]")
            return False
        final = (await http.get(f"/api/v2/nova/requests/{rid}", headers=alice)).json()
        detail = final.get("execution", {})
        done = {"approve": "approved", "reject": "rejected"}[decision]
        out.print(
            f"{done} → {final['status']}"
            + (
                f" by {detail.get('provider')}/{detail.get('model')}"
                if detail
                else " without any LLM call"
            )
        )
        if DEMO_IBAN in prompt and not await iban_stayed_home(http, fake_url, rid, out):
            return False
    thread = await http.post("/api/v2/threads", headers=alice, json={"title": "Board minutes"})
    thread.raise_for_status()
    tid = thread.json()["id"]
    await http.post(
        f"/api/v2/threads/{tid}/messages",
        headers=alice,
        json={"text": "Confidential: the board approved the acquisition."},
    )
    r = await http.post(
        "/api/v2/nova/requests",
        headers=bob,
        json={"prompt": "Summarise this thread", "thread_id": tid},
    )
    out.print(
        f"identity-bob asks about identity-alice's thread → {r.status_code} "
        f"{r.json().get('title', '')}: {r.json().get('detail', '')}"
    )
    if r.status_code != 403:
        return False
    r = await http.post(
        "/api/v2/nova/requests",
        headers=alice,
        json={"prompt": "Summarise this thread", "thread_id": tid, "wait_ms": 15000},
    )
    body = r.json()
    out.print(f"identity-alice asks about her own thread → {r.status_code} {body.get('status')}")
    if "request_id" in body:
        ids.append(body["request_id"])
    return r.status_code in (200, 202)


AGENT_PROMPT = "Prepare this week's summary from my weekly notes"
AGENT_NOTES = "Weekly notes: the supplier contract is signed; the launch moves to Thursday."
AGENT_MESSAGE = "Hi Bob, this week: the supplier contract is signed and the launch is Thursday."
AGENT_ANSWER = "I sent Bob this week's summary."


async def agent_scenario(
    http: httpx.AsyncClient,
    settings: Settings,
    alice: dict[str, str],
    approver: dict[str, str],
    out: Console,
    ids: list[str],
    fake_url: str | None,
) -> bool:
    """An agent (created as the API creates them) reads Alice's notes and asks to send Bob a
    message: the SEND pauses the run at a checkpoint of its own, which the approver sees and
    approves; the run then sends the message once and answers. The fake provider scripts the
    model's tool calls (``POST /_script``), matched by a tag in the agent's system prompt, so
    the run is the same every time; what is printed is read back from the API and Kafka."""
    out.rule("An agent whose tool call waits for approval")
    if fake_url is None:
        out.print("(real providers: the model decides its own tool calls, so this scripted "
                  "run needs the fake providers; skipped)")
        return True
    tag = f"demo-agent-{uuid.uuid4().hex[:12]}"
    r = await http.post("/api/v2/agents", headers=alice, json={
        "name": "Weekly reporter", "role": "orchestrator",
        "tools": ["read_thread", "send_message"],
        "system_prompt": f"You report the week to the team ({tag})."})
    r.raise_for_status()
    agent = r.json()["id"]
    thread = await http.post("/api/v2/threads", headers=alice, json={"title": "Weekly notes"})
    thread.raise_for_status()
    tid = thread.json()["id"]
    (await http.post(f"/api/v2/threads/{tid}/messages", headers=alice,
                     json={"text": AGENT_NOTES})).raise_for_status()
    (await http.post(f"{fake_url}/_script", json={"match": tag, "steps": [
        {"tool_calls": [{"name": "read_thread", "arguments": {"thread_id": tid}}]},
        {"tool_calls": [{"name": "send_message",
                         "arguments": {"to": "bob@example.com", "text": AGENT_MESSAGE}}]},
        {"text": AGENT_ANSWER},
    ]})).raise_for_status()
    out.print(f"agent 'Weekly reporter' {agent} (tools read_thread, send_message), created with "
              "POST /api/v2/agents")
    r = await http.post("/api/v2/nova/requests", headers=alice,
                        json={"prompt": AGENT_PROMPT, "agent_id": agent, "wait_ms": 15000})
    if r.status_code != 423:
        out.print(f"[red]expected 423 for the agent's send, got {r.status_code}: {r.text}[/red]")
        return False
    held = r.json()
    rid, cp = held["request_id"], held["checkpoint_id"]
    ids.append(rid)
    seen = await http.get(f"/api/v2/governance/checkpoints/{cp}", headers=approver)
    seen.raise_for_status()
    call = seen.json()["agent_tool_call"] or {}
    args = call.get("arguments", {})
    out.print(f"423 Locked  {AGENT_PROMPT!r}\n            the run is paused at checkpoint "
              f"{cp}: {held['reason']}", markup=False)
    out.print(f"            the approver sees step {call.get('step')}: {call.get('tool')} to "
              f"{args.get('to')}: {args.get('text')!r}", markup=False)
    out.print(f"            to approve: POST /api/v2/governance/checkpoints/{cp}/approve as an "
              "approver of identity-alice (not Alice: four eyes), or in the console",
              markup=False)
    d = await http.post(f"/api/v2/governance/checkpoints/{cp}/approve", headers=approver,
                        json={"reason": "demo approve"})
    d.raise_for_status()

    async def finished() -> bool:
        g = await http.get(f"/api/v2/nova/requests/{rid}", headers=alice)
        return g.status_code == 200 and g.json()["status"] not in ("held", "in_flight",
                                                                   "accepted")

    if not await wait_for(finished, 60):
        out.print(f"[red]the agent run {rid} did not finish after its approval[/red]")
        return False
    final = (await http.get(f"/api/v2/nova/requests/{rid}", headers=alice)).json()
    out.print(f"approved → {final['status']}: {final.get('result')!r}", markup=False)
    if final["status"] != "completed":
        return False
    return await show_run(settings, rid, out)


async def show_run(settings: Settings, rid: str, out: Console) -> bool:
    """The run step by step, as ``nova replay --request`` prints it, once lane G has chained
    its tool calls (it commits the audit topic about once a second)."""
    from analytics.agent_trail import agent_lines, agent_run
    from analytics.replay import request_trail

    tools = settings.as_client("tools")
    lines: list[str] = []

    async def chained() -> bool:
        trail = await request_trail(tools, rid)
        run = agent_run(trail.submitted, trail.llm_events, trail.pending, trail.decisions,
                        trail.final, trail.audit)
        if run is None or trail.final is None or sum(len(s.tools) for s in run.steps) < 2 \
                or any(t.end is None for s in run.steps for t in s.tools):
            return False
        lines[:] = agent_lines(run)
        return True

    if not await wait_for(chained, 30, 0.5):
        out.print("[red]the run's tool calls did not reach the audit chain within 30 s[/red]")
        return False
    out.print(f"the run step by step, from Kafka (`nova replay --request {rid}` shows it with "
              "the trail):", markup=False)
    for line in lines:
        out.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    return True


def token_for(settings: Settings, identity: str, *roles: str, sub: str | None = None) -> str:
    return issue_token(
        settings,
        sub=sub or f"user-{identity}",
        identity=identity,
        roles=roles or ("member",),
        now=datetime.now(UTC),
    )


async def wait_for(predicate: Any, timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(interval_s)
    return False


CONSOLE_APPROVER = "user-dana"  # the person the console's key signs in as (never a submitter)
HELD_FOR_THE_CONSOLE = "Pay invoice INV-2077 of 480 EUR to Globex"


async def console_sign_in(settings: Settings, out: Console) -> str:
    """An API key of an approver of identity-alice, printed with the console's URL."""
    from nova.cli.keys import create_key

    key, _ = await create_key(settings, "identity-alice", ["member", "approver"],
                              user=CONSOLE_APPROVER, name="Alice")
    out.print(f"console: [bold]{settings.gateway_url}/console[/bold] — sign in with the API "
              f"key [bold]{key}[/bold] (an approver of identity-alice)")
    return key


async def keep_open(http: httpx.AsyncClient, headers: dict[str, str], out: Console) -> None:
    """``--keep``: leave one payment waiting for the console's approver, then serve until
    Ctrl-C (or SIGTERM) stops Nova."""
    r = await http.post("/api/v2/nova/requests", headers={**headers, **RESPOND_ASYNC},
                        json={"prompt": HELD_FOR_THE_CONSOLE})
    r.raise_for_status()
    out.print(f"a payment is waiting for you in the console's approvals ({HELD_FOR_THE_CONSOLE!r});"
              " Ctrl-C stops Nova")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    out.print("stopping Nova")


async def run_demo(settings: Settings, n_requests: int = 30, console: Console | None = None,
                   *, keep: bool = False) -> int:
    out = console or Console()
    async with running_stack(settings) as stack:
        services = stack.app.state.services
        ch: ClickHouse = services.clickhouse
        await console_sign_in(stack.settings, out)
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
                r = await http.post("/api/v2/nova/requests", json=body,
                                    headers={**headers, **RESPOND_ASYNC})
                r.raise_for_status()
                ids.append(r.json()["request_id"])
            out.print(f"submitted {len(ids)} requests through {settings.gateway_url}")

            async def all_done() -> bool:
                for rid in ids:
                    r = await http.get(f"/api/v2/nova/requests/{rid}", headers=headers)
                    if r.status_code != 200 or r.json()["status"] not in (
                        "completed",
                        "denied",
                        "failed",
                    ):
                        return False
                return True

            if not await wait_for(all_done, 120):
                out.print("[red]not every request finished within 120 s[/red]")
                return 1
            elapsed = time.perf_counter() - t0
            bob = {"Authorization": f"Bearer {token_for(settings, 'identity-bob', 'member')}"}
            carol = token_for(settings, "identity-alice", "approver", sub="user-carol")
            approver = {"Authorization": f"Bearer {carol}"}
            ok = await governance_scenarios(http, headers, bob, out, ids,
                                            stack.settings.llm_fake_url, approver)
            if not ok or not await agent_scenario(http, settings, headers, approver, out, ids,
                                                  stack.settings.llm_fake_url):
                return 1

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
        verified = await verify_audit(settings.as_client("tools"))  # as `nova audit verify`
        audit_line = (
            f"{verified.report.checked} records verified, intact; "
            f"{verified.signed_checked} decisions and entity changes signed by the gateway"
            if verified.ok
            else f"BROKEN {verified.report.breaks} {verified.unaudited} {verified.unchecked or ''}"
        )

        table = Table(title=f"Per-lane latency, {len(ids)} requests (read back from ClickHouse)")
        for col in ("lane", "rows", "p50 ms", "p99 ms"):
            table.add_column(col, justify="right" if col != "lane" else "left")
        for row in summary:
            table.add_row(
                str(row["lane"]), str(row["rows"]), f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}"
            )
        out.print(table)
        out.print(f"lane rows: {total_rows} (expected {7 * len(ids)}); request outcomes: "
                  f"{statuses}")
        out.print(f"audit chain: {audit_line}")
        out.print(f"all {len(ids)} requests finished in {elapsed:.1f} s")
        code = 0 if total_rows == 7 * len(ids) else 1
        if keep and code == 0:
            async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=30) as http:
                await keep_open(http, headers, out)
        else:
            out.print(f"(the console is at {settings.gateway_url}/console while Nova runs: "
                      "`nova demo --keep` leaves it open after the batch, `nova up` too)")
    return code
