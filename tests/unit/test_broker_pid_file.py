"""A broker's pid file counts only while its pid is this data dir's live broker.

A SIGKILLed broker leaves its pid file behind; the pid may then be an unreaped zombie or, later,
an unrelated process that got the same number. ``nova kafka start`` must not wait on either,
``nova kafka status`` must not call either a broker, and ``nova kafka stop`` must not signal one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nova.kafka.launcher import Broker, BrokerLayout, runs_broker
from nova.settings import load_settings


@pytest.fixture
def broker(tmp_path: Path) -> Broker:
    layout = BrokerLayout(home=tmp_path / "kafka", port=9, controller_port=10)
    layout.home.mkdir()
    return Broker(load_settings(data_dir=tmp_path), layout)


def lookalike(*argv: str) -> subprocess.Popen[bytes]:
    """A process whose command line reads like a broker's (it only sleeps)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def test_the_live_broker_of_this_data_dir_is_running(
    broker: Broker, processes: list[subprocess.Popen[bytes]],
) -> None:
    proc = lookalike("kafka.Kafka", str(broker.layout.properties))
    processes.append(proc)
    broker.layout.pid_file.write_text(str(proc.pid))
    assert broker.running_pid() == proc.pid


def test_a_zombie_broker_is_not_running(
    broker: Broker, processes: list[subprocess.Popen[bytes]],
) -> None:
    proc = lookalike("kafka.Kafka", str(broker.layout.properties))
    processes.append(proc)
    broker.layout.pid_file.write_text(str(proc.pid))
    os.kill(proc.pid, signal.SIGKILL)
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
    assert not runs_broker(proc.pid, broker.layout.properties)
    assert broker.running_pid() is None
    assert broker.recorded_pid() == proc.pid  # what `nova kafka status` reports as stale


def test_a_reused_pid_is_not_the_broker(
    broker: Broker, processes: list[subprocess.Popen[bytes]],
) -> None:
    other = lookalike("kafka.Kafka", "/elsewhere/server.properties")
    processes.append(other)
    broker.layout.pid_file.write_text(str(other.pid))
    assert broker.running_pid() is None
    assert broker.stop() is False  # and it is not signalled
    assert other.poll() is None
    assert not broker.layout.pid_file.exists()
