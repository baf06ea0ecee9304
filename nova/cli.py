"""The ``nova`` command line.

Errors a user can fix print one line naming the fix and exit 2; nothing prints a traceback
for a configuration problem.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from nova.errors import ConfigError, LauncherError, NovaError, one_line
from nova.settings import Settings, load_settings, settings_problem

app = typer.Typer(
    help="Nova: governance-first LLM request pipeline on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
kafka_app = typer.Typer(help="The project's own single-node Kafka broker.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")


def _settings() -> Settings:
    from nova.kafka import quiet_kafka_client

    try:
        settings = load_settings()
    except ValueError as exc:
        _fail(settings_problem(exc))
        raise  # unreachable
    quiet_kafka_client(settings)  # a broker that does not answer is our one line, not aiokafka's
    return settings


def _fail(message: str) -> None:
    typer.echo(f"nova: {message}", err=True)
    raise typer.Exit(2)


def _guard(fn: object) -> None:
    """Run ``fn()``, turning Nova's own errors, and a broker that cannot be reached, into
    one-line messages (exit 2)."""
    from aiokafka.errors import KafkaError

    try:
        fn()  # type: ignore[operator]
    except (ConfigError, LauncherError) as exc:
        _fail(str(exc))
    except NovaError as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    except (KafkaError, ConnectionError) as exc:
        _fail(f"Kafka does not answer ({one_line(exc)}): start it with `nova kafka start` or "
              "`nova up`, or set KAFKA_BOOTSTRAP_SERVERS to a running cluster")


@kafka_app.command("fetch")
def kafka_fetch() -> None:
    """Fetch the Kafka broker jars with mvn into the cache (once)."""
    from nova.kafka.launcher import fetch_kafka

    settings = _settings()
    if settings.external_kafka:
        typer.echo(f"KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers}: no local broker needed")
        return

    def run() -> None:
        lib = fetch_kafka(settings)
        typer.echo(f"Kafka {settings.kafka_version} jars in {lib}")

    _guard(run)


@kafka_app.command("start")
def kafka_start() -> None:
    """Start the broker in the background; returns once it answers (topics and ACLs created)."""
    from nova.kafka.admin import provision
    from nova.kafka.launcher import Broker

    settings = _settings()
    if settings.external_kafka:
        _fail(
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

    _guard(run)


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the background broker."""
    from nova.kafka.launcher import Broker

    stopped = Broker(_settings()).stop()
    typer.echo("Kafka stopped" if stopped else "no local broker was running")


@kafka_app.command("status")
def kafka_status() -> None:
    """Say whether the broker runs and answers."""
    from nova.kafka.admin import broker_answers
    from nova.kafka.launcher import Broker

    settings = _settings()
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

    settings = _settings()
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

    _guard(run)


@kafka_app.command("acls")
def kafka_acls() -> None:
    """Print the ACLs of NOVA_TOPIC_PREFIX as kafka-acls commands (for a cluster you manage)."""
    from nova.kafka.acls import PatternType, ResourceType, bindings

    settings = _settings()
    kind = {ResourceType.TOPIC: "--topic", ResourceType.GROUP: "--group"}
    for b in bindings(settings):
        pattern = " --resource-pattern-type prefixed" if b.pattern is PatternType.PREFIXED else ""
        typer.echo(
            f"kafka-acls.sh --bootstrap-server {settings.bootstrap_servers} --add "
            f"--allow-principal {b.principal} --operation {b.operation.name.capitalize()} "
            f"{kind[b.resource_type]} {b.resource_name}{pattern}"
        )


@app.command()
def worker() -> None:
    """Run the seven lane agents (a Faust worker)."""
    from streams.worker import run_worker

    settings = _settings()
    _guard(lambda: run_worker(settings))  # a guard that cannot be built: one line, exit 2


@app.command()
def gateway() -> None:
    """Run the HTTP gateway (and the ClickHouse sink) on NOVA_GATEWAY_PORT."""
    from gateway.app import serve

    settings = _settings()
    _guard(lambda: asyncio.run(serve(settings)))  # a guard that cannot be built: one line, exit 2


@app.command()
def up() -> None:
    """Run the whole stack in the foreground on embedded defaults, restarting a worker or broker
    that dies; Ctrl-C stops all of it (exit 1 when a child keeps dying)."""
    from nova.stack import serve_forever

    settings = _settings()
    code = 0

    def run() -> None:
        nonlocal code
        code = asyncio.run(serve_forever(settings))

    _guard(run)
    raise typer.Exit(code)


@app.command()
def demo(
    requests: Annotated[int, typer.Option(help="how many scripted requests to submit")] = 30,
) -> None:
    """Start the stack, submit a scripted batch, print per-lane latency from ClickHouse, stop."""
    from nova.demo import run_demo

    settings = _settings()
    code = 0

    def run() -> None:
        nonlocal code
        code = asyncio.run(run_demo(settings, requests))

    _guard(run)
    raise typer.Exit(code)


@app.command()
def token(
    identity: Annotated[str, typer.Option(help="identity the token acts for")],
    role: Annotated[list[str], typer.Option(help="role(s): member, approver, admin, analyst "
                                                 "(within the identity), operator")],
    sub: Annotated[str | None, typer.Option(help="user id (default: the identity)")] = None,
) -> None:
    """Mint a JWT with the configured NOVA_JWT_SECRET (operators and scripts on this machine)."""
    from datetime import UTC, datetime

    from nova.auth.tokens import issue_token

    settings = _settings()
    _guard(
        lambda: typer.echo(
            issue_token(settings, sub or identity, identity, role, datetime.now(UTC))
        )
    )


# Feature command groups register themselves here, one line each.
from nova import cli_analytics as _cli_analytics  # noqa: E402  (sql, report, replay)
from nova import cli_audit as _cli_audit  # noqa: E402  (audit verify)
from nova import cli_entities as _cli_entities  # noqa: E402  (keys, identities)
from nova import cli_llm as _cli_llm  # noqa: E402  (fake-llm)

for _module in (_cli_entities, _cli_analytics, _cli_audit, _cli_llm):
    _module.register(app)


def main() -> None:
    app(prog_name="nova")


if __name__ == "__main__":
    main()
