"""Build the one ClickHouse client a process uses, from the DSN in settings.

``chdb://PATH`` is ClickHouse in-process: only one process may open a path, so the process that
runs the sink (the gateway, in ``nova up``) owns it and serves read-only queries to everyone
else (``nova sql``, the monitoring API). ``http(s)://`` DSNs use a real server that any client
can query. chdb calls block, so :class:`ClickHouse` serialises them on a lock and runs them in a
thread from async code.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import clickhouse_connect

from nova.settings import Settings


class ClickHouse:
    """A thin, thread-safe wrapper: ``query``/``command``/``insert`` plus async twins."""

    def __init__(self, dsn: str, database: str = "nova") -> None:
        self.dsn = dsn
        self.database = database
        self.embedded = dsn.startswith("chdb:")
        if self.embedded:
            Path(dsn.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
        self._client = clickhouse_connect.get_client(dsn=dsn)
        self._lock = threading.Lock()
        self.command(f"CREATE DATABASE IF NOT EXISTS {database}")

    def command(self, sql: str, settings: dict[str, Any] | None = None) -> Any:
        with self._lock:
            return self._client.command(sql, settings=settings)

    def query(
        self, sql: str, parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._lock:
            result = self._client.query(sql, parameters=parameters, settings=settings)
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

    async def aquery(
        self, sql: str, parameters: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        return await asyncio.to_thread(self.query, sql, parameters)

    async def arows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.rows, sql, parameters)

    async def ainsert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        await asyncio.to_thread(self.insert, table, rows, columns)

    def close(self) -> None:
        with self._lock:
            self._client.close()


def build_clickhouse(settings: Settings, database: str | None = None) -> ClickHouse:
    return ClickHouse(settings.clickhouse_url, database or settings.clickhouse_database)
