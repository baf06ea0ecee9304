"""Command ``nova fake-llm``: the fake LLM providers the tests, benchmarks and demo use."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this group's commands to the ``nova`` app."""

    @app.command("fake-llm")
    def fake_llm(
        port: Annotated[int, typer.Option(help="loopback port to listen on")] = 8300,
        host: Annotated[
            str, typer.Option(help="address to bind (keep it on loopback)")
        ] = "127.0.0.1",
    ) -> None:
        """Serve the Anthropic Messages and OpenAI Chat Completions APIs, deterministically."""
        from nova.cli.common import fail
        from nova.llm.fake_server import serve

        try:
            serve(host, port, announce=lambda: typer.echo(
                f"fake LLM providers on http://{host}:{port} (control: POST /_control/<provider>)"
            ))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose a free port "
                 "with --port")
