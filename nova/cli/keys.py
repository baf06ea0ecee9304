"""Command group: credentials. ``nova token`` mints a JWT, ``nova keys`` creates API keys.

``nova keys create`` is how an operator on the machine bootstraps access: it writes the key's
salted hash to the ``entities`` topic and prints the plaintext once, on stdout alone, so
``KEY=$(nova keys create --identity ops --role operator)`` works. The key cannot be shown again.
(``operator`` administers every identity; ``admin`` only its own: ``nova.domain.roles``.)

When the identity does not exist yet it is created in the same step (user and sphere from the
options), because a first operator has no API access to create identities with yet. Once one
has a token, keys are also made, listed and revoked over the API (``/api/v2/auth/keys``).

Entity records count only when the gateway's key signed them (``nova.signing``), so this
command signs with that key: it runs where the gateway's key is (its data dir, or
``NOVA_SIGNING_KEY``), and creates the key there if the gateway never started.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from nova.cli.common import cli_settings, fail, guard

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
    from nova.signing import load_signer

    settings = settings.as_client("gateway")  # the gateway's principal is the entities' writer
    now = datetime.now(UTC)
    record, plaintext = create_api_key(identity, roles, now)  # validates roles first
    await ensure_topics(settings)
    signer = load_signer(settings)
    producer = RecordProducer(settings)
    await producer.start()
    store = EntityStore(settings, verifier=signer.verifier)
    try:
        await store.start()
        writer = EntityWriter(producer, store, signer)
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
                                                 "analyst (within the identity), operator")],
    user: Annotated[str | None, typer.Option(help="user of a new identity (default: its id)")]
    = None,
    sphere: Annotated[str, typer.Option(help="sphere of a new identity")] = "personal",
    name: Annotated[str | None, typer.Option(help="display name of a new identity")] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    settings = cli_settings()

    def run() -> None:
        try:
            plaintext, created = asyncio.run(
                create_key(settings, identity, role, user=user, sphere=sphere, name=name))
        except ValueError as exc:  # an identity, user or sphere outside the allowed shapes
            fail(f"invalid identity: {exc}")
            return
        if created:
            typer.echo(f"created identity {identity} (sphere {sphere})", err=True)
        typer.echo(f"API key for {identity} ({', '.join(sorted(set(role)))}); "
                   "shown once, store it now:", err=True)
        typer.echo(plaintext)

    guard(run)


@keys_app.command("signing")
def keys_signing() -> None:
    """Print a new signing key pair as environment lines, for deployments whose gateway and
    worker do not share a data dir (docker compose): NOVA_SIGNING_KEY goes to the gateway
    only, NOVA_SIGNING_PUBLIC_KEY to the worker and the tools."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from nova.signing import public_key_text

    private = Ed25519PrivateKey.generate()
    typer.echo(f"NOVA_SIGNING_KEY={base64.b64encode(private.private_bytes_raw()).decode()}")
    typer.echo(f"NOVA_SIGNING_PUBLIC_KEY={public_key_text(private.public_key())}")


def token(
    identity: Annotated[str, typer.Option(help="identity the token acts for")],
    role: Annotated[list[str], typer.Option(help="role(s): member, approver, admin, analyst "
                                                 "(within the identity), operator")],
    sub: Annotated[str | None, typer.Option(help="user id (default: the identity)")] = None,
) -> None:
    """Mint a JWT with the configured NOVA_JWT_SECRET (operators and scripts on this machine)."""
    from datetime import UTC, datetime

    from nova.auth.tokens import issue_token

    settings = cli_settings()
    guard(
        lambda: typer.echo(
            issue_token(settings, sub or identity, identity, role, datetime.now(UTC))
        )
    )


def register(app: typer.Typer) -> None:
    """Add this group's commands to the ``nova`` app."""
    app.command()(token)
    app.add_typer(keys_app, name="keys")
