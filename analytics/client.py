"""Build the one ClickHouse client a process uses, from the DSN in settings.

``chdb://PATH`` is ClickHouse in-process: only one process may open a path, so the process that
runs the sink (the gateway, in ``nova up``) owns it and serves read-only queries to everyone
else (``nova sql``, the monitoring API). ``http(s)://`` DSNs use a real server that any client
can query. chdb calls block, so :class:`ClickHouse` serialises them on a lock and runs them in a
thread from async code.

Read-only queries run on a second connection handle whose *session* is ``readonly=1`` with
``max_execution_time`` fixed before it (``readonly=1`` then refuses any later setting change,
per-query ``SETTINGS`` included). Why ``1`` and not ``2``: under ``readonly=2`` ClickHouse still
runs table functions, so ``file('/proc/self/environ')`` read the gateway's secrets and
``INSERT INTO FUNCTION file(...)`` wrote host files; ``readonly=1`` refuses every table function
that reaches outside the database (file, url, s3, remote, executable, python, mysql, ...).
Why not pass ``readonly`` per query: the chdb backend applies per-query settings with ``SET``
and restores them afterwards, but once ``readonly`` is set the session may no longer change it,
so the restore fails silently and every later insert (the sink's) is refused. A dedicated handle
makes the analyst's session read-only for good and leaves the writer's session alone; it also
has its own lock, so a slow analyst query does not stall the sink. On an HTTP server each
request is its own session, and ``readonly=1`` is passed with the request; the server account
used for analyst SQL should also lack the FILE, URL, S3, REMOTE and SOURCES grants.

``readonly=1`` says nothing about *which* tables a statement reads, and still runs ``KILL``,
the scalar ``file()`` and ``INTO OUTFILE`` (chdb, ClickHouse in local mode, does not confine
either to ``user_files_path``). So :meth:`ClickHouse.query_readonly` first has ClickHouse parse
the statement (``formatQuerySingleLine``, which also refuses several statements in one), then
:func:`analytics.statements.analyst_statement` judges the normalised text against the server's
catalogue (its databases and table functions, read on the same handle); the normalised
statement is what then runs. On a server, give the account analysts' SQL uses SELECT on the
metric tables only (not on ``request_content``) as well: ``docs/analytics.md``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.exceptions import OperationalError, ProgrammingError

from analytics.statements import Catalogue, RefusedQueryError, analyst_statement
from nova.errors import ConfigError
from nova.settings import Settings

__all__ = ["ClickHouse", "RefusedQueryError", "build_clickhouse"]

READONLY_MAX_EXECUTION_S = 60
READONLY_SETTINGS: dict[str, Any] = {"max_execution_time": READONLY_MAX_EXECUTION_S,
                                     "readonly": 1}

def _connect(dsn: str) -> Any:
    """One clickhouse-connect client; a locked chdb path, or a server that does not answer,
    becomes a one-line ConfigError naming the fix."""
    try:
        return clickhouse_connect.get_client(dsn=dsn)
    except OperationalError as exc:  # the client asks the server for its version at once
        where = dsn.split("@")[-1]  # never the password
        raise ConfigError(
            f"ClickHouse at {where} does not answer ({type(exc).__name__}): start that server, "
            "or fix NOVA_CLICKHOUSE_DSN (unset, Nova uses its embedded ClickHouse)"
        ) from exc
    except ProgrammingError as exc:
        path = dsn.removeprefix("chdb://")
        raise ConfigError(
            f"the embedded ClickHouse at {path} is open in another process (is `nova up` or "
            "`nova gateway` running?): stop it, or point NOVA_CLICKHOUSE_DSN at an http(s) "
            "ClickHouse server that several processes can share"
        ) from exc


@dataclass
class _Connection:
    """What every database twin shares: the writer handle, its lock, the lazy reader."""

    dsn: str
    client: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    reader: Any = None
    reader_lock: threading.Lock = field(default_factory=threading.Lock)
    table_functions: frozenset[str] | None = None

    def catalogue(self, reader: Any, extra: dict[str, Any] | None) -> Catalogue:
        """The server's databases (now) and table functions (once: they change with the
        server's version only), as the analyst statement checks need them."""
        if self.table_functions is None:
            rows = reader.query("SELECT lower(name) FROM system.table_functions",
                                settings=extra).result_rows
            self.table_functions = frozenset(str(r[0]) for r in rows)
        rows = reader.query("SELECT name FROM system.databases", settings=extra).result_rows
        return Catalogue(frozenset(str(r[0]) for r in rows), self.table_functions)

    def readonly_client(self) -> Any:
        """The read-only handle, opened on first use (callers hold ``reader_lock``)."""
        if self.reader is None:
            reader = _connect(self.dsn)
            if self.dsn.startswith("chdb:"):
                # Order matters: under readonly=1 no setting can change any more.
                reader.command(f"SET max_execution_time = {READONLY_MAX_EXECUTION_S}")
                reader.command("SET allow_introspection_functions = 0")
                reader.command("SET readonly = 1")
            self.reader = reader
        return self.reader


