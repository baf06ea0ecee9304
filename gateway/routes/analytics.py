"""Read-only SQL for analysts against the ClickHouse this process owns (``nova sql``).

Who sees what (roles act within their token's identity, ``nova.domain.roles``):

- ``analyst`` (or ``admin``): the metrics of its own identity. The statement runs in the
  identity's scope database (``analytics.scopes``), whose views hold that identity's rows of
  the metric tables and the named ``v_*`` views over them, and it may name no other database.
- ``operator`` (alone or with ``analyst``; ``nova sql`` mints such a token): the metric tables
  of every identity, in the analytics database itself.
- Nobody, operator included, reads private content here: answers and error texts live in
  ``request_content``, which no statement may name; prompts and context are not in ClickHouse.
  The owner of a request reads its answer at ``GET /api/v2/nova/requests/{id}``.

Only SELECT, WITH, SHOW (tables, columns, create), DESCRIBE and EXPLAIN run; KILL, SYSTEM and
everything else are refused before they reach ClickHouse (``analytics.statements``), with a
422 problem. What ClickHouse then runs is its own normalised text on the read-only handle
(session ``readonly=1``, a 60-second limit fixed before it): why a separate handle and why no
per-query settings, see ``analytics/client.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import functools
import ipaddress
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from analytics.access import first_line
from analytics.scopes import identity_scope
from gateway.bodies import StrictBody
from gateway.deps import PrincipalDep, ServicesDep, require_role
from nova.domain.roles import OPERATOR
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
    """Run one read-only statement on metric tables: the caller identity's, or every
    identity's for an operator (see the module docstring)."""
    if not principal.has_role(OPERATOR):
        require_role(principal, "analyst")
    ch = services.clickhouse
    if ch is None:
        raise HTTPException(503, "this gateway does not serve analytics (NOVA_RUN_SINK is off): "
                                 "query the gateway that runs the sink")
    database = None
    if not principal.has_role(OPERATOR):
        database = await asyncio.to_thread(identity_scope, ch, principal.identity)
    try:
        columns, rows = await asyncio.to_thread(
            functools.partial(ch.query_readonly, query.sql, database=database))
    except Exception as exc:
        raise SchemaError(f"query refused: {first_line(str(exc))}") from exc
    return SqlAnswer(columns=columns, rows=[[_jsonable(v) for v in r] for r in rows])
