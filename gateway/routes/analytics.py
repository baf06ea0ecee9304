"""Read-only SQL for analysts against the ClickHouse this process owns (``nova sql``).

The statement runs on the ClickHouse wrapper's read-only handle (session ``readonly=1``, a
60-second limit fixed before it), so ClickHouse itself refuses writes, DDL, table functions that
reach the host and attempts to lift the restriction; the wrapper refuses the few host-reaching
forms readonly=1 still runs (scalar ``file()``, ``INTO OUTFILE``). Why a separate handle and
why no per-query settings: see ``analytics/client.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import ipaddress
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from analytics.access import first_line
from gateway.bodies import StrictBody
from gateway.deps import PrincipalDep, ServicesDep, require_role
from nova.errors import SchemaError

router = APIRouter(prefix="/api/v2/analytics", tags=["analytics"])

class SqlQuery(StrictBody):
    sql: str = Field(min_length=1, max_length=20_000)


class SqlAnswer(BaseModel):
    columns: list[str]
    rows: list[list[Any]]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID | ipaddress.IPv4Address
                  | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


@router.post("/sql", responses={401: {}, 403: {}, 422: {}, 503: {}})
async def sql(query: SqlQuery, principal: PrincipalDep, services: ServicesDep) -> SqlAnswer:
    """Run one read-only statement for an analyst (writes and DDL are refused by ClickHouse)."""
    require_role(principal, "analyst")
    ch = services.clickhouse
    if ch is None:
        raise HTTPException(503, "this gateway does not serve analytics (NOVA_RUN_SINK is off): "
                                 "query the gateway that runs the sink")
    try:
        columns, rows = await asyncio.to_thread(ch.query_readonly, query.sql)
    except Exception as exc:
        raise SchemaError(f"query refused: {first_line(str(exc))}") from exc
    return SqlAnswer(columns=columns, rows=[[_jsonable(v) for v in r] for r in rows])
