"""Topic administration: create the declared topics idempotently, provision a prefix's ACLs.

On a broker with ACLs only ``nova-admin`` creates Nova's topics (:func:`provision`, run by
``nova kafka start``, ``nova up`` and ``nova kafka provision``); a gateway or worker only checks
that the topics it uses are there, and names the fix when they are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from nova.errors import ConfigError, LauncherError, StartupError
from nova.kafka.acls import apply_acls, bindings, topics_of
from nova.kafka.clients import kafka_admin, kafka_client
from nova.settings import Settings
from schemas.topics import TOPICS, changelog_configs, changelog_topics

log = logging.getLogger(__name__)


def broker_answers(settings: Settings, timeout_s: float = 5.0) -> bool:
    """True when the broker answers a metadata request (used for readiness)."""
    return asyncio.run(kafka_ready(settings, timeout_s))


async def kafka_ready(settings: Settings, timeout_s: float = 3.0) -> bool:
    """True when the broker accepts ``settings``' login and answers within ``timeout_s``."""
    admin = kafka_admin(settings, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return True
    except (KafkaError, OSError, TimeoutError, ConfigError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def all_partitions(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, from fresh cluster metadata (not just assigned ones)."""
    cluster = await consumer._client.fetch_all_metadata()
    return [
        TopicPartition(t, p) for t in topics for p in sorted(cluster.partitions_for_topic(t) or ())
    ]


def used_topics(settings: Settings) -> list[str]:
    """The topics this process uses: all of them for ``nova-admin``, else its principal's
    (a principal only sees the topics its ACLs name, so it could not tell the others exist)."""
    role = settings.kafka_client
    if role == "admin":
        return [settings.topic(s) for s in TOPICS] + changelog_topics(settings.topic_prefix)
    own = topics_of(settings, role)
    return own + (changelog_topics(settings.topic_prefix) if role == "worker" else [])


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the topics of :func:`used_topics` that do not exist yet; return those created."""
    names = set(used_topics(settings))
    admin = kafka_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=settings.topic(spec.name),
                num_partitions=settings.topic_partitions,
                replication_factor=1,
                topic_configs=spec.config(),
            )
            for spec in TOPICS.values()
            if settings.topic(spec.name) in names - existing
        ]
        wanted += [
            NewTopic(
                name=name,
                num_partitions=settings.topic_partitions,
                replication_factor=1,
                topic_configs=changelog_configs(settings.checkpoint_ttl_s, settings.table_keep_s),
            )
            for name in changelog_topics(settings.topic_prefix)
            if name in names - existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                log.info("topics created concurrently by another process")
    finally:
        await admin.close()
    await wait_for_leaders(settings, sorted(names))
    return [t.name for t in wanted]


async def provision(admin: Settings) -> tuple[list[str], bool]:
    """As ``nova-admin``: every topic of ``admin``'s prefix, then the ACLs of its principals.

    Returns the topics created and whether ACLs were applied (False: the cluster has no
    authorizer, so every client may do anything anyway).
    """
    admin = admin.as_client("admin")
    created = await ensure_topics(admin)
    return created, await apply_acls(admin, bindings(admin))


async def require_topics(settings: Settings, component: str) -> None:
    """:func:`ensure_topics`, or refuse ``component``'s start-up with one line naming the fix.

    Everything the guards read (entities, rules, budgets, spend) comes from these topics.
    """
    try:
        await ensure_topics(settings)
    except (KafkaError, OSError, TimeoutError, LauncherError, ConfigError) as exc:
        raise StartupError(
            component,
            f"Kafka at {settings.bootstrap_servers} cannot serve Nova's topics",
            "start the local broker with `nova kafka start` (it creates the topics and ACLs of "
            "NOVA_TOPIC_PREFIX; `nova kafka provision` does it for another prefix or cluster), "
            "or point KAFKA_BOOTSTRAP_SERVERS at a running cluster",
            exc,
        ) from exc


async def wait_for_leaders(settings: Settings, topics: list[str], timeout_s: float = 30.0) -> None:
    """Wait until every partition of ``topics`` has a leader.

    A consumer group that joins while a new topic has no leader yet gets an empty assignment
    and only notices the partitions at its next metadata refresh (minutes later), so starting
    workers before this returns would leave them idle.
    """
    client = kafka_client(settings)
    await client.bootstrap()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            cluster = await client.fetch_all_metadata()
            missing = [
                t
                for t in topics
                if not cluster.partitions_for_topic(t)
                or any(
                    cluster.leader_for_partition(TopicPartition(t, p)) in (None, -1)
                    for p in cluster.partitions_for_topic(t) or ()
                )
            ]
            if not missing:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise LauncherError(f"topics without a leader after {timeout_s}s: {missing}")
            await asyncio.sleep(0.2)
    finally:
        await client.close()
