"""How each process logs in to Kafka: one place builds every client, from settings."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import faust
import pytest
from pydantic import ValidationError

from nova.errors import ConfigError
from nova.kafka import credentials
from nova.kafka.clients import client_options, client_security, faust_broker
from nova.settings import KafkaClient, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
CLIENT_CLASSES = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "AIOKafkaClient"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("NOVA_", "KAFKA_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def test_no_kafka_client_is_built_outside_nova_kafka_clients() -> None:
    """A consumer built anywhere else would connect without the process's credentials."""
    offenders = []
    for package in ("nova", "streams", "gateway", "analytics", "schemas", "bench"):
        for path in (REPO / package).rglob("*.py"):
            if path == REPO / "nova" / "kafka" / "clients.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in CLIENT_CLASSES:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
                if name == "App" and any(k.arg == "broker" for k in node.keywords):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} faust.App(broker=)")
    assert offenders == [], "build Kafka clients with nova.kafka.clients: " + ", ".join(offenders)


def own_broker(tmp_path: Path, role: KafkaClient = "tools") -> Settings:
    settings = load_settings(data_dir=tmp_path / "data", kafka_client=role)
    credentials.generate(tmp_path / "data" / "kafka" / "credentials")
    return settings


@pytest.mark.parametrize("role", ["admin", "gateway", "worker", "tools"])
def test_on_novas_own_broker_every_process_logs_in_with_scram_as_its_own_principal(
    tmp_path: Path, role: KafkaClient,
) -> None:
    settings = own_broker(tmp_path, role)
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == f"nova-{role}"
    directory = tmp_path / "data" / "kafka" / "credentials"
    assert options["sasl_plain_password"] == credentials.read_password(directory, role)
    assert client_security(settings).principal == f"User:nova-{role}"


def test_a_process_started_before_the_broker_ever_ran_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nova kafka start"):
        client_options(load_settings(data_dir=tmp_path / "never-started"))


def test_credentials_are_private_to_the_user_and_never_regenerated(tmp_path: Path) -> None:
    directory = tmp_path / "credentials"
    first = credentials.generate(directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for role in credentials.ROLES:
        assert stat.S_IMODE(credentials.password_file(directory, role).stat().st_mode) == 0o600
    assert credentials.generate(directory) == first
    assert len(set(first.values())) == len(first), "one password per principal"


def test_a_child_process_reaches_the_same_broker_as_the_same_kind_of_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``nova up`` spawns the worker with ``to_env``: the child must find its password."""
    parent = own_broker(tmp_path)
    for name, value in parent.to_env().items():
        monkeypatch.setenv(name, value)
    child = Settings().as_client("worker")
    options = client_options(child)
    assert options["bootstrap_servers"] == parent.bootstrap_servers
    assert options["sasl_plain_username"] == "nova-worker"
    assert options["sasl_plain_password"] == client_options(
        parent.as_client("worker"))["sasl_plain_password"]


def test_an_external_cluster_without_security_settings_stays_plaintext() -> None:
    """An open development cluster keeps working as before."""
    options = client_options(load_settings(kafka_bootstrap_servers="dev:9092"))
    assert options == {"bootstrap_servers": "dev:9092", "security_protocol": "PLAINTEXT"}
    assert faust_broker(load_settings(kafka_bootstrap_servers="dev:9092")) == {
        "broker": "kafka://dev:9092", "broker_credentials": None}


def test_kafkas_own_setting_names_map_to_aiokafka_and_faust(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc-nova-worker")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret-s3cret")
    settings = load_settings()
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_username"] == "svc-nova-worker"
    assert options["sasl_plain_password"] == "s3cret-s3cret"
    assert options["ssl_context"] is not None  # the system's CAs verify the brokers
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in repr(client_security(settings))
    credentials_ = faust_broker(settings)["broker_credentials"]
    assert isinstance(credentials_, faust.SASLCredentials)
    assert credentials_.protocol.value == "SASL_SSL"
    assert credentials_.mechanism.value == "SCRAM-SHA-256"
    assert (credentials_.username, credentials_.password) == ("svc-nova-worker", "s3cret-s3cret")


def test_tls_without_sasl_maps_to_faust_ssl_credentials(tmp_path: Path) -> None:
    settings = load_settings(kafka_bootstrap_servers="k:9093", kafka_security_protocol="SSL")
    assert client_options(settings)["security_protocol"] == "SSL"
    assert isinstance(faust_broker(settings)["broker_credentials"], faust.SSLCredentials)
    missing = load_settings(kafka_bootstrap_servers="k:9093", kafka_security_protocol="SSL",
                            kafka_ssl_cafile=tmp_path / "no-such-ca.pem")
    with pytest.raises(ConfigError, match="KAFKA_SSL_CAFILE"):
        client_options(missing)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "set KAFKA_BOOTSTRAP_SERVERS too"),
        ({"kafka_bootstrap_servers": "k:1", "kafka_security_protocol": "SASL_PLAINTEXT"},
         "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
        ({"kafka_bootstrap_servers": "k:1", "kafka_sasl_username": "u",
          "kafka_sasl_password": "p"}, "sends no credentials"),
        ({"kafka_bootstrap_servers": "k:1", "kafka_security_protocol": "SASL_PLAINTEXT",
          "kafka_sasl_username": "u", "kafka_sasl_password": "p",
          "kafka_ssl_cafile": "/ca.pem"}, "does not use TLS"),
        ({"kafka_bootstrap_servers": "k:1", "kafka_security_protocol": "SSL",
          "kafka_ssl_certfile": "/c.pem"}, "go together"),
        ({"kafka_bootstrap_servers": "k:1", "kafka_credentials_dir": "/creds",
          "kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u",
          "kafka_sasl_password": "p"}, "set one of them"),
    ],
    ids=["own-broker", "sasl-no-user", "user-no-sasl", "files-no-tls", "cert-no-key",
         "two-logins"],
)
def test_security_settings_that_would_be_ignored_are_refused(
    overrides: dict[str, object], message: str,
) -> None:
    with pytest.raises(ValidationError, match=message):
        load_settings(**overrides)
