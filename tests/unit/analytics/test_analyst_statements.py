"""An analyst's statement reads metric tables of its own database, and does nothing else.

Each statement is first normalised by ClickHouse's own parser, exactly as the gateway does it
(``formatQuerySingleLine``, here in chdb's stateless in-process engine: no server, no files),
so comments, case, spacing and quoting cannot hide anything from the checks; the table
functions are the engine's own list. ``nova`` is the database statements run in.
"""

from __future__ import annotations

from functools import cache

import chdb
import pytest

from analytics.statements import Catalogue, RefusedQueryError, analyst_statement

DATABASES = frozenset({"nova", "nova_scope_0123", "replay_20250101_000000", "default", "system",
                       "information_schema", "INFORMATION_SCHEMA"})


def _literal(sql: str) -> str:
    return "'" + sql.replace("\\", "\\\\").replace("'", "\\'") + "'"


def normalised(sql: str) -> str:
    """ClickHouse's single-line form of ``sql`` (what the gateway checks and then runs)."""
    return str(chdb.query(f"SELECT formatQuerySingleLine({_literal(sql)})",
                          "TabSeparatedRaw")).rstrip("\n")


@cache
def catalogue() -> Catalogue:
    names = str(chdb.query("SELECT lower(name) FROM system.table_functions", "TabSeparatedRaw"))
    return Catalogue(DATABASES, frozenset(names.split()))


def check(sql: str, database: str = "nova") -> str:
    return analyst_statement(normalised(sql), database=database, catalogue=catalogue())


@pytest.mark.parametrize("sql", [
    "KILL QUERY WHERE 1",
    "kill query where query_id = 'sink-insert' sync",
    "/* just a comment */ KiLl   QuErY\n\tWHERE user = 'default'",
    "-- a line comment\nKILL MUTATION WHERE 1",
    "SYSTEM FLUSH LOGS",
    "system  stop merges",
    "INSERT INTO alerts (event_id) VALUES ('x')",
    "OPTIMIZE TABLE requests FINAL",
    "SET readonly = 0",
    "USE system",
    "DROP TABLE requests",
    "TRUNCATE TABLE requests",
    "ALTER TABLE requests DELETE WHERE 1",
    "CREATE TABLE x (a Int8) ENGINE = Memory",
    "EXISTS TABLE request_content",
    "SHOW PROCESSLIST",
    "SHOW GRANTS",
    "SHOW SETTINGS LIKE '%'",
    "SHOW DATABASES",
    "EXPLAIN AST KILL QUERY WHERE 1",
])
def test_only_select_with_show_describe_and_explain_run(sql: str) -> None:
    with pytest.raises(RefusedQueryError, match=r"not analytics|not allowed"):
        check(sql)


@pytest.mark.parametrize("sql", [
    "SELECT result FROM request_content",
    "select * from REQUEST_CONTENT",
    "SELECT * FROM `request_content`",
    'SELECT * FROM "request_content"',
    "SELECT * FROM `request\\x5fcontent`",
    "SELECT * FROM nova.request_content",
    "SELECT * FROM nova . request_content",
    "SELECT count() FROM requests WHERE request_id IN (SELECT request_id FROM request_content)",
    "SELECT (SELECT any(result) FROM request_content) AS leaked",
    "SELECT * FROM requests AS r JOIN request_content AS c USING request_id",
    "SELECT * FROM requests WHERE request_id IN request_content",
    "WITH request_content AS (SELECT * FROM request_content) SELECT * FROM request_content",
    "WITH x AS (SELECT result FROM nova.request_content) SELECT * FROM x",
    "SELECT 1 UNION ALL SELECT length(result) FROM request_content",
    "DESCRIBE request_content",
    "SHOW CREATE TABLE request_content",
    "SHOW COLUMNS FROM request_content",
    "EXPLAIN SYNTAX SELECT result FROM request_content",
])
def test_no_statement_names_the_private_content(sql: str) -> None:
    with pytest.raises(RefusedQueryError, match="private content"):
        check(sql)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM system.processes",
    "SELECT query FROM SYSTEM.PROCESSES",
    'SELECT * FROM "system"."query_log"',
    "SELECT * FROM `system`.`tables`",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM INFORMATION_SCHEMA.COLUMNS",
    "SELECT count() FROM requests WHERE request_id IN (SELECT query_id FROM system.processes)",
    "SHOW TABLES FROM system",
    "SELECT * FROM replay_20250101_000000.requests",
    "SELECT * FROM `replay\\x5f20250101_000000`.requests",
    "SELECT * FROM default.requests",
])
def test_no_statement_names_another_database(sql: str) -> None:
    with pytest.raises(RefusedQueryError, match="analytics database only"):
        check(sql)


