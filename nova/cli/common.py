"""What every command group shares: the settings it runs with and the one-line failure.

Errors a user can fix print one line naming the fix and exit 2; nothing prints a traceback for
a configuration problem: a bad setting, a broker or a ClickHouse server that does not answer, a
port in use (``tests/unit/test_cli_errors.py`` runs every command against each). Exit 1 keeps
its meaning per command (``nova audit verify``: the chain is broken; ``nova kafka status``: the
broker does not answer). The two guards differ on purpose: the process and admin commands
turn Nova's errors and an unreachable broker into that line, the analytics commands (which
read ClickHouse, not Kafka) turn Nova's errors and bad values (a period, a timestamp) into it
and hand back what the guarded call returned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NoReturn

import typer

from nova.errors import ConfigError, LauncherError, NovaError, one_line
from nova.settings import Settings, load_settings, settings_problem


def fail(message: str) -> NoReturn:
    """Print ``nova: message`` on stderr and exit 2."""
    typer.echo(f"nova: {message}", err=True)
    raise typer.Exit(2)


def cli_settings() -> Settings:
    """The settings from the environment; a bad one is one line naming the variable."""
    from nova.kafka import quiet_kafka_client

    try:
        settings = load_settings()
    except ValueError as exc:
        fail(settings_problem(exc))
    quiet_kafka_client(settings)  # a broker that does not answer is our one line, not aiokafka's
    if settings.log_level != "debug":  # likewise a ClickHouse server (it logs before raising)
        logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)
    return settings


KAFKA_FIX = ("start it with `nova kafka start` or `nova up`, or set KAFKA_BOOTSTRAP_SERVERS to a "
             "running cluster")


def guard(fn: Callable[[], object]) -> None:
    """Run ``fn()``, turning Nova's own errors, and a broker that cannot be reached, into
    one-line messages (exit 2)."""
    from aiokafka.errors import KafkaError

    try:
        fn()
    except (ConfigError, LauncherError) as exc:
        fail(str(exc))
    except NovaError as exc:
        fail(f"{type(exc).__name__}: {exc}")
    except (KafkaError, ConnectionError) as exc:
        fail(f"Kafka does not answer ({one_line(exc)}): {KAFKA_FIX}")


def guard_query(fn: Callable[[], Any]) -> Any:
    """``fn()``'s result; Nova's own errors and bad values become one line and exit 2."""
    try:
        return fn()
    except NovaError as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc).splitlines()[0])
