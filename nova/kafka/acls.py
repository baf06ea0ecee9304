"""Who may read and write each topic: the ACLs of Nova's principals, and how they are applied.

Whoever can write a topic is whoever its ACLs allow, so the table below is part of each topic's
contract (:data:`ACCESS`, one entry per topic of ``schemas.topics``; a unit test fails on a topic
without one). The broker runs the ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found``
off and one super user, the launcher's ``nova-admin``; every other principal gets exactly:

- ``nova-gateway``: writes ``requests``, ``decisions``, ``entities`` and ``sessions`` (nobody
  else does; no one else reads ``sessions`` either),
  ``facts`` and ``events`` (boundary violations, checkpoint decisions) and ``deadletter`` (the
  sink's undecodable records); reads what it tails (``entities``, ``pending``, ``decisions``,
  ``expiries``, ``events``, ``completed``) and what the sink lands (with ``audit``), in the sink's
  consumer groups (``<prefix>-sink-…``); writes and reads ``deliveries`` (the alert
  dispatcher's log) in its own group (``<prefix>-alerts``); reads ``agent-writes`` (agents'
  WRITE tool calls, which its applier checks, signs and writes) in its group
  (``<prefix>-agent-writes``).
- ``nova-worker``: reads and writes the lanes' hand-off topics; writes ``pending``,
  ``completed``, ``events``, ``facts``, ``audit`` (lane G is its only writer), ``expiries``,
  ``agent-writes`` (what an agent asks to write; only the gateway writes ``entities``) and
  ``deadletter``; reads ``requests``, ``decisions``, ``entities``, ``events`` (spend),
  ``facts``, ``audit`` (the chain heads) and ``expiries``, and may write none of ``requests``,
  ``decisions`` or ``entities``; owns its Faust internals (every topic named
  ``<prefix>-worker-…``: changelogs, the assignor's leader topic, which it may create), its
  consumer groups (the lanes', the entity guard's) and the transactional ids of lane G's audit
  writers (``<prefix>-worker-audit-<partition>``, ``streams.audit_writer``).
- ``nova-tools`` (``nova audit verify``, ``nova replay``): reads the topics replay, trails and
  the audit walk read (``entities`` among them: the walk checks every entity change's
  signature), writes nothing, joins no group.

ACLs name the deployment's topics literally (``<prefix>.decisions``), so each topic prefix is
provisioned on its own: ``nova kafka start``, ``nova up`` and ``nova kafka provision`` do it as
``nova-admin`` with :func:`apply_acls` (Kafka's CreateAcls request; creating an ACL that exists
changes nothing).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import IntEnum

from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Int8, Int16, Int32, Schema, String

from nova.errors import ConfigError
from nova.kafka import credentials
from nova.settings import KafkaClient, Settings
from schemas.topics import (
    TOPICS,
    agent_writes_group,
    audit_writer_prefix,
    entity_guard_group,
    worker_app_id,
)

GATEWAY: KafkaClient = "gateway"
WORKER: KafkaClient = "worker"
TOOLS: KafkaClient = "tools"


@dataclass(frozen=True)
class TopicAccess:
    """Which principals write and which read one topic (writing implies nothing else)."""

    write: frozenset[KafkaClient]
    read: frozenset[KafkaClient]


def _access(write: tuple[KafkaClient, ...], read: tuple[KafkaClient, ...]) -> TopicAccess:
    return TopicAccess(frozenset(write), frozenset(read))


_LANE = _access(write=(WORKER,), read=(WORKER,))

ACCESS: dict[str, TopicAccess] = {
    "requests": _access(write=(GATEWAY,), read=(WORKER, GATEWAY, TOOLS)),  # gateway: live feed
    "intents": _LANE,
    "contexts": _LANE,
    "encoded": _LANE,
    "governed": _LANE,
    "executable": _LANE,
    "executed": _LANE,
    "completed": _access(write=(WORKER,), read=(GATEWAY, TOOLS)),
    "pending": _access(write=(WORKER,), read=(GATEWAY, TOOLS)),
    "decisions": _access(write=(GATEWAY,), read=(WORKER, GATEWAY, TOOLS)),
    "expiries": _access(write=(WORKER,), read=(WORKER, GATEWAY, TOOLS)),
    "events": _access(write=(WORKER, GATEWAY), read=(WORKER, GATEWAY, TOOLS)),
    "facts": _access(write=(WORKER, GATEWAY), read=(WORKER,)),
    "audit": _access(write=(WORKER,), read=(WORKER, GATEWAY, TOOLS)),
    "deadletter": _access(write=(WORKER, GATEWAY), read=(TOOLS,)),
    "entities": _access(write=(GATEWAY,), read=(GATEWAY, WORKER, TOOLS)),
    "deliveries": _access(write=(GATEWAY,), read=(GATEWAY, TOOLS)),  # the alert dispatcher's
    "admissions": _access(write=(GATEWAY,), read=(GATEWAY,)),
    "sessions": _access(write=(GATEWAY,), read=(GATEWAY,)),  # refresh tokens: gateways only
    # agents' writes: the worker asks, the gateway's applier checks, signs and writes entities
    "agent-writes": _access(write=(WORKER,), read=(GATEWAY, TOOLS)),
}


class ResourceType(IntEnum):
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5


class PatternType(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8


ALLOW = 3


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ALLOW rule: ``principal`` may ``operation`` on the resource, from any host."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    pattern: PatternType
    operation: Operation

    def __str__(self) -> str:
        pattern = "" if self.pattern is PatternType.LITERAL else " (prefix)"
        return (f"{self.principal} {self.operation.name} {self.resource_type.name.lower()} "
                f"{self.resource_name}{pattern}")


def principal(role: KafkaClient) -> str:
    return f"User:{credentials.username(role)}"


def topics_of(settings: Settings, role: KafkaClient) -> list[str]:
    """The declared topics ``role`` reads or writes, by full name."""
    return [settings.topic(name) for name, access in ACCESS.items()
            if name in TOPICS and role in access.read | access.write]


def worker_internal_prefix(settings: Settings) -> str:
    """Faust names its changelog and leader topics after the app id."""
    return f"{worker_app_id(settings.topic_prefix)}-"


def sink_group_prefix(settings: Settings) -> str:
    return f"{settings.topic_prefix}-sink-"


def alerts_group(settings: Settings) -> str:
    """The consumer group of the gateways' alert dispatchers (``gateway.alerts``)."""
    return f"{settings.topic_prefix}-alerts"


