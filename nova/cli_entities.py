"""Command-line group: API keys (and the identity a first key needs).

``nova keys create`` is how an operator on the machine bootstraps access: it writes the key's
salted hash to the ``entities`` topic and prints the plaintext once, on stdout alone, so
``KEY=$(nova keys create --identity ops --role admin)`` works. The key cannot be shown again.

When the identity does not exist yet it is created in the same step (user and sphere from the
options), because a first admin has no API to create identities with yet.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from nova.settings import Settings

keys_app = typer.Typer(help="API keys: created here, exchanged for tokens at /api/v2/auth/token.",
                       no_args_is_help=True)


async def create_key(
    settings: Settings,
    identity: str,
    roles: list[str],
    *,
    user: str | None = None,
    sphere: str = "personal",
    name: str | None = None,
) -> tuple[str, bool]:
    """Store a new key for ``identity`` (creating the identity if needed).

    Returns the plaintext, to show once, and whether the identity was created.
    """
    from nova.auth.keys import create_api_key
    from nova.entities.models import ApiKeyEntity, IdentityEntity
    from nova.entities.store import EntityStore, EntityWriter
    from nova.kafka.admin import ensure_topics
    from nova.kafka.producer import RecordProducer
    from nova.records import now_ms

    now = datetime.now(UTC)
    record, plaintext = create_api_key(identity, roles, now)  # validates roles first
    await ensure_topics(settings)
    producer = RecordProducer(settings)
    await producer.start()
    store = EntityStore(settings)
    try:
        await store.start()
        writer = EntityWriter(producer, store)
        created = False
        if store.identity(identity) is None:
            await writer.put(
                IdentityEntity(id=identity, user_id=user or identity,
                               display_name=name or identity, sphere_id=sphere,
                               created_at=now_ms()),
                create=True,
            )
            created = True
        await writer.put(ApiKeyEntity.from_record(record), create=True)
    finally:
        await store.stop()
        await producer.stop()
    return plaintext, created


@keys_app.command("create")
def keys_create(
    identity: Annotated[str, typer.Option(help="identity the key acts for")],
    role: Annotated[list[str], typer.Option(help="role, repeatable: member, approver, admin, "
                                                 "analyst")],
    user: Annotated[str | None, typer.Option(help="user of a new identity (default: its id)")]
    = None,
    sphere: Annotated[str, typer.Option(help="sphere of a new identity")] = "personal",
    name: Annotated[str | None, typer.Option(help="display name of a new identity")] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from nova.cli import _fail, _guard, _settings

    settings = _settings()

    def run() -> None:
        try:
            plaintext, created = asyncio.run(
                create_key(settings, identity, role, user=user, sphere=sphere, name=name))
        except ValueError as exc:  # an identity, user or sphere outside the allowed shapes
            _fail(f"invalid identity: {exc}")
            return
        if created:
            typer.echo(f"created identity {identity} (sphere {sphere})", err=True)
        typer.echo(f"API key for {identity} ({', '.join(sorted(set(role)))}); "
                   "shown once, store it now:", err=True)
        typer.echo(plaintext)

    _guard(run)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the ``nova`` app."""
    app.add_typer(keys_app, name="keys")