def test_a_scope_database_may_not_name_the_main_one() -> None:
    assert check("SELECT count() FROM requests", database="nova_scope_0123")
    for sql in ("SELECT * FROM nova.requests", "SELECT * FROM `nova`.llm_calls",
                "SHOW TABLES FROM nova"):
        with pytest.raises(RefusedQueryError, match="analytics database only"):
            check(sql, database="nova_scope_0123")


@pytest.mark.parametrize("sql", [
    "SELECT * FROM merge('nova', 'request.*')",
    "SELECT * FROM merge(REGEXP('.*'), '.*')",
    "SELECT * FROM loop('nova', 'requests')",
    "SELECT * FROM remote('127.0.0.1', 'nova', 'requests')",
    "SELECT * FROM cluster('default', 'nova', 'requests')",
    "SELECT * FROM `merge`('nova', '.*')",
    "SELECT * FROM view(SELECT 1)",
    "SELECT * FROM mergeTreeIndex('nova', 'requests')",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
    "SELECT * FROM s3('http://127.0.0.1:9/b/x', 'LineAsString')",
    "SELECT * FROM executable('id', 'TSV', 'a String')",
    "SELECT * FROM Python(secret)",
    "SELECT file('/proc/self/environ')",
    "SELECT `file`('/etc/passwd')",
    "SELECT arrayMap(x -> file(x), ['/etc/passwd'])",
    "SELECT dictGet('secrets', 'value', 1)",
    "SELECT joinGet('nova.j', 'x', 1)",
])
def test_table_functions_and_scalar_readers_are_refused(sql: str) -> None:
    with pytest.raises(RefusedQueryError, match="function"):
        check(sql)


def test_into_outfile_is_refused() -> None:
    with pytest.raises(RefusedQueryError, match="OUTFILE"):
        check("SELECT 1 INTO OUTFILE '/tmp/x' APPEND")


def test_several_statements_are_a_syntax_error_before_any_check() -> None:
    for sql in ("SELECT 1; KILL QUERY WHERE 1", "SELECT 1; SELECT result FROM request_content"):
        with pytest.raises(RuntimeError, match="Multi-statements"):
            normalised(sql)


@pytest.mark.parametrize("sql", [
    "SELECT count() FROM lane_events FINAL",
    "select provider, sum(cost_usd) from llm_calls final group by provider",
    "WITH t AS (SELECT request_id FROM requests) SELECT count() FROM t",
    "SELECT * FROM v_top_spenders(since='2025-01-01 00:00:00', until='2025-02-01 00:00:00')",
    "SELECT * FROM nova.requests",
    "SELECT number FROM numbers(3)",
    "SELECT * FROM generateRandom('a Int8') LIMIT 1",
    "SELECT 'request_content' AS s, 'system.processes' AS t, 'file(' AS u",
    "SELECT profile, url FROM t WHERE file_name = 'x'",
    "(SELECT 1) UNION ALL (SELECT 2)",
    "SHOW TABLES",
    "SHOW CREATE TABLE requests",
    "SHOW COLUMNS FROM llm_calls",
    "DESCRIBE requests",
    "EXPLAIN SELECT * FROM requests",
    "EXPLAIN PIPELINE SELECT count() FROM requests",
    "explain plan header = 1 select 1",
])
def test_metric_statements_pass_as_clickhouse_normalised_them(sql: str) -> None:
    assert check(sql) == normalised(sql)