def bindings(settings: Settings) -> list[AclBinding]:
    """Every ACL of ``settings``' topic prefix (see the module docstring)."""
    out: list[AclBinding] = []
    for name, access in ACCESS.items():
        if name not in TOPICS:
            continue
        for role in sorted(access.write):
            out.append(AclBinding(principal(role), ResourceType.TOPIC, settings.topic(name),
                                  PatternType.LITERAL, Operation.WRITE))
        for role in sorted(access.read):
            out.append(AclBinding(principal(role), ResourceType.TOPIC, settings.topic(name),
                                  PatternType.LITERAL, Operation.READ))
    internal = worker_internal_prefix(settings)
    for op in (Operation.READ, Operation.WRITE, Operation.CREATE):
        out.append(AclBinding(principal(WORKER), ResourceType.TOPIC, internal,
                              PatternType.PREFIXED, op))
    # The lanes' group (Faust's, named after the app id) and the entity guard's own.
    for group in (worker_app_id(settings.topic_prefix), entity_guard_group(settings.topic_prefix)):
        out.append(AclBinding(principal(WORKER), ResourceType.GROUP, group, PatternType.LITERAL,
                              Operation.READ))
    out.append(AclBinding(principal(GATEWAY), ResourceType.GROUP, sink_group_prefix(settings),
                          PatternType.PREFIXED, Operation.READ))
    out.append(AclBinding(principal(GATEWAY), ResourceType.GROUP, alerts_group(settings),
                          PatternType.LITERAL, Operation.READ))
    out.append(AclBinding(principal(GATEWAY), ResourceType.GROUP,
                          agent_writes_group(settings.topic_prefix), PatternType.LITERAL,
                          Operation.READ))
    # Lane G's fenced audit writers: one transactional id per audit partition.
    out.append(AclBinding(principal(WORKER), ResourceType.TRANSACTIONAL_ID,
                          audit_writer_prefix(settings.topic_prefix), PatternType.PREFIXED,
                          Operation.WRITE))
    return sorted(out)


# -- CreateAcls (API key 30, version 1: the oldest Kafka 4 still serves; aiokafka has none) ---
# aiokafka ships no type information (mypy sees its protocol classes as Any).
class CreateAclsResponse_v1(Response):  # type: ignore[misc]
    API_KEY = 30
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", Array(("error_code", Int16), ("error_message", String("utf-8")))),
    )


