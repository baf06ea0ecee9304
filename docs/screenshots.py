"""Take the console's screenshots in docs/images/ from a real `nova demo --keep`.

    .venv/bin/python docs/screenshots.py

Starts `nova demo --keep` on its own data dir and ports, waits for the API key it prints,
signs in with it in Debian's chromium (Playwright, pointed at the system browser), submits a
few requests so the live pipeline moves, and saves one picture per view; then stops the demo.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "images"
sys.path.insert(0, str(REPO))

from nova.auth.tokens import issue_token  # noqa: E402
from nova.settings import load_settings  # noqa: E402

PROMPTS = ["Summarise this thread about the Q3 roadmap", "Translate 'good morning' into French",
           "Write a short poem about Kafka topics", "Pay invoice INV-3001 of 90 EUR to Initech"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def shoot(page: Page, name: str) -> None:
    await page.wait_for_timeout(800)
    await page.screenshot(path=str(OUT / f"console-{name}.png"), full_page=True)
    print(f"wrote docs/images/console-{name}.png")


async def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="nova-shots-"))
    port, kafka = free_port(), free_port()
    env = {**os.environ, "NOVA_DATA_DIR": str(data), "NOVA_GATEWAY_PORT": str(port),
           "NOVA_KAFKA_PORT": str(kafka), "NOVA_KAFKA_CONTROLLER_PORT": str(free_port()),
           "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    demo = subprocess.Popen(  # noqa: ASYNC220 - started once, read line by line below
        [sys.executable, "-m", "nova", "demo", "--keep", "--requests", "24"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    key = None
    assert demo.stdout is not None
    try:
        for line in demo.stdout:
            print(line, end="")
            if found := re.search(r"API key (nova_\S+)", line):
                key = found.group(1)
            if "waiting for you in the console" in line:
                break
        if key is None or demo.poll() is not None:
            print("the demo did not get as far as the console", file=sys.stderr)
            return 1
        url = f"http://127.0.0.1:{port}"
        settings = load_settings(gateway_port=port)
        token = issue_token(settings, "user-alice", "identity-alice", ["member"],
                            datetime.now(UTC))
        chromium = shutil.which("chromium")
        assert chromium, "apt-get install chromium"
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            await page.goto(f"{url}/console")
            await shoot(page, "sign-in")
            await page.get_by_label("API key").fill(key)
            await page.keyboard.press("Enter")
            await page.locator("#inbox li").first.wait_for()
            await shoot(page, "approvals")
            await page.get_by_role("tab", name="Live pipeline").click()
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                for prompt in PROMPTS:
                    await http.post("/api/v2/nova/requests", json={"prompt": prompt},
                                    headers={"Authorization": f"Bearer {token}"})
            await page.wait_for_timeout(6000)
            await shoot(page, "pipeline")
            await page.get_by_role("tab", name="Costs and latency").click()
            await page.locator("#costs figure").first.wait_for()
            await shoot(page, "costs")
            await page.get_by_role("tab", name="Providers").click()
            await page.locator("#providers table").first.wait_for()
            await shoot(page, "providers")
            await browser.close()
        return 0
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
