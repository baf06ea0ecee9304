"""Kafka plumbing: the project's own broker launcher and topic administration."""

from __future__ import annotations

import logging

from nova.settings import Settings


def quiet_kafka_client(settings: Settings) -> None:
    """aiokafka logs every transient coordinator/leader hiccup at ERROR while topics settle;
    they are retried internally, so below debug level only critical ones are shown."""
    if settings.log_level != "debug":
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
