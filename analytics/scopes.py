"""An identity's scope: a database of views that shows one identity's metrics and nothing else.

Roles act within their token's identity (``nova.domain.roles``), analysts too: an analyst
without ``operator`` sees the metrics of its own identity. ClickHouse would say that with a row
policy, but the embedded engine (chdb) has no users, grants or row policies, so the boundary is
built from what both engines have: views. For each identity that runs analyst SQL the gateway
keeps a database ``<db>_scope_<hash of the identity>`` holding

- one view per metric table (:data:`METRIC_TABLES`), ``SELECT * FROM <db>.<table> FINAL WHERE
  identity_id = '<identity>'``: deduplicated (ClickHouse accepts and ignores ``FINAL`` on a
  view, so analysts' habitual ``FROM requests FINAL`` still works and is still exact), and
- every analyst view of the migrations (``v_cost_daily``, ``v_top_spenders(...)``, ...),
  defined again over those views, so the named views answer for the identity alone.

The statement then runs with the scope as its database, and ``analytics.statements`` refuses
any name of another database in it, the main one included: unqualified names reach the scope's
views, qualified ones nothing else. There is no private content in any of it
(``request_content`` is not a metric table), nor platform-wide figures without an identity
(``rollup_latency_hourly``), nor any table of another identity.

The views are (re)defined the first time an identity asks in a process (``CREATE OR REPLACE``,
so a gateway started after a migration brings every scope up to date), by the writer handle:
defining views is DDL, which the analysts' read-only handle may not do.

What this does not hide: an analyst's own predicates are evaluated by ClickHouse where it sees
fit, and an expression that throws on a value could, in principle, be evaluated on a row of
another identity before the scope's filter drops it. That is an error-message oracle on
metrics (costs, counts, timings), never on content, which no view reaches.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Final

from analytics.client import ClickHouse
from analytics.migrate import discover
from nova.domain.identity_format import is_identity_id
from nova.errors import ConfigError

# metric table → read with FINAL (ReplacingMergeTree/AggregatingMergeTree) or not (MergeTree)
METRIC_TABLES: Final = {
    "lane_events": True,
    "llm_calls": True,
    "alerts": True,
    "requests": True,
    "checkpoints": True,
    "audit_events": True,
    "rollup_cost_daily": False,
}

_built: set[tuple[str, str, str]] = set()
_built_lock = threading.Lock()


def scope_database(database: str, identity: str) -> str:
    """The scope database of ``identity`` (a hash: identity ids may hold ``.``, ``@``, ``-``)."""
    digest = hashlib.sha256(identity.encode()).hexdigest()[:20]
    return f"{database}_scope_{digest}"


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _analyst_views(scope: str) -> list[str]:
    """The migrations' ``CREATE VIEW`` statements, over the scope's tables."""
    head = "CREATE VIEW IF NOT EXISTS "
    return ["CREATE OR REPLACE VIEW " + statement[len(head):]
            for migration in discover() for statement in migration.statements(scope)
            if statement.upper().startswith(head)]


def identity_scope(ch: ClickHouse, identity: str) -> str:
    """The name of ``identity``'s scope database, defined (or brought up to date) if needed."""
    if not is_identity_id(identity):
        raise ConfigError("malformed identity id")
    scope = scope_database(ch.database, identity)
    key = (ch.dsn, ch.database, identity)
    with _built_lock:
        if key in _built:
            return scope
    hidden = ch.rows(  # ALIAS and MATERIALIZED columns are not in SELECT *: name them
        "SELECT table, name FROM system.columns WHERE database = {db:String} "
        "AND default_kind IN ('ALIAS', 'MATERIALIZED') ORDER BY table, position",
        {"db": ch.database})
    extra: dict[str, list[str]] = {}
    for row in hidden:
        extra.setdefault(str(row["table"]), []).append(f"`{row['name']}`")
    ch.command(f"CREATE DATABASE IF NOT EXISTS {scope}")
    who = _literal(identity)
    for table, final in METRIC_TABLES.items():
        columns = ", ".join(["*", *extra.get(table, [])])
        ch.command(f"CREATE OR REPLACE VIEW {scope}.{table} AS SELECT {columns} "  # noqa: S608
                   f"FROM {ch.database}.{table}{' FINAL' if final else ''} "
                   f"WHERE identity_id = {who}")
    for statement in _analyst_views(scope):
        ch.command(statement)
    with _built_lock:
        _built.add(key)
    return scope
