"""Read-only SQL for analysts against the ClickHouse this process owns (``nova sql``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.deps import ClickHouseDep, PrincipalDep, require_role
from nova.errors import SchemaError

router = APIRouter(prefix="/api/v2/analytics", tags=["analytics"])


class SqlQuery(BaseModel):
    sql: str = Field(min_length=1, max_length=20_000)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


@router.post("/sql", responses={403: {}, 422: {}})
async def sql(query: SqlQuery, principal: PrincipalDep, ch: ClickHouseDep) -> dict[str, Any]:
    """Run one read-only statement (ClickHouse ``readonly=2``: writes and DDL are refused)."""
    require_role(principal, "analyst")
    try:
        columns, rows = await asyncio.to_thread(
            ch.query, query.sql, None, {"readonly": 2, "max_execution_time": 60}
        )
    except Exception as exc:  # noqa: BLE001 - ClickHouse's own message is the useful answer
        raise SchemaError(f"query refused: {str(exc).splitlines()[0][:500]}") from exc
    return {"columns": columns, "rows": [[_jsonable(v) for v in r] for r in rows]}
