"""Commands that run Nova's processes: ``nova up``, ``demo``, ``worker`` and ``gateway``.

``up`` and ``demo`` run the whole stack in this process tree (:mod:`nova.cli.stack`); ``worker``
and ``gateway`` run one component each, for deployments that place them apart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Annotated

import typer

from nova.cli.common import cli_settings, guard


def worker() -> None:
    """Run the seven lane agents (a Faust worker)."""
    settings = cli_settings()  # before Faust's imports: a bad setting is answered at once
    from streams.worker import run_worker

    guard(lambda: run_worker(settings))  # a guard that cannot be built: one line, exit 2


def gateway() -> None:
    """Run the HTTP gateway (and the ClickHouse sink) on NOVA_GATEWAY_PORT."""
    settings = cli_settings()
    from gateway.app import serve

    guard(lambda: asyncio.run(serve(settings)))  # a guard that cannot be built: one line, exit 2


def up() -> None:
    """Run the whole stack in the foreground on embedded defaults, restarting a worker, broker or
    gateway that dies; Ctrl-C stops all of it (exit 1 when a child keeps dying)."""
    from nova.cli.stack import serve_forever

    settings = cli_settings()
    code = 0

    def run() -> None:
        nonlocal code
        code = asyncio.run(serve_forever(settings))

    guard(run)
    # Everything is stopped, reaped and closed by now; the interpreter's own teardown of a
    # process this large (modules, the embedded ClickHouse's statics) took 1.5-3.7 s more on a
    # loaded machine, which a stop within 10 s cannot afford. What it would flush, we flush.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def demo(
    requests: Annotated[int, typer.Option(help="how many scripted requests to submit")] = 30,
    keep: Annotated[bool, typer.Option(
        help="after the batch, leave a payment for the console's approver and keep Nova "
        "running until Ctrl-C")] = False,
) -> None:
    """Start the stack, print the console's URL and a key to sign in with, submit a scripted
    batch, print per-lane latency from ClickHouse, stop (or, with --keep, stay up)."""
    from nova.cli.demo import run_demo

    settings = cli_settings()
    code = 0

    def run() -> None:
        nonlocal code
        code = asyncio.run(run_demo(settings, requests, keep=keep))

    guard(run)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the ``nova`` app."""
    for command in (worker, gateway, up, demo):
        app.command()(command)
