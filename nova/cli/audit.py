"""Command group ``nova audit``: verify the hash-chained audit topic and its signatures."""

from __future__ import annotations

import asyncio

import typer


def register(app: typer.Typer) -> None:
    """Add this group's commands to the ``nova`` app."""
    audit_app = typer.Typer(help="The hash-chained audit topic.", no_args_is_help=True)
    app.add_typer(audit_app, name="audit")

    @audit_app.command("verify")
    def verify() -> None:
        """Walk the audit topic from the start; exit 1 naming the first broken link.

        Then check every decision and entity change against the gateway's public key: each
        one that is not the gateway's is listed with where it was audited, and one that was
        never audited (or signatures that could not be checked) is a failure too.
        """
        from aiokafka.errors import KafkaError

        from nova.audit.verify import verify_audit
        from nova.cli.common import KAFKA_FIX, cli_settings, fail
        from nova.errors import NovaError, one_line

        # exit 1 says the chain is broken: a bad setting or a broker away is 2
        settings = cli_settings().as_client("tools")  # reads the topics, writes none
        try:
            result = asyncio.run(verify_audit(settings))
        except (NovaError, OSError, KafkaError) as exc:
            fail(f"cannot read the audit topic ({one_line(exc)}); is Kafka running? {KAFKA_FIX}")
        report = result.report
        typer.echo(f"checked {report.checked} audit records in {result.partitions} partitions")
        if report.ok:
            typer.echo("audit chain intact")
        for brk in report.breaks:
            typer.echo(
                f"BROKEN: partition {brk.partition}, offset {brk.offset}: {brk.reason}", err=True
            )
        if result.unchecked is not None:
            typer.echo(f"SIGNATURES NOT CHECKED: {result.unchecked}", err=True)
        else:
            typer.echo(f"checked the signatures of {result.signed_checked} decisions, expiries "
                       "and entity changes")
        for untrusted in result.untrusted:
            label = "REJECTED" if untrusted.audited_at is not None else "UNTRUSTED"
            typer.echo(f"{label}: {untrusted}", err=untrusted.audited_at is None)
        if not result.ok:
            raise typer.Exit(1)
