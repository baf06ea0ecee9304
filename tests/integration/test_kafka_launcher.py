"""The project's own broker launcher, driven the way a newcomer drives it: ``nova kafka …``.

Each test runs the real CLI in a subprocess with its own NOVA_DATA_DIR and free ports, so it
never touches the session broker or a developer's running broker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nova.kafka.launcher import free_port
from nova.settings import load_settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus any Nova or Kafka configuration, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NOVA_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(extra)
    return env


def nova(env: dict[str, str], *args: str, timeout_s: float = 120,
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nova", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout_s, check=False)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (our data dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.fixture
def broker_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    data_dir = tmp_path / "nova-data"
    env = clean_env(NOVA_DATA_DIR=str(data_dir), NOVA_KAFKA_PORT=str(free_port()),
                    NOVA_KAFKA_CONTROLLER_PORT=str(free_port()))
    yield env
    # Whatever happened in the test, leave no broker behind (only the one this test started).
    pid_file = data_dir / "kafka" / "broker.pid"
    if pid_file.exists():
        nova(env, "kafka", "stop")


def test_start_status_stop_leaves_no_process(broker_env: dict[str, str]):
    data_dir = broker_env["NOVA_DATA_DIR"]
    port = broker_env["NOVA_KAFKA_PORT"]

    down = nova(broker_env, "kafka", "status")
    assert down.returncode == 1
    assert "no local broker is running" in down.stdout

    started = nova(broker_env, "kafka", "start")
    assert started.returncode == 0, started.stderr
    assert f"Kafka ready on 127.0.0.1:{port}" in started.stdout
    pid = int((Path(data_dir) / "kafka" / "broker.pid").read_text())
    assert alive(pid)

    up = nova(broker_env, "kafka", "status")
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"broker pid {pid} on 127.0.0.1:{port}: ready" in up.stdout

    again = nova(broker_env, "kafka", "start")  # idempotent: the running broker is reused
    assert again.returncode == 0, again.stderr
    assert int((Path(data_dir) / "kafka" / "broker.pid").read_text()) == pid

    stopped = nova(broker_env, "kafka", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "Kafka stopped" in stopped.stdout
    assert not alive(pid)
    assert processes_mentioning(data_dir) == []
    assert not (Path(data_dir) / "kafka" / "broker.pid").exists()

    after = nova(broker_env, "kafka", "status")
    assert after.returncode == 1
    assert "no local broker is running" in after.stdout


@pytest.mark.parametrize(
    ("command", "cached_jars"),
    [("fetch", False), ("start", False), ("start", True)],
    ids=["fetch-no-mvn", "start-no-mvn", "start-cached-jars-no-java"],
)
def test_missing_java_or_maven_is_one_line_naming_the_fixes(
    tmp_path: Path, command: str, cached_jars: bool,
):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    extra = {"PATH": str(empty_bin), "NOVA_DATA_DIR": str(tmp_path / "data"),
             "NOVA_KAFKA_PORT": str(free_port()), "NOVA_KAFKA_CONTROLLER_PORT": str(free_port())}
    cache = tmp_path / "cache"
    extra["NOVA_CACHE_DIR"] = str(cache)
    if cached_jars:  # as after `nova kafka fetch`: mvn is no longer needed, java still is
        lib = cache / "kafka" / load_settings().kafka_version / "lib"
        lib.mkdir(parents=True)
        (lib / ".complete").write_text("fetched")
    result = nova(clean_env(**extra), "kafka", command, timeout_s=60)

    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    message = lines[0]
    assert message.startswith("nova: `")
    assert ("`java` not found" if cached_jars else "`mvn` not found") in message
    for fix in ("Java 17+", "Maven", "KAFKA_BOOTSTRAP_SERVERS", "docker compose up"):
        assert fix in message
    assert "Traceback" not in result.stderr
