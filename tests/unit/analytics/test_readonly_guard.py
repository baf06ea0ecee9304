"""The host-reaching forms ClickHouse's readonly=1 still runs are refused before they run."""

from __future__ import annotations

import pytest

from analytics.client import RefusedQueryError, checked_readonly_sql


@pytest.mark.parametrize("sql", [
    "SELECT file('/proc/self/environ')",
    "SELECT `file`('/etc/passwd')",
    'SELECT "file" (\'/etc/passwd\')',
    "SELECT arrayMap(x -> file(x), ['/etc/passwd'])",
    "SELECT * FROM url('http://h/x', 'LineAsString')",
    "SELECT * FROM Python(secret)",
    "SELECT 1 INTO OUTFILE '/tmp/x' APPEND",
])
def test_host_reaching_statements_are_refused(sql: str) -> None:
    with pytest.raises(RefusedQueryError):
        checked_readonly_sql(sql)


@pytest.mark.parametrize("sql", [
    "SELECT count() FROM lane_events FINAL",
    "SELECT 'file(' AS s, 'INTO OUTFILE' AS `INTO OUTFILE`",
    "SELECT profile, url FROM t WHERE file_name = 'x'",
])
def test_ordinary_statements_pass_unchanged(sql: str) -> None:
    assert checked_readonly_sql(sql) == sql
