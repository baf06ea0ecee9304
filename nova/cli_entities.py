"""Command-line group: API keys (and the identity a first key needs).

``nova keys create`` is how an operator on the machine bootstraps access: it writes the key's
salted hash to the ``entities`` topic and prints the plaintext once, on stdout alone, so
``KEY=$(nova keys create --identity ops --role operator)`` works. The key cannot be shown again.
(``operator`` administers every identity; ``admin`` only its own: ``nova.domain.roles``.)

When the identity does not exist yet it is created in the same step (user and sphere from the
options), because a first operator has no API to create identities with yet.

Entity records count only when the gateway's key signed them (``nova.signing``), so this
command signs with that key: it runs where the gateway's key is (its data dir, or
``NOVA_SIGNING_KEY``), and creates the key there if the gateway never started.
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


entities_app = typer.Typer(help="Entity records: re-sign those written before signing existed.",
                           no_args_is_help=True)


async def adopt_entities(
    settings: Settings, *, write: bool, reject: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """Every key whose records are all unsigned, and what was (or would be) done with it.

    With ``write``, each is re-signed with the gateway's key as its next version, or, when its
    key is in ``reject``, signed as deleted (the key keeps a signed state and nothing live).
    """
    from nova.entities.store import EntityStore, EntityWriter
    from nova.kafka.producer import RecordProducer
    from nova.signing import load_signer

    settings = settings.as_client("gateway")  # the gateway's principal is the entities' writer
    signer = load_signer(settings)
    producer = RecordProducer(settings)
    await producer.start()
    store = EntityStore(settings, verifier=signer.verifier)
    done: list[tuple[str, str]] = []
    try:
        await store.start()
        writer = EntityWriter(producer, store, signer)
        for key, event in sorted(store.unadopted.items()):
            rejected = key in reject
            verb = "rejected" if rejected else "adopted"
            if write:
                await writer.adopt(event, reject=rejected)
            done.append((key, f"{verb if write else 'would be ' + verb}: owner "
                              f"{event.owner_identity}, version {event.version}"
                              f"{', deleted' if event.deleted else ''}"))
    finally:
        await store.stop()
        await producer.stop()
    return done


@entities_app.command("adopt")
def entities_adopt(
    yes: Annotated[bool, typer.Option("--yes", help="re-sign them (default: only list)")]
    = False,
    reject: Annotated[list[str] | None, typer.Option(
        help="a key (type:id) to sign as deleted instead, repeatable")] = None,
) -> None:
    """List entity records nothing signed (written before signing existed, or forged); with
    --yes, re-sign them with the gateway's key so the views and the worker accept them.

    Review the list first: adopting a forged record makes it the gateway's. The worker refuses
    to start while any is left, so a rule or budget written before the upgrade is never
    silently dropped.
    """
    from nova.cli import _guard, _settings

    settings = _settings()

    def run() -> None:
        done = asyncio.run(adopt_entities(settings, write=yes, reject=frozenset(reject or ())))
        for key, what in done:
            typer.echo(f"{key}: {what}")
        typer.echo(f"{len(done)} unsigned entity records"
                   + ("" if yes or not done else "; run again with --yes to re-sign them"))

    _guard(run)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the ``nova`` app."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(entities_app, name="entities")
