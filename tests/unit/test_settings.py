"""Settings: every process reads its configuration here, from the environment, once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import AliasChoices, ValidationError

from nova.settings import DEV_JWT_SECRET, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test sees only the variables it sets (not the developer's shell or CI's)."""
    for name in list(os.environ):
        if name.startswith(("NOVA_", "KAFKA_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def test_defaults_run_everything_locally(tmp_path: Path) -> None:
    s = load_settings()
    assert s.environment == "development"
    assert s.data_dir == tmp_path / "xdg-data" / "nova"
    assert s.cache_dir == tmp_path / "xdg-cache" / "nova"
    assert not s.external_kafka
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.embedded_clickhouse
    assert s.clickhouse_url == f"chdb://{tmp_path / 'xdg-data' / 'nova' / 'clickhouse'}"


def test_environment_variables_are_parsed_to_typed_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVA_ENVIRONMENT", "test")
    monkeypatch.setenv("NOVA_DATA_DIR", "/srv/nova")
    monkeypatch.setenv("NOVA_KAFKA_PORT", "19092")
    monkeypatch.setenv("NOVA_TOPIC_PREFIX", "staging")
    monkeypatch.setenv("NOVA_TOPIC_PARTITIONS", "8")
    monkeypatch.setenv("NOVA_RUN_SINK", "false")
    monkeypatch.setenv("NOVA_SINK_FLUSH_INTERVAL_S", "0.25")
    monkeypatch.setenv("NOVA_LOG_LEVEL", "debug")
    monkeypatch.setenv("NOVA_CLICKHOUSE_DSN", "http://clickhouse:8123")
    s = load_settings()
    assert s.environment == "test"
    assert s.data_dir == Path("/srv/nova")
    assert s.kafka_port == 19092
    assert s.bootstrap_servers == "127.0.0.1:19092"
    assert s.topic_partitions == 8
    assert s.run_sink is False
    assert s.sink_flush_interval_s == 0.25
    assert s.log_level == "debug"
    assert s.topic("requests") == "staging.requests"
    assert s.clickhouse_url == "http://clickhouse:8123"
    assert not s.embedded_clickhouse


@pytest.mark.parametrize(
    ("name", "value"),
    [("NOVA_ENVIRONMENT", "prod"), ("NOVA_KAFKA_PORT", "not-a-port"),
     ("NOVA_LOG_LEVEL", "verbose"), ("NOVA_RUN_SINK", "maybe"),
     ("NOVA_DEFAULT_WAIT_MS", "-1"), ("NOVA_DEFAULT_WAIT_MS", "120001"),
     ("NOVA_DEFAULT_WAIT_MS", "10s"), ("NOVA_KAFKA_JVM_OPTIONS", "-Dname='unclosed")],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("NOVA_").lower()):
        load_settings()


def test_kafka_bootstrap_servers_keeps_its_conventional_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    s = load_settings()
    assert s.external_kafka
    assert s.kafka_bootstrap_servers == "kafka:9092"
    assert s.bootstrap_servers == "kafka:9092"


def test_prefixed_alias_also_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVA_KAFKA_BOOTSTRAP_SERVERS", "b1:9092,b2:9092")
    assert load_settings().bootstrap_servers == "b1:9092,b2:9092"


def test_explicit_override_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "from-env:9092")
    monkeypatch.setenv("NOVA_TOPIC_PREFIX", "from-env")
    s = load_settings(kafka_bootstrap_servers="override:9092", topic_prefix="override")
    assert s.bootstrap_servers == "override:9092"
    assert s.topic_prefix == "override"


def test_production_refuses_the_placeholder_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVA_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="NOVA_JWT_SECRET"):
        load_settings()
    monkeypatch.setenv("NOVA_JWT_SECRET", DEV_JWT_SECRET)
    with pytest.raises(ValidationError, match="NOVA_JWT_SECRET"):
        load_settings()


def test_production_accepts_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVA_ENVIRONMENT", "production")
    monkeypatch.setenv("NOVA_JWT_SECRET", "a-real-secret-from-the-vault-7f3c9a1e")
    s = load_settings()
    assert s.jwt_secret.get_secret_value() == "a-real-secret-from-the-vault-7f3c9a1e"


@pytest.mark.parametrize("environment", ["development", "test"])
def test_placeholder_secret_is_fine_outside_production(environment: str) -> None:
    assert load_settings(environment=environment).jwt_secret.get_secret_value() == DEV_JWT_SECRET


def test_secret_never_appears_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVA_JWT_SECRET", "hunter2-hunter2-hunter2-hunter2")
    s = load_settings()
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s.model_dump())


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValidationError):
        s.topic_prefix = "changed"  # type: ignore[misc]


def test_to_env_reproduces_the_same_settings_in_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker subprocess is configured only through ``to_env``: nothing may be lost."""
    parent = load_settings(
        environment="test", kafka_bootstrap_servers="k:9092", topic_prefix="t1",
        data_dir=Path("/tmp/nova-t1"), clickhouse_dsn="http://ch:8123", run_sink=False,  # noqa: S108
        jwt_secret="child-secret-0123456789abcdef0123",
    )
    for name, value in parent.to_env().items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.model_dump() == parent.model_dump()
    assert child.jwt_secret.get_secret_value() == "child-secret-0123456789abcdef0123"


def test_readme_documents_every_setting() -> None:
    """The configuration table in README.md is written by hand: keep it in step with the code."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    def documented_as(name: str) -> str:
        # Kafka's client settings keep Kafka's names (KAFKA_SECURITY_PROTOCOL, ...).
        alias = Settings.model_fields[name].validation_alias
        if alias is None:
            return f"NOVA_{name.upper()}"
        assert isinstance(alias, AliasChoices)
        return str(alias.choices[0])

    missing = [documented_as(name) for name in Settings.model_fields
               if f"`{documented_as(name)}`" not in readme]
    assert missing == [], f"add to the configuration table in README.md: {missing}"
    assert "`KAFKA_BOOTSTRAP_SERVERS`" in readme


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "gateway.example.com"])  # noqa: S104
def test_the_placeholder_secret_is_refused_when_the_gateway_listens_beyond_loopback(
    host: str,
) -> None:
    with pytest.raises(ValueError, match="NOVA_JWT_SECRET"):
        load_settings(environment="development", gateway_host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_the_placeholder_secret_is_fine_on_loopback_in_development(host: str) -> None:
    assert load_settings(environment="development", gateway_host=host).gateway_host == host
