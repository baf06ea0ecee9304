"""The web console in a real browser: Debian's chromium, driven by Playwright, on the real stack.

One gateway and one worker for the module (``live_helpers.live_stack``), one browser; each
test signs in with an API key of its own identity. The browser is the system's ``chromium``
(``make test`` installs it): Playwright is pointed at it and never downloads one, and a
missing browser fails the tests instead of skipping them.

What a person would check: an approver signs in, sees a held payment appear without reloading,
approves it and sees it complete; an agent's held tool call shows the tool, its action type,
the agent, the step and the arguments; another identity's checkpoint never appears; markup in
a thread title, a prompt, a decision reason and a tool call's arguments is shown as text and
never runs.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from analytics.client import ClickHouse
from gateway.console import CONTENT_SECURITY_POLICY
from nova.cli.keys import create_key
from nova.llm.fake_server import FakeServerThread
from tests.integration.conftest import RESPOND_ASYNC, Gateway, SessionBroker, WorkerProcess
from tests.integration.live_helpers import live_stack, unique

pytestmark = pytest.mark.integration

HOSTILE_TITLE = ('<img src=x onerror="window.__pwned=1">Q3 <b>vendors</b>'
                 '<script>window.__pwned=2</script>')
HOSTILE_PROMPT = ('Pay invoice <b>INV-9</b> of 300 EUR to ACME '
                  '<img src=x onerror="window.__pwned=3">')
HOSTILE_REASON = '<script>window.__pwned=4</script><i>checked</i> the invoice'
HOSTILE_MESSAGE = 'The report is <b>ready</b> <img src=x onerror="window.__pwned=5">'
WAIT_MS = 90_000  # a held payment appears once the worker has run lanes A-E


@pytest.fixture(scope="module")
async def stack(broker: SessionBroker, clickhouse: ClickHouse, fake_llm: FakeServerThread,
                tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[tuple[Gateway, WorkerProcess]]:
    async with live_stack(broker, clickhouse, tmp_path_factory.mktemp("console") / "data",
                          fake_llm) as running:
        yield running


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "no chromium on PATH: `make test` installs it (apt-get install chromium)"
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=chromium, headless=True,
                                            args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Script errors and policy violations the page reported (none allowed at the end)."""
    return []


@pytest.fixture
async def page(browser: Browser, page_errors: list[str]) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    errors = page_errors
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
              and "the server responded with a status of 4" not in msg.text else None)
    yield opened
    await context.close()
    assert errors == [], errors  # no script error, no policy violation


async def sign_in(page: Page, gw: Gateway, api_key: str) -> None:
    await page.goto(f"{gw.url}/console")
    await page.get_by_label("API key").fill(api_key)
    await page.keyboard.press("Enter")
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#live-status")).to_contain_text("Live")
    assert api_key not in page.url


async def approver_key(gw: Gateway, identity: str) -> str:
    """An API key of an approver of ``identity``, whose person is ``user-carol``."""
    key, _ = await create_key(gw.settings, identity, ["member", "approver"], user="user-carol")
    return key


async def submit(gw: Gateway, identity: str, prompt: str, **extra: Any) -> dict[str, Any]:
    """Submit as another person of the identity (the submitter never approves)."""
    r = await gw.http.post("/api/v2/nova/requests", json={"prompt": prompt, **extra},
                           headers={**gw.auth(identity, "member", sub="user-alice"),
                                    **RESPOND_ASYNC})
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


async def held_checkpoint(gw: Gateway, identity: str, request_id: str) -> str:
    view = await gw.services.tracker.wait_until(request_id, lambda v: v.held, WAIT_MS / 1000)
    assert view is not None, f"{request_id} was never held"
    assert view.held, view
    return str(view.checkpoint_id)


async def test_an_approver_sees_a_held_payment_arrive_approves_it_and_sees_it_complete(
    stack: tuple[Gateway, WorkerProcess], page: Page,
) -> None:
    gw, _ = stack
    alice = unique("alice")
    await sign_in(page, gw, await approver_key(gw, alice))
    await page.evaluate("window.__sameDocument = true")
    thread = await gw.http.post("/api/v2/threads", json={"title": HOSTILE_TITLE},
                                headers=gw.auth(alice, "member"))
    assert thread.status_code == 201, thread.text
    rid = (await submit(gw, alice, HOSTILE_PROMPT, thread_id=thread.json()["id"]))["request_id"]
    cp = await held_checkpoint(gw, alice, rid)

    card = page.locator(f'#inbox li[data-checkpoint-id="{cp}"]')
    await expect(card).to_be_visible(timeout=WAIT_MS)  # arrived live: no reload
    assert await page.evaluate("window.__sameDocument") is True
    await expect(card.locator(".prompt")).to_have_text(HOSTILE_PROMPT)
    await expect(card.locator(".thread")).to_have_text(HOSTILE_TITLE)
    await expect(card).to_contain_text("PAYMENT")
    await expect(card.locator("img, script, b")).to_have_count(0)
    assert await page.locator("#inbox-count").inner_text() == "(1)"

    await card.get_by_label("Reason for your decision").fill(HOSTILE_REASON)
    await card.get_by_role("button", name="Approve").click()
    await expect(card).to_have_count(0)
    decided = page.locator(f'#decided li[data-checkpoint-id="{cp}"]')
    await expect(decided).to_have_attribute("data-status", "approved")
    await expect(decided.locator(".decision-reason")).to_have_text(f" — {HOSTILE_REASON}")
    await expect(decided.locator("script, i")).to_have_count(0)

    # the live pipeline, reached with the keyboard: the request completes as it happens
    await page.get_by_role("tab", name="Approvals").focus()
    await page.keyboard.press("ArrowRight")
    await expect(page.get_by_role("tab", name="Live pipeline")).to_have_attribute(
        "aria-selected", "true")
    status = page.locator(f'#pipeline tr[data-request-id="{rid}"] td.status')
    await expect(status).to_have_attribute("data-status", "completed", timeout=WAIT_MS)
    for lane in "ABCDEFG":
        cell = page.locator(f'#pipeline tr[data-request-id="{rid}"] td[data-lane="{lane}"]')
        await expect(cell).not_to_have_attribute("data-status", "held")
        await expect(cell).to_have_attribute("data-status", "approved" if lane == "E" else "ok")
    assert await page.evaluate("window.__pwned") is None


