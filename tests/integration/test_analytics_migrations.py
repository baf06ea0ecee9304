"""Migrations apply on a fresh database and on one already at 0004 (with data in it)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

import analytics.migrate
from analytics.client import ClickHouse
from analytics.migrate import discover, migrate

pytestmark = pytest.mark.integration

LANE_COLUMNS = ["request_id", "identity_id", "lane", "status", "started_at", "duration_ms",
                "worker", "error", "request_ts", "ts", "version"]


def _request_indexes(ch: ClickHouse) -> set[str]:
    rows = ch.rows("SELECT table, expr, type FROM system.data_skipping_indices "
                   "WHERE database = %(db)s AND name = 'idx_request_id'", {"db": ch.database})
    return {r["table"] for r in rows if r["expr"] == "request_id" and r["type"] == "bloom_filter"}


def _indexed_bytes(ch: ClickHouse, table: str) -> int:
    """Skip-index bytes in the table's active parts: 0 until the index is built for them."""
    return int(ch.scalar("SELECT sum(secondary_indices_uncompressed_bytes) FROM system.parts "
                         "WHERE database = %(db)s AND table = %(t)s AND active",
                         {"db": ch.database, "t": table}) or 0)


def test_fresh_database_gets_every_migration(clickhouse: ClickHouse) -> None:
    ch = clickhouse.with_database(f"mig_{uuid.uuid4().hex[:10]}")
    assert migrate(ch) == [m.version for m in discover()]
    assert {"lane_events", "llm_calls", "requests", "audit_events"} <= _request_indexes(ch)
    assert migrate(ch) == []


def test_database_at_0004_gets_the_request_indexes(
    clickhouse: ClickHouse, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ch = clickhouse.with_database(f"mig_{uuid.uuid4().hex[:10]}")
    with monkeypatch.context() as m:  # the database as a deployment before 0005 left it
        m.setattr(analytics.migrate, "discover",
                  lambda: [mig for mig in discover() if mig.version <= 4])
        assert migrate(ch) == [1, 2, 3, 4]
    assert "lane_events" not in _request_indexes(ch)
    assert "llm_calls" not in _request_indexes(ch)
    now = datetime.now(UTC)
    ch.insert("lane_events", [["r-1", "id-a", "A", "ok", now, 1.0, "w", None, now, now, 1]],
              LANE_COLUMNS)
    assert _indexed_bytes(ch, "lane_events") == 0

    assert migrate(ch) == [5]
    assert {"lane_events", "llm_calls"} <= _request_indexes(ch)
    # The part written before 0005 gets the index too (MATERIALIZE INDEX, a mutation).
    deadline = time.monotonic() + 30
    while _indexed_bytes(ch, "lane_events") == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _indexed_bytes(ch, "lane_events") > 0
    assert ch.scalar(f"SELECT count() FROM {ch.database}.lane_events FINAL "  # noqa: S608
                     "WHERE request_id = 'r-1'") == 1
    assert migrate(ch) == []
