"""Command group ``nova entities``: entity records no signature covers.

Records written before signing existed (or forged) count for nothing until the gateway's key
signs them; ``adopt`` lists them and, with ``--yes``, re-signs them as their next version.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from nova.cli.common import cli_settings, guard

if TYPE_CHECKING:
    from nova.settings import Settings

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
    settings = cli_settings()

    def run() -> None:
        done = asyncio.run(adopt_entities(settings, write=yes, reject=frozenset(reject or ())))
        for key, what in done:
            typer.echo(f"{key}: {what}")
        typer.echo(f"{len(done)} unsigned entity records"
                   + ("" if yes or not done else "; run again with --yes to re-sign them"))

    guard(run)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the ``nova`` app."""
    app.add_typer(entities_app, name="entities")