class ClickHouse:
    """A thin, thread-safe wrapper: ``query``/``command``/``insert`` plus async twins."""

    def __init__(self, dsn: str, database: str = "nova", *, create: bool = True) -> None:
        self.dsn = dsn
        self.database = database
        self.embedded = dsn.startswith("chdb:")
        if self.embedded:
            Path(dsn.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
        self._conn = _Connection(dsn, _connect(dsn))
        self._client = self._conn.client
        self._lock = self._conn.lock
        if create:  # readers (nova sql on a server) may hold a read-only account
            self.command(f"CREATE DATABASE IF NOT EXISTS {database}")

    def with_database(self, database: str) -> ClickHouse:
        """The same connection (and lock) bound to another database, created if missing."""
        twin = object.__new__(ClickHouse)
        twin.dsn, twin.database, twin.embedded = self.dsn, database, self.embedded
        twin._conn, twin._client, twin._lock = self._conn, self._client, self._lock
        twin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
        return twin

    def command(self, sql: str, settings: dict[str, Any] | None = None,
                parameters: dict[str, Any] | None = None) -> Any:
        with self._lock:
            return self._client.command(sql, parameters=parameters, settings=settings)

    def query(
        self, sql: str, parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        if settings and "readonly" in settings:
            # Never let ``readonly`` reach the writer's chdb session (see module docstring).
            rest = {k: v for k, v in settings.items() if k != "readonly"}
            return self.query_readonly(sql, parameters, rest or None)
        with self._lock:
            result = self._client.query(sql, parameters=parameters, settings=settings)
            return list(result.column_names), [tuple(r) for r in result.result_rows]

    def query_readonly(
        self, sql: str, parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None, *, database: str | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one analyst statement: metric tables only, no writes, DDL, host access or
        setting changes (see the module docstring and ``analytics.statements``).

        It runs in ``database`` (default: this wrapper's), where unqualified names resolve and
        outside which it may name nothing: an identity's scope database (``analytics.scopes``)
        confines it to that identity's rows. ``settings`` only apply on an HTTP server
        (``readonly``/``max_execution_time`` stay ours); the chdb reader's session refuses any
        setting change, so passing them there is a programming error.
        """
        if settings and self.embedded:
            raise ValueError("the chdb read-only session takes no per-query settings")
        conn = self._conn
        where = database or self.database
        with conn.reader_lock:
            reader = conn.readonly_client()
            reader.database = where
            extra = None if self.embedded else {**(settings or {}), **READONLY_SETTINGS}
            normalised = reader.query("SELECT formatQuerySingleLine(%(sql)s)",
                                      parameters={"sql": sql}, settings=extra).result_rows[0][0]
            statement = analyst_statement(str(normalised), database=where,
                                          catalogue=conn.catalogue(reader, extra))
            result = reader.query(statement, parameters=parameters, settings=extra)
            return list(result.column_names), [tuple(r) for r in result.result_rows]

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        cols, rows = self.query(sql, parameters)
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def scalar(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        _, rows = self.query(sql, parameters)
        return rows[0][0] if rows else None

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        with self._lock:
            self._client.insert(f"{self.database}.{table}", list(rows), column_names=list(columns))

    def insert_encoded(self, table: str, data: bytes, fmt: str,
                       settings: dict[str, Any] | None = None) -> None:
        """Insert ``data`` already in ClickHouse input format ``fmt`` (ClickHouse decodes it;
        ``analytics.avro_load``)."""
        with self._lock:
            self._client.raw_insert(f"{self.database}.{table}", None, data, settings=settings,
                                    fmt=fmt)

    async def ainsert_encoded(self, table: str, data: bytes, fmt: str,
                              settings: dict[str, Any] | None = None) -> None:
        await asyncio.to_thread(self.insert_encoded, table, data, fmt, settings)

    async def aquery(
        self, sql: str, parameters: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        return await asyncio.to_thread(self.query, sql, parameters)

    async def arows(
        self, sql: str, parameters: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.rows, sql, parameters)

    async def ainsert(
        self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str],
    ) -> None:
        await asyncio.to_thread(self.insert, table, rows, columns)

    def close(self) -> None:
        with self._conn.reader_lock:
            if self._conn.reader is not None:
                self._conn.reader.close()
                self._conn.reader = None
        with self._lock:
            self._client.close()


def build_clickhouse(settings: Settings, database: str | None = None) -> ClickHouse:
    return ClickHouse(settings.clickhouse_url, database or settings.clickhouse_database)
