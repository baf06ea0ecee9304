"""Run a real single-node KRaft Apache Kafka broker from the Maven Central artifacts.

No Docker engine runs on our machines, so Nova starts its own broker: ``mvn`` copies
``org.apache.kafka:kafka_2.13`` and its runtime dependencies once into a cache outside the
repository (``<cache_dir>/kafka/<version>/lib``), storage is formatted once under
``<data_dir>/kafka``, and the broker runs on the machine's Java with a bounded heap.
A start returns only when the broker answers Kafka requests, so callers never race it.

The broker only speaks SASL: clients log in with SCRAM-SHA-512 on its one listener, and the
broker's own connection to its KRaft controller uses SASL/PLAIN with the admin password (KRaft
cannot check SCRAM on the controller listener: those credentials live in the metadata the
controller serves). Credentials for every principal are generated before the first format
(:mod:`nova.kafka.credentials`) and written into the metadata with ``--add-scram``; the
``StandardAuthorizer`` allows nothing without an ACL, and only ``nova-admin`` is a super user.
``server.properties`` holds the admin password, so it is written readable by the user only.

With ``KAFKA_BOOTSTRAP_SERVERS`` set, nothing here runs: that cluster is used as is.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from nova.errors import LauncherError
from nova.kafka import credentials
from nova.settings import KafkaClient, Settings

MISSING_TOOL_HINT = (
    "install Java 17+ and Maven (e.g. `apt-get install openjdk-17-jre-headless maven`), "
    "or set KAFKA_BOOTSTRAP_SERVERS to an existing cluster, or run `docker compose up`"
)

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>nova.local</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>2.0.16</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>2.24.3</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
"""


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise LauncherError(f"`{tool}` not found: {MISSING_TOOL_HINT}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def fetch_kafka(settings: Settings) -> Path:
    """Copy the broker's jars into the cache once; return the lib directory."""
    lib = settings.cache_dir / "kafka" / settings.kafka_version / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    mvn = _require("mvn")
    _require("java")
    lib.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nova-kafka-pom-") as tmp:
        (Path(tmp) / "pom.xml").write_text(_POM.format(version=settings.kafka_version))
        cmd = [
            mvn,
            "-q",
            "-B",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={lib}",
            "-DincludeScope=runtime",
        ]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise LauncherError(
            f"mvn could not fetch org.apache.kafka:kafka_2.13:{settings.kafka_version}:\n"
            + "\n".join(tail)
        )
    if not any(lib.glob("kafka_2.13-*.jar")):
        raise LauncherError(f"mvn finished but no kafka_2.13 jar is in {lib}")
    marker.write_text(settings.kafka_version)
    return lib


@dataclass(frozen=True)
class BrokerLayout:
    """Where one broker keeps its files and which ports it listens on."""

    home: Path
    port: int
    controller_port: int
    credentials_dir: Path | None = None  # default: <home>/credentials

    @property
    def log_dirs(self) -> Path:
        return self.home / "log"

    @property
    def properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def stdout_log(self) -> Path:
        return self.home / "broker.out"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def credentials(self) -> Path:
        """The principals' password files (:mod:`nova.kafka.credentials`)."""
        return self.credentials_dir or self.home / "credentials"

    @classmethod
    def from_settings(cls, settings: Settings) -> BrokerLayout:
        port = settings.kafka_port
        return cls(
            home=settings.data_dir / "kafka",
            port=port,
            controller_port=settings.kafka_controller_port or port + 1,
            credentials_dir=settings.kafka_credentials_dir,
        )


ADMIN: KafkaClient = "admin"


def _server_properties(layout: BrokerLayout, admin_password: str) -> str:
    admin = credentials.username(ADMIN)
    scram_login = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{admin}" password="{admin_password}";'
    )
    plain_login = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{admin}" password="{admin_password}" user_{admin}="{admin_password}";'
    )
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{layout.controller_port}",
            f"listeners=BROKER://127.0.0.1:{layout.port},CONTROLLER://127.0.0.1:{layout.controller_port}",
            f"advertised.listeners=BROKER://127.0.0.1:{layout.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=BROKER",
            "listener.security.protocol.map=BROKER:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
            "listener.name.broker.sasl.enabled.mechanisms=SCRAM-SHA-512",
            f"listener.name.broker.scram-sha-512.sasl.jaas.config={scram_login}",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={plain_login}",
            "sasl.mechanism.controller.protocol=PLAIN",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{admin}",
            "allow.everyone.if.no.acl.found=false",
            f"log.dirs={layout.log_dirs}",
            "num.partitions=4",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.retention.check.interval.ms=60000",
            "",
        ]
    )


