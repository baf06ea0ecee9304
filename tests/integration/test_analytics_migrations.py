"""Migrations apply on a fresh database and on older ones (with data in them)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

import analytics.migrate
from analytics.client import ClickHouse
from analytics.migrate import discover, migrate
from analytics.queries import request_final

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

    assert migrate(ch) == [m.version for m in discover() if m.version > 4]
    assert {"lane_events", "llm_calls"} <= _request_indexes(ch)
    # The part written before 0005 gets the index too (MATERIALIZE INDEX, a mutation).
    deadline = time.monotonic() + 30
    while _indexed_bytes(ch, "lane_events") == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _indexed_bytes(ch, "lane_events") > 0
    assert ch.scalar(f"SELECT count() FROM {ch.database}.lane_events FINAL "  # noqa: S608
                     "WHERE request_id = 'r-1'") == 1
    assert migrate(ch) == []


def test_answers_move_out_of_requests_and_stay_readable(
    clickhouse: ClickHouse, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deployment from before 0006 kept answers in ``requests.result``: after the upgrade
    ``requests`` holds metrics only and the owner's read path finds the same answer."""
    ch = clickhouse.with_database(f"mig_{uuid.uuid4().hex[:10]}")
    with monkeypatch.context() as m:
        m.setattr(analytics.migrate, "discover",
                  lambda: [mig for mig in discover() if mig.version <= 5])
        assert migrate(ch) == [1, 2, 3, 4, 5]
    now = datetime.now(UTC)
    columns = ["request_id", "identity_id", "user_id", "status", "cost_usd", "tokens_in",
               "tokens_out", "attempts", "latency_ms", "error", "result", "request_ts",
               "completed_at", "version"]
    ch.insert("requests", [
        ["r-1", "id-a", "u", "completed", 0.1, 1, 2, 1, 5.0, None, "the old answer", now, now, 7],
        ["r-2", "id-b", "u", "denied", 0.0, 0, 0, 0, 1.0, "SECRET_DETECTED: password", None,
         now, now, 8],
        ["r-3", "id-b", "u", "completed", 0.0, 0, 0, 0, 1.0, None, None, now, now, 9],
    ], columns)

    def up_to(version: int) -> list[int]:
        with monkeypatch.context() as m:
            m.setattr(analytics.migrate, "discover",
                      lambda: [mig for mig in discover() if mig.version <= version])
            return migrate(ch)

    def forget(version: int) -> None:  # as if the run had stopped before recording it
        ch.command(f"ALTER TABLE {ch.database}.schema_migrations DELETE WHERE version = "
                   f"{version} SETTINGS mutations_sync = 2")

    content = f"SELECT count() FROM {ch.database}.request_content FINAL"  # noqa: S608
    assert up_to(6) == [6]
    forget(6)
    assert up_to(6) == [6]  # the copy runs again and still makes one row per request
    assert ch.scalar(content) == 2
    assert migrate(ch) == [m.version for m in discover() if m.version > 6]
    forget(7)
    assert migrate(ch) == [7]
    assert migrate(ch) == []

    kept = {r["name"] for r in ch.rows("SELECT name FROM system.columns WHERE database = "
                                       "%(db)s AND table = 'requests'", {"db": ch.database})}
    assert "result" not in kept
    assert "error" not in kept
    assert (request_final(ch, "r-1") or {})["result"] == "the old answer"
    assert (request_final(ch, "r-2") or {})["error"] == "SECRET_DETECTED: password"
    assert (request_final(ch, "r-3") or {})["result"] is None
    assert ch.scalar(content) == 2
