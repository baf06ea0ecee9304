"""A user's problem on the command line is one line naming the fix and exit 2, never a traceback.

A table over every ``nova`` command (a new command fails the first test until it has a row):
each is run as a user would, in a clean environment of its own, with a bad setting, with a
broker that does not answer and with a ClickHouse server that does not answer (where it uses
them). Exit 1 keeps its own meaning: ``nova audit verify`` says the chain is broken (tested in
``tests/integration/test_audit_verify.py``), ``nova kafka status`` that the broker does not
answer; neither may be what a bad setting or an absent broker produces elsewhere.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest
import typer
from typer.testing import CliRunner

from nova.cli import app
from nova.settings import load_settings, settings_problem

Problem = Literal["setting", "kafka", "clickhouse", "port", "gateway port"]


@dataclass(frozen=True)
class Row:
    """A command's arguments and the problems it must turn into one line (exit 2)."""

    args: tuple[str, ...] = ()
    problems: frozenset[Problem] = frozenset({"setting"})
    kafka_exit: int = 2  # what an unreachable broker ends with (status answers 1: "not running")


KAFKA: frozenset[Problem] = frozenset({"setting", "kafka"})
CLICKHOUSE: frozenset[Problem] = frozenset({"setting", "clickhouse"})
PORT: frozenset[Problem] = frozenset({"port"})
GATEWAY_PORT: frozenset[Problem] = frozenset({"gateway port"})  # NOVA_GATEWAY_PORT in use
COMMANDS: dict[str, Row] = {
    "kafka fetch": Row(),  # with KAFKA_BOOTSTRAP_SERVERS it has nothing to do: not a problem
    "kafka start": Row(problems=KAFKA),  # refuses to start a broker beside an external one
    "kafka stop": Row(),
    "kafka status": Row(problems=KAFKA, kafka_exit=1),
    "kafka provision": Row(problems=KAFKA),
    "kafka acls": Row(),  # prints commands, connects to nothing
    "worker": Row(problems=KAFKA),
    "gateway": Row(problems=KAFKA),  # ClickHouse: tests/integration/test_startup_refusals.py
    "up": Row(problems=KAFKA | GATEWAY_PORT),
    "demo": Row(problems=KAFKA | GATEWAY_PORT),
    "token": Row(("--identity", "identity-x", "--role", "member")),
    "sql": Row(("SELECT 1",), CLICKHOUSE),
    "report": Row(problems=CLICKHOUSE),
    "replay": Row(problems=KAFKA | CLICKHOUSE),
    "fake-llm": Row(("--port", "{busy}"), PORT),  # reads no settings
    "keys create": Row(("--identity", "identity-x", "--role", "member"), KAFKA),
    "keys signing": Row(problems=frozenset()),  # prints a fresh key pair: reads no settings
    "entities adopt": Row(problems=KAFKA),
    "audit verify": Row(problems=KAFKA),
}
NAMED: dict[Problem, tuple[str, ...]] = {  # what the line must name (any one of them)
    "setting": ("NOVA_TOPIC_PARTITIONS='abc'",),
    "kafka": ("nova kafka start", "KAFKA_BOOTSTRAP_SERVERS"),
    "clickhouse": ("NOVA_CLICKHOUSE_DSN",),
    "port": ("--port",),
    "gateway port": ("NOVA_GATEWAY_PORT",),
}


