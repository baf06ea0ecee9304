"""Command-line group: keys and identities."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this group's commands to the ``nova`` app."""
