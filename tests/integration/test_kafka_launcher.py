"""The project's own broker launcher, driven the way a newcomer drives it: ``nova kafka …``.

Each test runs the real CLI in a subprocess with its own NOVA_DATA_DIR and free ports, so it
never touches the session broker or a developer's running broker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from nova.kafka.launcher import free_port
from nova.settings import load_settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus any Nova or Kafka configuration, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOVA_", "KAFKA_"))}
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

    # A pid file left by a killed broker, whose pid now belongs to another process (this one).
    pid_file = Path(data_dir) / "kafka" / "broker.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(str(os.getpid()))
    stale = nova(broker_env, "kafka", "status")
    assert stale.returncode == 1
    assert f"no local broker is running (the pid file names pid {os.getpid()}" in stale.stdout
    assert "stale" in stale.stdout

    started = nova(broker_env, "kafka", "start")  # replaces the stale file, waits for nothing
    assert started.returncode == 0, started.stderr
    assert f"Kafka ready on 127.0.0.1:{port}" in started.stdout
    pid = int((Path(data_dir) / "kafka" / "broker.pid").read_text())
    assert alive(pid)
    assert_sasl_only(Path(data_dir) / "kafka", int(port))

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


def assert_sasl_only(home: Path, port: int) -> None:
    """The broker `nova kafka start` runs: credentials private to the user, passwords on no
    command line, and a client without them refused."""
    creds = home / "credentials"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o700
    files = sorted(f.name for f in creds.iterdir())
    assert files == ["nova-admin", "nova-gateway", "nova-tools", "nova-worker"]
    for f in creds.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "server.properties").stat().st_mode) == 0o600
    assert not (home / "format.args").exists()
    for password in (f.read_text() for f in creds.iterdir()):
        assert processes_mentioning(password) == []
    properties = (home / "server.properties").read_text()
    assert "super.users=User:nova-admin\n" in properties
    assert "allow.everyone.if.no.acl.found=false" in properties
    assert ":PLAINTEXT" not in properties

    async def plain_client() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{port}",
                                    request_timeout_ms=5000)
        try:
            await asyncio.wait_for(producer.start(), 20)
        finally:
            await producer.stop()

    with pytest.raises((KafkaError, TimeoutError)):
        asyncio.run(plain_client())


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_nova_up_runs_the_sasl_broker_and_serves_a_request(tmp_path: Path) -> None:
    """`nova up` as a newcomer runs it: the broker refuses a client without credentials, while
    the gateway (nova-gateway) and the worker (nova-worker) carry a request end to end; Ctrl-C
    (SIGINT to its process group, as a terminal sends it) stops it all cleanly: exit 0, no
    traceback, no unclosed client, no process left."""
    data_dir = tmp_path / "nova-data"
    kafka_port, gateway_port = free_port(), free_port()
    env = clean_env(NOVA_DATA_DIR=str(data_dir), NOVA_KAFKA_PORT=str(kafka_port),
                    NOVA_KAFKA_CONTROLLER_PORT=str(free_port()),
                    NOVA_GATEWAY_PORT=str(gateway_port))
    for key in [k for k in env if k.endswith("_API_KEY")]:
        del env[key]  # the fake providers, whatever the developer's shell holds
    # Its output goes to a file: a pipe nobody reads while polling would fill up and block
    # `nova up`, and would be left open for the garbage collector to close.
    log_path = tmp_path / "nova-up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen([sys.executable, "-m", "nova", "up"], cwd=REPO, env=env,
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True)  # its own process group, as in a terminal
    children: list[int] = []
    try:
        url = f"http://127.0.0.1:{gateway_port}"
        deadline = time.monotonic() + 180
        while True:
            assert up.poll() is None, log_path.read_text(errors="replace")[-3000:]
            try:
                if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "nova up did not become ready"
            time.sleep(0.5)
        assert_sasl_only(data_dir / "kafka", kafka_port)

        token = nova(env, "token", "--identity", "identity-up", "--role", "member")
        assert token.returncode == 0, token.stderr
        r = httpx.post(f"{url}/api/v2/nova/requests", timeout=60,
                       headers={"Authorization": f"Bearer {token.stdout.strip()}"},
                       json={"prompt": "Summarise this thread", "wait_ms": 30_000})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "completed", r.text
        children = children_of(up.pid)  # the broker and the worker
        assert len(children) == 2, children
    finally:
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C
        try:
            code = up.wait(timeout=10)  # nova up stops within 10 s
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait(10)
            raise
    output = log_path.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output
    assert "Unclosed" not in output, output
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    assert processes_mentioning(str(data_dir)) == []


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
