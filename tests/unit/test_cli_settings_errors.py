"""A user's mistake on the command line is one line naming the fix and exit 2, never a traceback.

Exit 1 of ``nova audit verify`` means the audit chain is broken; a bad setting or an unreachable
broker must not look like that.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nova.settings import load_settings, settings_problem


def nova(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("NOVA_", "KAFKA_"))}
    return subprocess.run(
        [sys.executable, "-m", "nova", *args], env={**clean, **env},
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"NOVA_TOPIC_PARTITIONS": "abc"}, "NOVA_TOPIC_PARTITIONS='abc'"),
        ({"NOVA_LOG_LEVEL": "loud"}, "NOVA_LOG_LEVEL='loud'"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
         "KAFKA_SECURITY_PROTOCOL='TLS'"),
        ({"KAFKA_SASL_USERNAME": "x"}, "set KAFKA_BOOTSTRAP_SERVERS"),
    ],
)
def test_audit_verify_with_a_bad_setting_names_it_in_one_line_and_exits_2(env, named):
    done = nova("audit", "verify", **env)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("nova:")]
    assert len(lines) == 1
    assert named in lines[0]


def test_audit_verify_without_a_broker_is_exit_2_and_no_traceback():
    done = nova("audit", "verify", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "Unclosed" not in done.stderr
    assert "is Kafka running" in done.stderr


@pytest.mark.parametrize("command", [
    ("kafka", "provision"),
    ("keys", "create", "--identity", "identity-x", "--role", "member"),
    ("entities", "adopt"),
    ("replay", "--request", "r-1"),
])
def test_a_command_without_a_broker_says_so_in_one_line_and_exits_2(command, tmp_path):
    done = nova(*command, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1", NOVA_DATA_DIR=str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "Unclosed" not in done.stderr
    assert "Unable connect" not in done.stderr  # aiokafka's own log line
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("nova:")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("nova: Kafka ")
    assert "nova kafka start" in lines[0]


def test_other_commands_name_a_bad_setting_the_same_way():
    done = nova("kafka", "status", NOVA_KAFKA_PORT="ninety")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "NOVA_KAFKA_PORT='ninety'" in done.stderr


def test_settings_problem_names_every_invalid_variable():
    with pytest.raises(ValueError, match="validation error") as caught:
        load_settings(topic_partitions="x", log_level="loud")
    line = settings_problem(caught.value)
    assert "\n" not in line
    assert "NOVA_TOPIC_PARTITIONS='x'" in line
    assert "NOVA_LOG_LEVEL='loud'" in line