async def test_an_agent_s_held_tool_call_shows_the_tool_the_agent_and_its_arguments(
    stack: tuple[Gateway, WorkerProcess], page: Page, fake_llm: FakeServerThread,
) -> None:
    gw, _ = stack
    alice, tag = unique("alice"), uuid.uuid4().hex
    await sign_in(page, gw, await approver_key(gw, alice))
    r = await gw.http.post("/api/v2/agents", headers=gw.auth(alice), json={
        "name": "Reporter", "role": "orchestrator", "tools": ["send_message"],
        "system_prompt": f"You are agent {tag}."})
    assert r.status_code == 201, r.text
    agent = str(r.json()["id"])
    arguments = {"to": "bob@example.com", "text": HOSTILE_MESSAGE}
    httpx.post(f"{fake_llm.url}/_script", timeout=10, json={"match": tag, "steps": [
        {"tool_calls": [{"name": "send_message", "arguments": arguments}]},
        {"text": "Sent."}]}).raise_for_status()
    prompt = "Prepare the weekly report summary"
    rid = (await submit(gw, alice, prompt, agent_id=agent))["request_id"]
    cp = await held_checkpoint(gw, alice, rid)

    card = page.locator(f'#inbox li[data-checkpoint-id="{cp}"]')
    await expect(card).to_be_visible(timeout=WAIT_MS)
    await expect(card.locator("h3")).to_have_text("send_message (SEND) held for approval")
    await expect(card.locator(".agent")).to_have_text(agent)
    await expect(card.locator(".step")).to_have_text("1")
    assert json.loads(await card.locator(".arguments").inner_text()) == arguments
    await expect(card.locator(".prompt")).to_have_text(prompt)
    await expect(card.locator("img, script, b")).to_have_count(0)

    await card.get_by_role("button", name="Approve").click()
    await expect(card).to_have_count(0)
    decided = page.locator(f'#decided li[data-checkpoint-id="{cp}"]')
    await expect(decided).to_have_attribute("data-status", "approved")
    done = await gw.services.tracker.wait_until(rid, lambda v: v.finished, WAIT_MS / 1000)
    assert done is not None
    assert (done.status, done.result) == ("completed", "Sent."), done
    assert await page.evaluate("window.__pwned") is None


async def test_another_identitys_checkpoint_never_appears(
    stack: tuple[Gateway, WorkerProcess], page: Page,
) -> None:
    gw, _ = stack
    alice, bob = unique("alice"), unique("bob")
    await sign_in(page, gw, await approver_key(gw, alice))
    theirs = (await submit(gw, bob, "Pay invoice INV-31 of 90 EUR to Bobco"))["request_id"]
    their_cp = await held_checkpoint(gw, bob, theirs)
    mine = (await submit(gw, alice, "Pay invoice INV-32 of 90 EUR to ACME"))["request_id"]
    my_cp = await held_checkpoint(gw, alice, mine)
    # held after bob's: once it is on the page, bob's would be too if it could be
    await expect(page.locator(f'#inbox li[data-checkpoint-id="{my_cp}"]')).to_be_visible(
        timeout=WAIT_MS)
    await expect(page.locator(f'[data-checkpoint-id="{their_cp}"]')).to_have_count(0)
    await expect(page.locator(f'[data-request-id="{theirs}"]')).to_have_count(0)
    assert their_cp not in await page.content()
    assert "Bobco" not in await page.content()


async def test_the_page_is_locked_down(stack: tuple[Gateway, WorkerProcess], page: Page,
                                      page_errors: list[str]) -> None:
    gw, _ = stack
    r = await gw.http.get("/console")
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "set-cookie" not in r.headers
    missing = await gw.http.get("/console/secrets.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"

    await page.goto(f"{gw.url}/console")
    # the browser enforces the policy: a string is never parsed as HTML by this page...
    refused = await page.evaluate("""() => {
        try { document.body.innerHTML = '<b>x</b>'; return 'parsed'; }
        catch (e) { return e.name; } }""")
    assert refused == "TypeError"
    assert page_errors == ["This document requires 'TrustedHTML' assignment. "
                           "The action has been blocked."]
    page_errors.clear()
    # ...and a wrong key is a message on the page, not a reload with the key in the URL
    await page.get_by_label("API key").fill("nova_0000000000000000_wrong")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert").first).to_contain_text("Sign-in failed")
    assert "nova_" not in page.url
    await expect(page.locator("#app")).to_be_hidden()
