"""``nova sql`` answers through the running gateway, read-only, without disturbing the sink."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from analytics.access import QueryError
from analytics.queries import lane_row_count, table_counts
from nova.cli import app
from nova.cli.analytics import run_sql
from tests.integration.analytics_helpers import inject_side_records, submit
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration


async def test_nova_sql_answers_while_the_gateway_runs(gateway, worker_factory, settings) -> None:
    worker_factory()
    first = await submit(gateway, 3)
    await eventually(lambda: asyncio.to_thread(lambda: lane_row_count(gateway.clickhouse) >= 21),
                     timeout_s=90, message="lane events for the first batch")

    out = await asyncio.to_thread(
        run_sql, settings, "SELECT count() AS n FROM lane_events FINAL", "json")
    assert json.loads(out) == [{"n": 21}]

    # Writes and DDL are refused by ClickHouse itself, and say so in one line.
    for statement in ("DROP TABLE lane_events", "INSERT INTO alerts (event_id) VALUES ('x')",
                      "SELECT 1 SETTINGS readonly = 0"):
        with pytest.raises(QueryError, match="query refused"):
            await asyncio.to_thread(run_sql, settings, statement, "csv")

    # The analyst's read-only session did not leak into the sink's: new requests still land.
    second = await submit(gateway, 2)
    await eventually(lambda: asyncio.to_thread(
        lambda: lane_row_count(gateway.clickhouse, first + second) == 35),
        timeout_s=90, message="lane events after the analyst queries")

    # The command itself, as a user runs it (settings from the environment).
    env = settings.to_env()
    result = await asyncio.to_thread(
        CliRunner().invoke, app,
        ["sql", "--format", "csv", "SELECT lane, count() AS n FROM lane_events FINAL "
         "GROUP BY lane ORDER BY lane"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == ["lane,n", "A,5"]

    bad = await asyncio.to_thread(CliRunner().invoke, app, ["sql", "SELEKT 1"], env=env)
    assert bad.exit_code == 2
    assert bad.output.count("\n") == 1
    assert "query refused" in bad.output


async def test_sql_endpoint_needs_the_analyst_role(gateway) -> None:
    r = await gateway.http.post("/api/v2/analytics/sql", json={"sql": "SELECT 1"},
                                headers=gateway.auth("id-a", "member"))
    assert r.status_code == 403
    r = await gateway.http.post("/api/v2/analytics/sql", json={"sql": "SELECT 1 AS one"},
                                headers=gateway.auth("id-a", "analyst"))
    assert r.status_code == 200
    assert r.json() == {"columns": ["one"], "rows": [[1]]}


async def test_analyst_sql_cannot_reach_the_host(gateway, tmp_path) -> None:
    """readonly=2 let table functions and the scalar file() read host files (the JWT secret in
    /proc/self/environ) and write new ones; every form is now refused with a problem, and the
    sink's session is unaffected."""
    written = tmp_path / "pwned.csv"
    outfile = tmp_path / "outfile.txt"
    refused = (
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT line FROM file('/proc/self/environ', 'LineAsString')",
        "SELECT file('/proc/self/environ')",
        "SELECT `file` /* quoted */ ('/etc/passwd')",
        f"INSERT INTO FUNCTION file('{written}', 'CSV', 'a String') VALUES ('x')",  # noqa: S608
        f"SELECT 1 INTO OUTFILE '{outfile}'",
        "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
        "SELECT * FROM s3('http://127.0.0.1:9/bucket/x', 'LineAsString')",
        "SELECT * FROM remote('127.0.0.1:9', system.one)",
        "SELECT * FROM executable('id', 'TSV', 'a String')",
        "SELECT * FROM python(secret)",
        "SELECT 1; SELECT file('/etc/passwd')",
        "SELECT 1 SETTINGS max_execution_time = 100000",
    )
    analyst = gateway.auth("id-a", "analyst")
    for statement in refused:
        r = await gateway.http.post("/api/v2/analytics/sql", json={"sql": statement},
                                    headers=analyst)
        assert r.status_code == 422, (statement, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"].startswith("query refused"), r.text
        assert "root:" not in r.text
        assert "NOVA_" not in r.text
    assert not written.exists()
    assert not outfile.exists()

    # A string that merely mentions file( is data, not a call.
    r = await gateway.http.post("/api/v2/analytics/sql", headers=analyst,
                                json={"sql": "SELECT 'file(' AS s, count() AS n FROM numbers(3)"})
    assert r.status_code == 200, r.text
    assert r.json() == {"columns": ["s", "n"], "rows": [["file(", 3]]}

    # The sink still ingests after the refusals.
    rid = "req-after-refusals"
    injected = await inject_side_records(gateway, [rid])
    await eventually(lambda: asyncio.to_thread(
        lambda: table_counts(gateway.clickhouse, ("llm_calls", "audit_events"))
        == {t: injected[t] for t in ("llm_calls", "audit_events")}),
        timeout_s=60, message="the sink to land records after the refused queries")
