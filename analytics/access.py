"""How an analyst's read-only SQL reaches ClickHouse wherever it is (``nova sql``, ``nova report``).

Order of preference, so the same command works whether or not the stack is running:

1. A gateway answers on NOVA_GATEWAY_HOST:NOVA_GATEWAY_PORT → POST /api/v2/analytics/sql with
   an ``analyst`` + ``operator`` JWT minted from NOVA_JWT_SECRET: whoever holds that secret
   runs the platform, and ``nova sql``/``nova report`` are about every identity's metrics.
   This is the only way to read an embedded (chdb) database while the stack runs: the
   gateway process owns the chdb path.
2. No gateway, ``http(s)://`` DSN → the server directly, ``readonly=1`` on every request.
3. No gateway, ``chdb://`` DSN → open the path in this process, read-only handle. If another
   process holds the path, a one-line ConfigError names the fix.

Every path refuses writes and DDL in ClickHouse itself (``readonly=1``), and every path judges
the statement the same way before it runs (metric tables only, no KILL or SYSTEM:
``analytics/statements.py``), so no path reads private content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from analytics.client import ClickHouse
from nova.auth.tokens import issue_token
from nova.errors import ConfigError, NovaError
from nova.settings import Settings

ANALYST_IDENTITY = "nova-cli"


class QueryError(NovaError):
    """ClickHouse (or the gateway) refused the statement; the message is theirs, one line."""


@dataclass(frozen=True)
class SqlResult:
    columns: list[str]
    rows: list[list[Any]]


class SqlAccess(Protocol):
    """Something that runs one read-only statement. ``where`` says which path was taken."""

    where: str

    def run(self, sql: str) -> SqlResult: ...

    def close(self) -> None: ...


def first_line(text: str, limit: int = 500) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return (lines[0] if lines else "no message")[:limit]


class GatewaySql:
    """The running gateway's analytics endpoint."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.where = f"gateway {settings.gateway_url}"
        token = issue_token(settings, sub=ANALYST_IDENTITY, identity=ANALYST_IDENTITY,
                            roles=["analyst", "operator"], now=datetime.now(UTC))
        self._http = httpx.Client(base_url=settings.gateway_url, transport=transport,
                                  headers={"Authorization": f"Bearer {token}"}, timeout=90)

    def run(self, sql: str) -> SqlResult:
        try:
            r = self._http.post("/api/v2/analytics/sql", json={"sql": sql})
        except httpx.HTTPError as exc:
            raise ConfigError(f"{self.where} did not answer ({type(exc).__name__}): check that "
                              "the stack is up, or stop whatever holds NOVA_GATEWAY_PORT") from exc
        if r.status_code == 401:
            raise ConfigError(f"{self.where} refused the analyst token ({_detail(r)}): run "
                              "`nova sql` with the same NOVA_JWT_SECRET as the gateway")
        if r.status_code >= 400:
            raise QueryError(_detail(r))  # the gateway already says "query refused: …"
        body = r.json()
        return SqlResult(list(body["columns"]), [list(row) for row in body["rows"]])

    def close(self) -> None:
        self._http.close()


def _detail(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return f"HTTP {r.status_code}"
    return first_line(str(body.get("detail") or body.get("title") or f"HTTP {r.status_code}"))


class DirectSql:
    """ClickHouse itself, through the read-only handle of :class:`ClickHouse`."""

    def __init__(self, ch: ClickHouse, *, owned: bool = True) -> None:
        self.ch = ch
        self.owned = owned
        kind = "embedded ClickHouse" if ch.embedded else "ClickHouse"
        self.where = f"{kind} {ch.dsn.split('@')[-1]} database {ch.database}"

    def run(self, sql: str) -> SqlResult:
        try:
            columns, rows = self.ch.query_readonly(sql)
        except Exception as exc:
            raise QueryError(f"query refused: {first_line(str(exc))}") from exc
        return SqlResult(columns, [list(r) for r in rows])

    def close(self) -> None:
        if self.owned:
            self.ch.close()


def gateway_listening(settings: Settings) -> bool:
    from nova.kafka.launcher import port_open

    return port_open(settings.gateway_port, settings.gateway_host)


def open_sql(settings: Settings) -> SqlAccess:
    """The best available read-only path (see module docstring)."""
    if gateway_listening(settings):
        return GatewaySql(settings)
    ch = ClickHouse(settings.clickhouse_url, settings.clickhouse_database,
                    create=settings.embedded_clickhouse)
    return DirectSql(ch)
