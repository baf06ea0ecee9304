"""One typed, frozen settings object for every Nova process, read from the environment.

Every component receives a :class:`Settings` instance; nothing reads ``os.environ`` on its own.
``KAFKA_BOOTSTRAP_SERVERS`` keeps its conventional name (no ``NOVA_`` prefix) because tools and
docker images already use it: when set, Nova uses that cluster and starts no broker.
"""

from __future__ import annotations

import os
import shlex
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from nova.domain.http_allow import AllowList, UrlRefused, is_loopback, parse_allow_list

# The principals of Nova's own broker: the launcher, the gateway, the worker, the tools.
KafkaClient = Literal["admin", "gateway", "worker", "tools"]

DEV_JWT_SECRET = "nova-dev-secret-change-me-0123456789abcdef"  # noqa: S105 - refused outside development


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "nova"


def _kafka_alias(name: str) -> AliasChoices:
    """Kafka client settings keep Kafka's own names (``security.protocol`` is
    ``KAFKA_SECURITY_PROTOCOL``), like ``KAFKA_BOOTSTRAP_SERVERS``; ``NOVA_KAFKA_…`` works too."""
    return AliasChoices(f"KAFKA_{name.upper()}", f"NOVA_KAFKA_{name.upper()}")


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nova"


class Settings(BaseSettings):
    """Nova's configuration. Environment variables are ``NOVA_<FIELD>`` unless aliased."""

    model_config = SettingsConfigDict(env_prefix="NOVA_", frozen=True, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(default_factory=_default_data_dir)
    cache_dir: Path = Field(default_factory=_default_cache_dir)

    # Kafka
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "NOVA_KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_port: int = 9092
    kafka_controller_port: int | None = None
    kafka_version: str = "4.1.1"
    kafka_heap: str = "512m"
    # The JVM options of Nova's own broker besides its heap. The JIT stops at C1: on a small
    # machine C2's compiler threads took a fifth to a quarter of a core for the broker's first
    # minutes, and the broker's CPU per request halved without them (bench/sync.py).
    kafka_jvm_options: str = "-XX:+UseG1GC -XX:TieredStopAtLevel=1"
    topic_prefix: str = "nova"
    topic_partitions: int = 4
    # How long a fetch of the hot-path consumers (the lanes, the gateway's request tracker) may
    # wait on the broker: short, because a long wait delays records that arrive during it.
    kafka_fetch_max_wait_ms: int = Field(default=20, ge=1, le=1500)
    # How long the producers (the worker's, the gateway's) wait to batch records before sending
    # (Kafka's linger.ms).
    kafka_linger_ms: float = Field(default=0.0, ge=0, le=1000)
    # How clients authenticate (``nova.kafka.clients``). On Nova's own broker: always SASL/SCRAM
    # as ``nova-<kafka_client>``, with the password the launcher generated. On an external
    # cluster: Kafka's own client settings below, or PLAINTEXT when none is set.
    kafka_client: KafkaClient = Field(
        default="tools",
        description="the principal this process logs in as on Nova's broker; the gateway, the "
        "worker and the launcher choose their own",
    )
    kafka_credentials_dir: Path | None = Field(
        default=None,
        description="passwords of Nova's broker principals (default <data_dir>/kafka/credentials); "
        "set with KAFKA_BOOTSTRAP_SERVERS to reach a Nova broker started with another data dir",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = (
        Field(default=None, validation_alias=_kafka_alias("security_protocol"))
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", validation_alias=_kafka_alias("sasl_mechanism")
    )
    kafka_sasl_username: str | None = Field(
        default=None, validation_alias=_kafka_alias("sasl_username")
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, validation_alias=_kafka_alias("sasl_password")
    )
    kafka_ssl_cafile: Path | None = Field(default=None, validation_alias=_kafka_alias("ssl_cafile"))
    kafka_ssl_certfile: Path | None = Field(
        default=None, validation_alias=_kafka_alias("ssl_certfile")
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, validation_alias=_kafka_alias("ssl_keyfile")
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, validation_alias=_kafka_alias("ssl_key_password")
    )

    # Processes
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    gateway_rpm_per_identity: float = 600.0
    idempotency_window_s: float = Field(
        default=24 * 3600.0, gt=0,
        description="how long a gateway remembers an Idempotency-Key (gateway.idempotency)",
    )
    default_wait_ms: int = Field(
        default=10_000, ge=0, le=120_000,
        description="how long a submission without wait_ms or a Prefer header waits for its "
        "answer (200 done, 423 held) before it is answered 202 (gateway.prefer)",
    )
    worker_name: str = Field(default_factory=lambda: f"worker-{os.getpid()}")
    worker_instance: str = Field(
        default="0",
        description="stable id of this worker among those of one host (static group membership)",
    )
    workers: int = Field(
        default=1, ge=1, le=64,
        description="how many lane workers `nova up` starts and supervises (one consumer group: "
        "Kafka shares the partitions out among them)",
    )
    worker_stall_s: float = Field(
        default=30.0, gt=0,
        description="a lane partition with records waiting and no progress this long is re-read",
    )
    worker_watchdog_interval_s: float = Field(default=5.0, gt=0)
    worker_session_timeout_s: float = Field(
        default=60.0, ge=10, le=300,
        description="how long the group waits for a silent worker before moving its partitions",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "warning"

    # ClickHouse
    clickhouse_dsn: str | None = None
    clickhouse_database: str = "nova"
    run_sink: bool = True
    sink_batch_size: int = 5000
    # Each flush is one insert per table, a new part each: some 10 ms of CPU apiece on embedded
    # ClickHouse, in the gateway's process. A second keeps analytics about a second behind and
    # cost the gateway 5-8 ms less CPU per sequential request than 0.5 s (bench/sync.py).
    sink_flush_interval_s: float = 1.0

    # Live events (``/api/v2/ws``, gateway.live)
    live_replay_window_s: float = Field(
        default=300.0, gt=0,
        description="how far back a reconnecting client may resume from (gateway.live.hub)",
    )
    live_replay_max: int = Field(default=10_000, ge=1,
                                 description="events a gateway keeps for resuming, at most")
    live_queue_max: int = Field(
        default=1000, ge=100,
        description="events waiting for one client, at most; beyond, it is closed with 4413",
    )
    live_auth_timeout_s: float = Field(default=5.0, gt=0,
                                       description="time a client has to send its auth frame")

    # Alerts that reach people (``gateway.alerts``): webhook deliveries from the gateway
    run_alerts: bool = Field(default=True, description="whether this gateway delivers alerts")
    alert_retries: int = Field(default=5, ge=1, le=20,
                               description="attempts per delivery before it is dead-lettered")
    alert_backoff_s: float = Field(default=1.0, gt=0,
                                   description="wait before the 2nd attempt; doubles, up to 60 s")
    alert_timeout_s: float = Field(default=10.0, gt=0, description="one attempt's time limit")
    alert_commit_interval_s: float = Field(
        default=5.0, gt=0,
        description="how often the dispatcher commits its read position (what it read after "
        "the last commit is read again after a restart; the delivery log prevents repeats)",
    )
    alert_sweep_s: float = Field(default=5.0, gt=0,
                                 description="how often waiting checkpoints are looked at")
    alert_checkpoint_wait_s: float = Field(
        default=900.0, gt=0, description="a checkpoint pending this long is an alert")
    alert_window_s: float = Field(default=300.0, gt=0,
                                  description="the window of error-rate and latency spikes")
    alert_min_calls: int = Field(default=10, ge=1,
                                 description="calls in the window before a spike can be judged")
    alert_error_rate: float = Field(default=0.5, gt=0, le=1,
                                    description="share of failed calls that is a spike")
    alert_latency_ms: float = Field(default=10_000.0, gt=0,
                                    description="p95 latency of successful calls that is a spike")
    alert_private_urls: bool = Field(
        default=False,
        description="identity webhooks may point at loopback or private addresses (SSRF guard; "
        "link-local addresses are refused always)",
    )
    report_schedule: str = Field(
        default="off", pattern=r"^(off|daily|weekly|[1-9][0-9]*s)$",
        description="the cost and latency report on a schedule: off, daily, weekly (Monday "
        "00:00 UTC) or every <N>s; to global webhooks subscribed to 'report' and NOVA_REPORT_DIR",
    )
    report_dir: Path | None = Field(default=None,
                                    description="where scheduled reports are written, if set")

    # Auth
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "nova"
    jwt_audience: str = "nova"
    jwt_ttl_s: int = 3600
    # A session (the refresh token an exchange hands out, ``gateway.sessions``) lives this long
    # from its exchange, whatever its refreshes; the sessions topic keeps records 30 days.
    refresh_ttl_s: int = Field(
        default=7 * 24 * 3600, ge=60, le=29 * 24 * 3600,
        description="lifetime of a session and its refresh tokens, from the exchange that "
        "opened it (at most 29 days: the sessions topic keeps a record 30 days)",
    )
    auth_failures_per_minute: float = Field(
        default=20.0,
        description="failed credential checks a source address or API key id may make a minute "
        "at one gateway (429 with Retry-After beyond; gateway.auth_throttle)",
    )

    # Signed decisions and entity changes (``nova.signing``): the private key only the gateway
    # reads (else generated under data_dir/keys), the public one(s) the worker and tools read.
    signing_key: SecretStr | None = None
    signing_public_key: str | None = None
    signing_trusted_keys: str = ""  # comma-separated older public keys still accepted

    # Governance
    checkpoint_ttl_s: int = 24 * 3600
    checkpoint_sweep_s: float = 2.0
    # How long lane E's and F's tables keep a finished request's entry in memory: as long as a
    # copy of the request may still arrive (streams.retention); waiting entries stay.
    table_keep_s: int = Field(default=600, ge=1)
    table_sweep_s: float = Field(default=10.0, gt=0)
    context_token_budget: int = 2000
    # Lane D asks a ``classifier`` model what the masked prompt orders; it can only raise the
    # risk (streams/second_opinion.py). Off by default: the rules decide alone.
    intent_second_opinion: bool = False
    intent_second_opinion_timeout_s: float = Field(default=5.0, gt=0, le=60)

    # LLM
    llm_fake_url: str | None = None
    # Replaces the packaged providers.yaml (same format); <PROVIDER>_BASE_URL moves one provider.
    providers_file: Path | None = None
    llm_timeout_s: float = 30.0
    # A request whose provider call was under way when its worker died: "fail" answers it
    # failed (a provider is never called twice for one request), "retry" calls again.
    llm_after_crash: Literal["fail", "retry"] = "fail"
    llm_max_in_flight: int = 256
    llm_max_tokens: int = 1024
    llm_probe_interval_s: float = 30.0

    # Agents
    agent_http_allow: str = Field(
        default="",
        description="the endpoints an agent's http_call may reach: comma-separated "
        "https://host[:port][/path-prefix] (http:// for loopback only); empty: http_call is "
        "refused (nova.domain.http_allow)",
    )

    @field_validator("kafka_jvm_options")
    @classmethod
    def _jvm_options_split(cls, value: str) -> str:
        """Options the launcher splits like a shell: an unclosed quote is refused here, by the
        variable's name, rather than when the broker is about to start."""
        try:
            shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"not a list of JVM options ({exc})") from None
        return value

    @field_validator("agent_http_allow")
    @classmethod
    def _http_allow_parses(cls, value: str) -> str:
        """A bad entry is refused at start-up, by the variable's name, not at a tool call."""
        try:
            parse_allow_list(value)
        except UrlRefused as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _workers_have_partitions(self) -> Settings:
        """A worker beyond one per partition would be given nothing to read: refused by name
        rather than left idle."""
        if self.workers > self.topic_partitions:
            raise ValueError(
                f"NOVA_WORKERS={self.workers} is more than NOVA_TOPIC_PARTITIONS="
                f"{self.topic_partitions}: a worker beyond one per partition has nothing to read"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        """The placeholder secret is public: anyone could mint tokens with it. It is refused in
        production and whenever the gateway listens beyond this machine's loopback."""
        if self.jwt_secret.get_secret_value() != DEV_JWT_SECRET:
            return self
        if self.environment == "production":
            raise ValueError(
                "NOVA_JWT_SECRET is the development placeholder; set a real secret in production"
            )
        if not is_loopback(self.gateway_host):
            raise ValueError(
                f"NOVA_GATEWAY_HOST={self.gateway_host} is reachable from other machines: set "
                "NOVA_JWT_SECRET to a real secret (the placeholder is public)"
            )
        return self

    @model_validator(mode="after")
    def _kafka_security_is_coherent(self) -> Settings:
        """Refuse security settings that would be silently ignored or send no credentials."""
        explicit = [
            name for name in ("security_protocol", "sasl_username", "sasl_password",
                              "ssl_cafile", "ssl_certfile", "ssl_keyfile")
            if getattr(self, f"kafka_{name}") is not None
        ]
        if not explicit:
            return self
        names = ", ".join(f"KAFKA_{n.upper()}" for n in explicit)
        if not self.external_kafka:
            raise ValueError(
                f"{names} configure a client of an external cluster: set KAFKA_BOOTSTRAP_SERVERS "
                "too (Nova's own broker always uses the SCRAM credentials it generated)"
            )
        if self.kafka_credentials_dir is not None:
            raise ValueError(
                f"NOVA_KAFKA_CREDENTIALS_DIR and {names} both say how to log in: set one of them"
            )
        protocol = self.kafka_security_protocol or "PLAINTEXT"
        sasl = protocol.startswith("SASL_")
        if sasl and (self.kafka_sasl_username is None or self.kafka_sasl_password is None):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and "
                "KAFKA_SASL_PASSWORD"
            )
        if not sasl and (self.kafka_sasl_username or self.kafka_sasl_password):
            raise ValueError(
                f"KAFKA_SASL_USERNAME/PASSWORD are set but KAFKA_SECURITY_PROTOCOL is {protocol}, "
                "which sends no credentials: set it to SASL_PLAINTEXT or SASL_SSL"
            )
        tls_files = self.kafka_ssl_cafile or self.kafka_ssl_certfile or self.kafka_ssl_keyfile
        if tls_files and not protocol.endswith("SSL"):
            raise ValueError(
                f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL is {protocol}, which does "
                "not use TLS: set it to SSL or SASL_SSL"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together (client TLS)")
        return self

    @property
    def report_period_s(self) -> int | None:
        """The report schedule in seconds, None when off."""
        named = {"off": None, "daily": 86_400, "weekly": 7 * 86_400}
        if self.report_schedule in named:
            return named[self.report_schedule]
        return int(self.report_schedule[:-1])

    @cached_property
    def agent_http_endpoints(self) -> AllowList:
        """``agent_http_allow`` parsed (validated when the settings were read)."""
        return parse_allow_list(self.agent_http_allow)

    @cached_property
    def clickhouse_url(self) -> str:
        """The DSN in force: the configured one, else embedded chdb under the data dir."""
        return self.clickhouse_dsn or f"chdb://{self.data_dir / 'clickhouse'}"

    @property
    def embedded_clickhouse(self) -> bool:
        return self.clickhouse_url.startswith("chdb:")

    @property
    def external_kafka(self) -> bool:
        return bool(self.kafka_bootstrap_servers)

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.kafka_port}"

    @property
    def nova_broker_credentials(self) -> Path | None:
        """The password files of Nova's broker principals, when the broker is Nova's (its own,
        or one reached by address with NOVA_KAFKA_CREDENTIALS_DIR); None for another cluster."""
        if self.kafka_credentials_dir is not None:
            return self.kafka_credentials_dir
        return None if self.external_kafka else self.data_dir / "kafka" / "credentials"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_port}"

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables, for child processes (worker, tests)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            # The gateway's signing key never travels to a child (a worker must not hold it).
            if value is None or name in ("kafka_bootstrap_servers", "signing_key"):
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"NOVA_{name.upper()}"] = str(value)
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap_servers
        if (credentials := self.nova_broker_credentials) is not None:
            # The child reaches this broker by address: tell it where its password is.
            env["NOVA_KAFKA_CREDENTIALS_DIR"] = str(credentials)
        return env

    def as_client(self, role: KafkaClient) -> Settings:
        """These settings for a process that logs in to Nova's broker as ``role``."""
        return self if self.kafka_client == role else self.model_copy(update={"kafka_client": role})

    def topic(self, name: str) -> str:
        """The full Kafka topic name of a logical topic (prefix lets tests isolate runs)."""
        return f"{self.topic_prefix}.{name}"


def settings_problem(exc: ValueError) -> str:
    """One line naming each invalid setting by its environment variable, for a user to fix.

    pydantic's message spans lines and names fields, not the variables a user sets.
    """
    if not isinstance(exc, ValidationError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ")
        if not loc:  # a check across settings: its message names the variables
            problems.append(message)
            continue
        field = Settings.model_fields.get(loc[0])
        if field is None:  # reported under the alias it was read by (KAFKA_SECURITY_PROTOCOL)
            variable = loc[0].upper()
        else:
            alias = field.validation_alias
            names = alias.choices if isinstance(alias, AliasChoices) else None
            variable = str(names[0]) if names else f"NOVA_{loc[0].upper()}"
        given = error.get("input")
        shown = f"={given!r}" if isinstance(given, (str, int, float)) else ""
        problems.append(f"{variable}{shown}: {message}")
    return "invalid settings: " + "; ".join(problems)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides taking precedence."""
    return Settings(**overrides)  # type: ignore[arg-type]
