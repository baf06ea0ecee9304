"""Topic administration: create every declared topic idempotently at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from nova.errors import LauncherError, StartupError
from nova.settings import Settings
from schemas.topics import TOPICS, changelog_topics

log = logging.getLogger(__name__)


def broker_answers(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """True when the broker answers a metadata request (used for readiness)."""
    return asyncio.run(kafka_ready(bootstrap, timeout_s))


async def kafka_ready(bootstrap: str, timeout_s: float = 3.0) -> bool:
    """True when the broker answers a cluster description within ``timeout_s``."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return True
    except (KafkaError, OSError, TimeoutError):
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


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every topic in ``schemas.topics`` that does not exist yet; return those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
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
            if settings.topic(spec.name) not in existing
        ]
        wanted += [
            NewTopic(
                name=name,
                num_partitions=settings.topic_partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"},
            )
            for name in changelog_topics(settings.topic_prefix)
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                log.info("topics created concurrently by another process")
    finally:
        await admin.close()
    await wait_for_leaders(
        settings, [settings.topic(s) for s in TOPICS] + changelog_topics(settings.topic_prefix)
    )
    return [t.name for t in wanted]


async def require_topics(settings: Settings, component: str) -> None:
    """:func:`ensure_topics`, or refuse ``component``'s start-up with one line naming the fix.

    Everything the guards read (entities, rules, budgets, spend) comes from these topics.
    """
    try:
        await ensure_topics(settings)
    except (KafkaError, OSError, TimeoutError, LauncherError) as exc:
        raise StartupError(
            component,
            f"Kafka at {settings.bootstrap_servers} cannot serve Nova's topics",
            "start the local broker with `nova kafka start`, or point KAFKA_BOOTSTRAP_SERVERS "
            "at a running cluster",
            exc,
        ) from exc


async def wait_for_leaders(settings: Settings, topics: list[str], timeout_s: float = 30.0) -> None:
    """Wait until every partition of ``topics`` has a leader.

    A consumer group that joins while a new topic has no leader yet gets an empty assignment
    and only notices the partitions at its next metadata refresh (minutes later), so starting
    workers before this returns would leave them idle.
    """
    client = AIOKafkaClient(bootstrap_servers=settings.bootstrap_servers)
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
