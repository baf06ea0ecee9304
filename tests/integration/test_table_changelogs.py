"""The worker's table changelogs on the real broker: compacted, and forgotten in time.

Lane E's ``held`` and lane F's ``llm_results`` keep one entry per request; in memory a finished
one is dropped after ``table_keep_s`` (``streams.retention``), and on the broker the changelog
must forget it too, or a restarted worker would read every entry ever written back into memory.
It must never forget a hold before it could have been decided, though.
"""

from __future__ import annotations

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from nova.kafka.clients import kafka_admin
from nova.settings import Settings
from schemas.topics import changelog_topics

pytestmark = pytest.mark.integration


async def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    admin = kafka_admin(settings)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    [(_, _, _, _, entries)] = response.resources
    return {entry[0]: entry[1] for entry in entries}


async def test_the_changelogs_are_compacted_and_kept_twice_a_checkpoints_life(
    settings: Settings,
) -> None:
    for name in changelog_topics(settings.topic_prefix):
        configs = await topic_configs(settings, name)
        assert configs["cleanup.policy"] == "compact,delete", name
        kept_ms = int(configs["retention.ms"])
        assert kept_ms >= 2 * settings.checkpoint_ttl_s * 1000, name
        assert kept_ms >= 2 * settings.table_keep_s * 1000, name
