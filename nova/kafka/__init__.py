"""Kafka plumbing: the project's own broker launcher and topic administration."""