class CreateAclsRequest_v1(RequestStruct):  # type: ignore[misc]
    API_KEY = 30
    API_VERSION = 1
    RESPONSE_TYPE = CreateAclsResponse_v1
    SCHEMA = Schema(
        ("creations", Array(
            ("resource_type", Int8),
            ("resource_name", String("utf-8")),
            ("resource_pattern_type", Int8),
            ("principal", String("utf-8")),
            ("host", String("utf-8")),
            ("operation", Int8),
            ("permission_type", Int8),
        )),
    )


class CreateAclsRequest(Request[CreateAclsRequest_v1]):  # type: ignore[misc]
    API_KEY = 30

    def __init__(self, acls: list[AclBinding]) -> None:
        self._creations = [
            (int(b.resource_type), b.resource_name, int(b.pattern), b.principal, "*",
             int(b.operation), ALLOW)
            for b in acls
        ]

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self._creations)


# -- DescribeAcls (API key 29, version 1): what the broker's authorizer holds now ------------
class DescribeAclsResponse_v1(Response):  # type: ignore[misc]
    API_KEY = 29
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", String("utf-8")),
        ("resources", Array(
            ("resource_type", Int8),
            ("resource_name", String("utf-8")),
            ("pattern_type", Int8),
            ("acls", Array(
                ("principal", String("utf-8")),
                ("host", String("utf-8")),
                ("operation", Int8),
                ("permission_type", Int8),
            )),
        )),
    )


class DescribeAclsRequest_v1(RequestStruct):  # type: ignore[misc]
    API_KEY = 29
    API_VERSION = 1
    RESPONSE_TYPE = DescribeAclsResponse_v1
    SCHEMA = Schema(
        ("resource_type_filter", Int8),
        ("resource_name_filter", String("utf-8")),
        ("pattern_type_filter", Int8),
        ("principal_filter", String("utf-8")),
        ("host_filter", String("utf-8")),
        ("operation", Int8),
        ("permission_type", Int8),
    )


class DescribeAclsRequest(Request[DescribeAclsRequest_v1]):  # type: ignore[misc]
    API_KEY = 29

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        any_ = 1  # ANY resource type, pattern type, operation and permission; no name filter
        return request_struct_class(any_, None, any_, None, None, any_, any_)


SECURITY_DISABLED = 54  # the cluster runs no authorizer


async def describe_acls(admin: Settings) -> set[AclBinding]:
    """Every ALLOW rule of the broker's authorizer (as the broker answering sees them)."""
    from nova.kafka.clients import kafka_client

    client = kafka_client(admin)
    await client.bootstrap()
    try:
        response = await client.send(client.get_random_node(), DescribeAclsRequest())
    finally:
        await client.close()
    if response.error_code:
        raise ConfigError(f"Kafka refused to list its ACLs (error {response.error_code}: "
                          f"{response.error_message})")
    return {
        AclBinding(principal, ResourceType(rtype), name, PatternType(ptype), Operation(op))
        for rtype, name, ptype, acls in response.resources
        if rtype in ResourceType._value2member_map_ and ptype in PatternType._value2member_map_
        for principal, _host, op, permission in acls
        if permission == ALLOW and op in Operation._value2member_map_
    }


async def apply_acls(admin: Settings, acls: list[AclBinding], timeout_s: float = 15.0) -> bool:
    """Create ``acls`` as ``admin``; False when the cluster has no authorizer (open cluster).

    Returns once the broker's authorizer holds every one of them: the controller commits an
    ACL before the broker applies it, and a client in between would be refused. Raises
    :class:`ConfigError` naming the first ACL the broker refused.
    """
    from nova.kafka.clients import kafka_client

    client = kafka_client(admin)
    await client.bootstrap()
    try:
        response = await client.send(client.get_random_node(), CreateAclsRequest(acls))
    finally:
        await client.close()
    for binding, (code, message) in zip(acls, response.results, strict=True):
        if code == SECURITY_DISABLED:
            return False
        if code:
            raise ConfigError(f"Kafka refused the ACL '{binding}' (error {code}: {message}); "
                              f"{admin.kafka_client} must be able to alter the cluster's ACLs")
    deadline = asyncio.get_running_loop().time() + timeout_s
    while missing := set(acls) - await describe_acls(admin):
        if asyncio.get_running_loop().time() > deadline:
            raise ConfigError(f"Kafka accepted {len(acls)} ACLs but applies none of "
                              f"{sorted(map(str, missing))[:3]} after {timeout_s}s")
        await asyncio.sleep(0.05)
    return True