def leaf_commands(group: Any, prefix: str = "") -> Iterator[str]:
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer's own click, not click's classes)
            yield from leaf_commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nova(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m nova ARGS`` as a user runs it, in a clean environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NOVA_", "KAFKA_"))}
    return subprocess.run(
        [sys.executable, "-m", "nova", *args], env={**clean, **env},
        capture_output=True, text=True, timeout=120, check=False,
    )


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def run_with(command: str, problem: Problem, busy: int, data_dir: str) -> Outcome:
    """The command in this process (an interpreter per case would cost ~2 s of CPU each), in
    an environment without the developer's NOVA_*/KAFKA_* variables or provider keys; an
    exception that escapes the command (a traceback for the user) is kept to fail the case."""
    row = COMMANDS[command]
    args = [a.replace("{busy}", str(busy)) for a in row.args]
    problem_env = {
        "setting": {"NOVA_TOPIC_PARTITIONS": "abc"},
        "kafka": {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"},
        "clickhouse": {"NOVA_CLICKHOUSE_DSN": f"http://127.0.0.1:{free_port()}"},
        "port": {},
        "gateway port": {"NOVA_GATEWAY_PORT": str(busy)},
    }[problem]
    own = {"NOVA_DATA_DIR": data_dir, "NOVA_GATEWAY_PORT": str(free_port()),
           "NOVA_KAFKA_PORT": str(free_port())}
    return invoke([*command.split(), *args], {**own, **problem_env})


def invoke(args: list[str], env: dict[str, str]) -> Outcome:
    unset: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(("NOVA_", "KAFKA_")) or k.endswith("_API_KEY")
    }
    result = CliRunner().invoke(app, args, env={**unset, **env})
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return Outcome(result.exit_code, result.stdout, stderr)


CASES = [(c, p) for c, row in COMMANDS.items() for p in sorted(row.problems)]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


def test_every_command_has_a_row():
    assert set(leaf_commands(typer.main.get_command(app))) == set(COMMANDS)


@pytest.mark.parametrize(("command", "problem"), CASES)
def test_a_problem_the_user_can_fix_is_one_line_naming_the_fix(command, problem, busy_port,
                                                               tmp_path):
    done = run_with(command, problem, busy_port, str(tmp_path))
    expected = COMMANDS[command].kafka_exit if problem == "kafka" else 2
    assert done.returncode == expected, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert "Unclosed" not in done.stderr, done.stderr
    assert "Unable connect" not in done.stderr, done.stderr  # aiokafka's own log line
    if expected == 1:  # `nova kafka status` answers on stdout: the broker does not answer
        assert "does not answer" in done.stdout, done.stdout
        return
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("nova:")]
    assert len(lines) == 1, done.stderr
    assert lines[0] == done.stderr.strip().splitlines()[-1], done.stderr
    assert any(name in lines[0] for name in NAMED[problem]), lines[0]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"NOVA_LOG_LEVEL": "loud"}, "NOVA_LOG_LEVEL='loud'"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
         "KAFKA_SECURITY_PROTOCOL='TLS'"),
        ({"KAFKA_SASL_USERNAME": "x"}, "set KAFKA_BOOTSTRAP_SERVERS"),
    ],
)
def test_audit_verify_names_other_bad_settings_in_one_line_and_exits_2(env, named, tmp_path):
    done = invoke(["audit", "verify"], {"NOVA_DATA_DIR": str(tmp_path), **env})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("nova:")]
    assert len(lines) == 1
    assert named in lines[0]


def test_as_a_user_runs_it_a_bad_setting_is_one_line_and_exit_2(tmp_path):
    """The same through ``python -m nova``, so nothing (logging, the interpreter's own hooks)
    differs from what a user sees."""
    done = nova("audit", "verify", NOVA_TOPIC_PARTITIONS="abc", NOVA_DATA_DIR=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"nova: {settings_problem(_invalid_partitions())}"]


def _invalid_partitions() -> ValueError:
    try:
        load_settings(topic_partitions="abc")
    except ValueError as exc:
        return exc
    raise AssertionError("NOVA_TOPIC_PARTITIONS=abc was accepted")


def test_settings_problem_names_every_invalid_variable():
    with pytest.raises(ValueError, match="validation error") as caught:
        load_settings(topic_partitions="x", log_level="loud")
    line = settings_problem(caught.value)
    assert "\n" not in line
    assert "NOVA_TOPIC_PARTITIONS='x'" in line
    assert "NOVA_LOG_LEVEL='loud'" in line


def test_a_broker_that_accepts_connections_but_never_answers_is_one_line_and_exit_2(tmp_path):
    """A listening socket that never replies (a hung broker, a wrong service on the port): the
    command does not hang; it gives up within its Kafka request timeout (aiokafka's 40 s;
    ``nova()``'s 120 s bound fails the test otherwise) with the one line and exit 2."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshakes; nothing ever reads or writes
        done = nova("kafka", "provision", NOVA_DATA_DIR=str(tmp_path),
                    KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{silent.getsockname()[1]}")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert "Unclosed" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("nova: Kafka does not answer"), lines[0]
    assert "nova kafka start" in lines[0]
