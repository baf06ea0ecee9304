"""Command group ``nova kafka``: the project's own single-node broker, and provisioning.

``start`` returns once the broker answers, with the topics and the ACLs of every principal
created; ``provision`` and ``acls`` serve a cluster Nova does not run.
"""

from __future__ import annotations

import asyncio

import typer

from nova.cli.common import cli_settings, fail, guard

kafka_app = typer.Typer(help="The project's own single-node Kafka broker.", no_args_is_help=True)


@kafka_app.command("fetch")
def kafka_fetch() -> None:
    """Fetch the Kafka broker jars with mvn into the cache (once)."""
    from nova.kafka.launcher import fetch_kafka

    settings = cli_settings()
    if settings.external_kafka:
        typer.echo(f"KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers}: no local broker needed")
        return

    def run() -> None:
        lib = fetch_kafka(settings)
        typer.echo(f"Kafka {settings.kafka_version} jars in {lib}")

    guard(run)


@kafka_app.command("start")
def kafka_start() -> None:
    """Start the broker in the background; returns once it answers (topics and ACLs created)."""
    from nova.kafka.admin import provision
    from nova.kafka.launcher import Broker

    settings = cli_settings()
    if settings.external_kafka:
        fail(
            f"KAFKA_BOOTSTRAP_SERVERS is set ({settings.bootstrap_servers}): "
            "unset it to run a local broker"
        )

    def run() -> None:
        broker = Broker(settings)
        broker.start(attached=False)
        asyncio.run(provision(broker.admin_settings))
        typer.echo(
            f"Kafka ready on {broker.layout.bootstrap} (SASL/SCRAM-SHA-512; data in "
            f"{broker.layout.home}, credentials in {broker.layout.credentials})"
        )

    guard(run)


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the background broker."""
    from nova.kafka.launcher import Broker

    settings = cli_settings()

    def run() -> None:
        stopped = Broker(settings).stop()
        typer.echo("Kafka stopped" if stopped else "no local broker was running")

    guard(run)  # a pid file it cannot read or remove is one line, as for the other commands


@kafka_app.command("status")
def kafka_status() -> None:
    """Say whether the broker runs and answers."""
    from nova.kafka.admin import broker_answers
    from nova.kafka.launcher import Broker

    settings = cli_settings()
    if settings.external_kafka:
        ok = broker_answers(settings)
        typer.echo(
            f"external Kafka {settings.bootstrap_servers}: {'answers' if ok else 'does not answer'}"
        )
        raise typer.Exit(0 if ok else 1)
    broker = Broker(settings)
    pid = broker.running_pid()
    if pid is None:
        stale = broker.recorded_pid()
        typer.echo("no local broker is running" + (
            f" (the pid file names pid {stale}, which is not this data dir's broker: a stale "
            "file, left by a broker that was killed; `nova kafka start` replaces it)"
            if stale is not None else ""))
        raise typer.Exit(1)
    ok = broker_answers(broker.admin_settings)
    typer.echo(
        f"broker pid {pid} on {broker.layout.bootstrap}: {'ready' if ok else 'not answering'}"
    )
    raise typer.Exit(0 if ok else 1)


@kafka_app.command("provision")
def kafka_provision() -> None:
    """Create the topics of NOVA_TOPIC_PREFIX and the ACLs of Nova's principals, as admin.

    On Nova's running broker it logs in as nova-admin; on an external cluster, with
    KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD of a principal that may create topics and ACLs.
    """
    from nova.kafka.admin import provision
    from nova.kafka.launcher import Broker

    settings = cli_settings()
    admin = (settings.as_client("admin") if settings.external_kafka
             else Broker(settings).admin_settings)

    def run() -> None:
        created, applied = asyncio.run(provision(admin))
        typer.echo(f"{len(created)} topics created for prefix {settings.topic_prefix!r}")
        if applied:
            typer.echo("ACLs of nova-gateway, nova-worker and nova-tools applied "
                       "(`nova kafka acls` lists them)")
        else:
            typer.echo("this cluster runs no authorizer: no ACLs applied, every client may read "
                       "and write every topic")

    guard(run)


@kafka_app.command("acls")
def kafka_acls() -> None:
    """Print the ACLs of NOVA_TOPIC_PREFIX as kafka-acls commands (for a cluster you manage)."""
    from nova.kafka.acls import PatternType, ResourceType, bindings

    settings = cli_settings()
    kind = {ResourceType.TOPIC: "--topic", ResourceType.GROUP: "--group",
            ResourceType.TRANSACTIONAL_ID: "--transactional-id"}
    for b in bindings(settings):
        pattern = " --resource-pattern-type prefixed" if b.pattern is PatternType.PREFIXED else ""
        typer.echo(
            f"kafka-acls.sh --bootstrap-server {settings.bootstrap_servers} --add "
            f"--allow-principal {b.principal} --operation {b.operation.name.capitalize()} "
            f"{kind[b.resource_type]} {b.resource_name}{pattern}"
        )


def register(app: typer.Typer) -> None:
    """Add this group's commands to the ``nova`` app."""
    app.add_typer(kafka_app, name="kafka")