def _cluster_id() -> str:
    """A KRaft cluster id (base64url of 16 random bytes). One starting with "-" would be read
    as an option by the storage tool's argument parser, so draw again in that case."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if cid[0].isalnum():
            return cid


def _java_cmd(lib: Path, layout: BrokerLayout, heap: str, jvm_options: str, main: str,
              *args: str) -> list[str]:
    log4j = layout.home / "log4j2.yaml"
    return [
        _require("java"),
        # The heap sized once, as Kafka's own start script does (-Xms = -Xmx): a heap that
        # grows under load is no leak, but from outside it looked like one (make bench-soak:
        # the broker's RSS +30% in five minutes, one step as G1 expanded), and each resize
        # is a pause.
        f"-Xmx{heap}",
        f"-Xms{heap}",
        *shlex.split(jvm_options),
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{lib}/*",
        main,
        *args,
    ]


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user only (also when it existed before)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def prepare(settings: Settings, layout: BrokerLayout) -> Path:
    """Fetch jars, write configuration, and format storage (with credentials) if it never was."""
    lib = fetch_kafka(settings)
    layout.home.mkdir(parents=True, exist_ok=True)
    formatted = (layout.log_dirs / "meta.properties").exists()
    if formatted and not credentials.exists(layout.credentials):
        raise LauncherError(
            f"the Kafka storage in {layout.log_dirs} was formatted before Nova's broker required "
            f"SASL, and has no credentials in {layout.credentials}: stop Nova and delete "
            f"{layout.log_dirs} (its topics are lost) so that the next start formats it with them"
        )
    passwords = credentials.generate(layout.credentials)
    _write_private(layout.properties, _server_properties(layout, passwords[ADMIN]))
    (layout.home / "log4j2.yaml").write_text(_LOG4J2)
    if not formatted:
        scram = [
            arg
            for role, password in passwords.items()
            for arg in ("--add-scram",
                        f"SCRAM-SHA-512=[name={credentials.username(role)},password={password}]")
        ]
        # The passwords go through a private argument file (``java @file``), not the command
        # line, which every user of the machine can read in /proc while the tool runs.
        argfile = layout.home / "format.args"
        _write_private(argfile, "\n".join(
            ["kafka.tools.StorageTool", "format", "-t", _cluster_id(),
             "-c", str(layout.properties), *scram, ""]))
        try:
            cmd = _java_cmd(lib, layout, "256m", settings.kafka_jvm_options, f"@{argfile}")
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        finally:
            argfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise LauncherError(f"formatting Kafka storage failed: {proc.stderr.strip()[-500:]}")
    return lib


def runs_broker(pid: int, properties: Path) -> bool:
    """True while ``pid`` is a live (not zombie) ``kafka.Kafka`` on ``properties``."""
    proc = Path("/proc") / str(pid)
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and b"kafka.Kafka" in argv and str(properties).encode() in argv


def _die_with_parent() -> None:
    """Child-side: ask Linux to SIGTERM us when the parent dies, so nothing is left behind."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class Broker:
    """One local broker process. ``start(attached=True)`` ties its life to ours."""

    def __init__(self, settings: Settings, layout: BrokerLayout | None = None) -> None:
        self.settings = settings
        self.layout = layout or BrokerLayout.from_settings(settings)
        self.process: subprocess.Popen[bytes] | None = None
        self._abort = threading.Event()

    def abort_start(self) -> None:
        """Make a :meth:`start` waiting for readiness in another thread give up now."""
        self._abort.set()

    @property
    def admin_settings(self) -> Settings:
        """``settings`` for a client of this broker logging in as ``nova-admin``."""
        return self.client_settings(ADMIN)

    def client_settings(self, role: KafkaClient) -> Settings:
        """``settings`` for a client of this broker logging in as ``role``."""
        return self.settings.model_copy(update={
            "kafka_bootstrap_servers": self.layout.bootstrap,
            "kafka_credentials_dir": self.layout.credentials,
            "kafka_client": role,
        })

    def recorded_pid(self) -> int | None:
        """The pid the pid file names, whether or not that process is still our broker."""
        try:
            return int(self.layout.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def running_pid(self) -> int | None:
        """The pid of the broker that owns this data dir, if it runs.

        A pid file outlives its broker when the broker was killed: the pid may then be a zombie
        nobody reaped yet, or a new, unrelated process that got the same number. Only a live
        (not zombie) process running ``kafka.Kafka`` on this data dir's properties counts.
        """
        pid = self.recorded_pid()
        if pid is None or not runs_broker(pid, self.layout.properties):
            return None
        return pid

    def start(self, *, attached: bool, timeout_s: float = 90.0) -> None:
        """Start the broker and return once it answers (or reuse the one already running).

        The broker always runs in a session of its own, so a terminal's Ctrl-C does not reach
        it: whoever started it stops it, after its clients. ``attached``: the kernel stops it
        when the starting thread's process dies; detached, it outlives us (``nova kafka start``).
        """
        self._abort.clear()
        pid = self.running_pid()
        if pid is not None:
            if self._ready(timeout_s):
                return
            raise LauncherError(f"a broker (pid {pid}) owns {self.layout.home} but does not answer")
        self.layout.pid_file.unlink(missing_ok=True)  # stale: its broker is gone
        if port_open(self.layout.port):
            raise LauncherError(
                f"port {self.layout.port} is taken by another program: set NOVA_KAFKA_PORT to a "
                "free port, or KAFKA_BOOTSTRAP_SERVERS to use the broker already there"
            )
        lib = prepare(self.settings, self.layout)
        cmd = _java_cmd(
            lib, self.layout, self.settings.kafka_heap, self.settings.kafka_jvm_options,
            "kafka.Kafka", str(self.layout.properties),
        )
        out = self.layout.stdout_log.open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if attached else None,
        )
        out.close()
        self.layout.pid_file.write_text(str(self.process.pid))
        if not self._ready(timeout_s):
            self.stop()
            tail = self.layout.stdout_log.read_text(errors="replace").splitlines()[-20:]
            raise LauncherError("Kafka broker did not become ready:\n" + "\n".join(tail))

    def _ready(self, timeout_s: float) -> bool:
        from nova.kafka.admin import broker_answers

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._abort.is_set():
                return False
            if self.process is not None and self.process.poll() is not None:
                return False
            if port_open(self.layout.port) and broker_answers(self.admin_settings):
                return True
            time.sleep(0.3)
        return False

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM (clean shutdown), then SIGKILL after ``timeout_s``. True if one was running."""
        if self.process is not None and self.process.poll() is not None:
            pid = None  # ours, already dead and reaped: its pid may be another process's now
        else:
            pid = self.process.pid if self.process is not None else self.running_pid()
        if pid is None:
            self.layout.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None:
                if self.process.poll() is not None:
                    break
            elif not runs_broker(pid, self.layout.properties):
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if self.process is not None:
                self.process.wait(5)
        self.layout.pid_file.unlink(missing_ok=True)
        return True


def main_fetch(settings: Settings) -> None:
    try:
        lib = fetch_kafka(settings)
    except LauncherError as exc:
        print(f"nova: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    print(f"Kafka {settings.kafka_version} jars in {lib}")
