"""The ACLs of Nova's principals and the broker configuration that enforces them."""

from __future__ import annotations

from pathlib import Path

import pytest

from nova.errors import LauncherError
from nova.kafka.acls import ACCESS, AclBinding, Operation, PatternType, ResourceType, bindings
from nova.kafka.launcher import BrokerLayout, _server_properties, prepare
from nova.settings import load_settings
from schemas.topics import TOPICS


def writers(topic: str) -> set[str]:
    s = load_settings(topic_prefix="p")
    return {b.principal for b in bindings(s)
            if b.resource_name == s.topic(topic) and b.operation is Operation.WRITE}


def test_every_topic_says_who_reads_and_writes_it() -> None:
    missing = sorted(set(TOPICS) - set(ACCESS))
    assert missing == [], f"declare the access of {missing} in nova.kafka.acls.ACCESS"
    for name in TOPICS:
        assert ACCESS[name].write, name
        assert ACCESS[name].read, name


def test_only_the_gateway_writes_requests_decisions_and_entities() -> None:
    for topic in ("requests", "decisions", "entities"):
        assert writers(topic) == {"User:nova-gateway"}, topic


def test_only_the_worker_writes_audit() -> None:
    assert writers("audit") == {"User:nova-worker"}


def test_expiries_are_the_workers_own_topic_when_declared() -> None:
    if "expiries" in TOPICS:
        assert writers("expiries") == {"User:nova-worker"}
    assert "User:nova-worker" not in writers("decisions")


def test_the_tools_write_nothing_and_join_no_group() -> None:
    tools = [b for b in bindings(load_settings()) if b.principal == "User:nova-tools"]
    assert tools, "the tools read"
    assert {b.operation for b in tools} == {Operation.READ}
    assert {b.resource_type for b in tools} == {ResourceType.TOPIC}


def test_acls_name_the_deployments_topics_literally_and_only_faust_internals_by_prefix() -> None:
    s = load_settings(topic_prefix="acme")
    prefixed = {b for b in bindings(s) if b.pattern is PatternType.PREFIXED}
    assert prefixed == {
        AclBinding("User:nova-worker", ResourceType.TOPIC, "acme-worker-", PatternType.PREFIXED,
                   op) for op in (Operation.READ, Operation.WRITE, Operation.CREATE)
    } | {AclBinding("User:nova-gateway", ResourceType.GROUP, "acme-sink-", PatternType.PREFIXED,
                    Operation.READ),
         # lane G's fenced audit writers (streams.audit_writer): the worker alone
         AclBinding("User:nova-worker", ResourceType.TRANSACTIONAL_ID, "acme-worker-audit-",
                    PatternType.PREFIXED, Operation.WRITE)}
    assert all(b.resource_name.startswith("acme") for b in bindings(s))
    assert "User:nova-admin" not in {b.principal for b in bindings(s)}, "admin is super user"


def test_the_broker_only_speaks_sasl_and_has_one_super_user(tmp_path: Path) -> None:
    layout = BrokerLayout(home=tmp_path, port=19092, controller_port=19093)
    props = dict(line.split("=", 1) for line in
                 _server_properties(layout, "pw").splitlines() if line)
    assert props["listener.security.protocol.map"] == (
        "BROKER:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT")
    assert props["listener.name.broker.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer")
    assert props["super.users"] == "User:nova-admin"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["listeners"] == "BROKER://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"


def test_storage_formatted_before_sasl_is_refused_with_the_fix(tmp_path: Path) -> None:
    """Its metadata holds no SCRAM credentials: nobody could log in, so say how to start over."""
    settings = load_settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    lib = tmp_path / "cache" / "kafka" / settings.kafka_version / "lib"
    lib.mkdir(parents=True)
    (lib / ".complete").write_text("fetched")
    layout = BrokerLayout.from_settings(settings)
    layout.log_dirs.mkdir(parents=True)
    (layout.log_dirs / "meta.properties").write_text("version=1\n")
    with pytest.raises(LauncherError, match="formatted before Nova's broker required SASL") as e:
        prepare(settings, layout)
    assert f"delete {layout.log_dirs}" in str(e.value)
    assert not layout.credentials.exists(), "no credentials the broker would not know"


def test_no_acl_is_listed_twice() -> None:
    """CreateAcls answers one result per binding: a duplicate is noise in `nova kafka acls`."""
    acls = bindings(load_settings(topic_prefix="p"))
    assert len(acls) == len(set(acls))
