"""Private content on the real stack: analysts read metrics, never answers or error texts.

The attacks (issue 14): ``SELECT result FROM requests`` over the SQL route gave 1,649 answers of
45 identities in one query, and 368 ``KILL QUERY`` calls cancelled 21 of the sink's inserts.
Here two identities' requests run through the worker and the fake provider, the sink lands
them, and analysts of every kind try to read the answers back: every attempt is a 4xx
problem+json naming no answer, an analyst sees its own identity's metrics only, an operator
every identity's metrics, and the owner still reads its answer through its own route.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from analytics.queries import request_final
from tests.integration.analytics_helpers import ROLLUPS, VIEWS
from tests.integration.conftest import eventually, finished, submit

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
SQL = "/api/v2/analytics/sql"


async def run(gw: Any, headers: dict[str, str], sql: str) -> Any:
    return await gw.http.post(SQL, json={"sql": sql}, headers=headers)


async def landed(gw: Any, request_ids: list[str]) -> dict[str, str]:
    """request id → answer, once the sink has written every request's content row."""
    ch = gw.clickhouse

    async def rows() -> dict[str, str] | None:
        found = await asyncio.to_thread(
            ch.rows, f"SELECT request_id, result FROM {ch.database}.request_content FINAL "  # noqa: S608
                     "WHERE request_id IN %(ids)s", {"ids": request_ids})
        return {r["request_id"]: r["result"] for r in found} if len(found) == len(
            request_ids) else None

    answers: dict[str, str] = await eventually(rows, 90, 0.3, message="the requests' content")
    return answers


HOSTILE = (
    "SELECT result FROM requests",
    "SELECT request_id, error FROM requests",
    "SELECT * FROM request_content",
    "select RESULT from REQUEST_CONTENT",
    "SELECT * FROM `request_content`",
    "SELECT count() FROM requests WHERE request_id IN (SELECT request_id FROM request_content)",
    "SELECT (SELECT any(result) FROM request_content) AS x",
    "WITH request_content AS (SELECT * FROM request_content) SELECT * FROM request_content",
    "SELECT * FROM requests AS r JOIN request_content AS c USING request_id",
    "SELECT * FROM merge(currentDatabase(), 'request.*')",
    "SELECT * FROM merge(REGEXP('.*'), 'request_content')",
    "SELECT * FROM loop(currentDatabase(), 'request_content') LIMIT 1",
    "SELECT query FROM system.processes",
    "SELECT * FROM system.query_log",
    "DESCRIBE request_content",
    "SHOW CREATE TABLE request_content",
    "/* comment */ KILL QUERY WHERE 1",
    "kill query where 1 sync",
    "SYSTEM FLUSH LOGS",
    "system stop merges",
    "OPTIMIZE TABLE requests FINAL",
    "INSERT INTO alerts (event_id) VALUES ('x')",
    "SET readonly = 0",
    "SHOW PROCESSLIST",
    "SELECT 1; SELECT result FROM request_content",
)


async def test_analysts_read_metrics_and_never_answers(
    gateway: Any, worker_factory: Any, llm_fake: Any,
) -> None:
    gw = gateway
    worker_factory(llm_fake.env())
    tag = uuid.uuid4().hex[:8]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    ids = {alice: [await submit(gw, alice, f"Summarise the notes {i}") for i in range(2)],
           bob: [await submit(gw, bob, f"Summarise the minutes {i}") for i in range(3)]}
    views = await finished(gw, ids[alice] + ids[bob])
    assert all(v.status == "completed" for v in views.values())
    answers = await landed(gw, ids[alice] + ids[bob])
    assert all(answers.values())

    analyst = gw.auth(alice, "analyst")
    operator = gw.auth(f"ops-{tag}", "analyst", "operator")
    for headers in (analyst, gw.auth(alice, *("member", "approver", "admin", "analyst")),
                    operator, gw.auth(f"ops-{tag}", "operator")):
        for sql in HOSTILE:
            r = await run(gw, headers, sql)
            assert r.status_code == 422, (sql, r.status_code, r.text)
            assert r.headers["content-type"].startswith(PROBLEM)
            assert r.json()["detail"].startswith("query refused")
            for answer in answers.values():
                assert answer not in r.text, sql

    # An analyst of alice sees alice's metrics: every table and named view, alice only.
    for sql in ("SELECT DISTINCT identity_id FROM requests",
                "SELECT DISTINCT identity_id FROM requests FINAL",
                "SELECT DISTINCT identity_id FROM llm_calls",
                "SELECT DISTINCT identity_id FROM lane_events",
                "SELECT DISTINCT identity_id FROM v_cost_daily",
                "SELECT identity_id FROM v_top_spenders(since='2000-01-01 00:00:00', "
                "until='2100-01-01 00:00:00')"):
        r = await run(gw, analyst, sql)
        assert (r.status_code, r.json()["rows"]) == (200, [[alice]]), (sql, r.text)
    r = await run(gw, analyst, "SELECT count() FROM requests")
    assert r.json()["rows"] == [[2]]
    for view in (*VIEWS, *ROLLUPS, "checkpoints", "alerts", "audit_events"):
        r = await run(gw, analyst, f"SELECT count() FROM {view}")  # noqa: S608
        assert r.status_code == 200, (view, r.text)
    for sql in (f"SELECT count() FROM {gw.clickhouse.database}.requests",  # noqa: S608
                f"SHOW TABLES FROM {gw.clickhouse.database}"):
        r = await run(gw, analyst, sql)  # the main database is out of an analyst's scope
        assert r.status_code == 422, (sql, r.text)

    # An operator sees every identity's metrics (in the main database), never the content.
    r = await run(gw, operator, "SELECT identity_id, count() FROM requests "  # noqa: S608
                                f"WHERE identity_id IN ('{alice}', '{bob}') "
                                "GROUP BY identity_id ORDER BY identity_id")
    assert (r.status_code, r.json()["rows"]) == (200, [[alice, 2], [bob, 3]]), r.text
    r = await run(gw, gw.auth(alice, "member"), "SELECT 1")
    assert r.status_code == 403

    # The owner reads its own answer: live, and from ClickHouse after a restart.
    rid = ids[alice][0]
    r = await gw.http.get(f"/api/v2/nova/requests/{rid}", headers=gw.auth(alice))
    assert r.json()["result"] == answers[rid]
    final = await asyncio.to_thread(request_final, gw.clickhouse, rid)
    assert final is not None
    assert (final["result"], final["identity_id"]) == (answers[rid], alice)
    r = await gw.http.get(f"/api/v2/nova/requests/{rid}", headers=gw.auth(bob, "operator"))
    assert r.status_code == 403  # an operator is no reader of content either

    # The refused KILLs cancelled nothing: the sink still lands new requests.
    later = await submit(gw, bob, "Summarise the last note")
    await finished(gw, [later])
    assert (await landed(gw, [later]))[later]
