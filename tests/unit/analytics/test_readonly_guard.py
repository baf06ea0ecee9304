"""The host-reaching forms ClickHouse's readonly=1 still runs are refused before they run.

These texts are already in ClickHouse's normalised form; ``test_analyst_statements`` has
ClickHouse normalise hostile ones first.
"""

from __future__ import annotations

import pytest

from analytics.client import RefusedQueryError
from analytics.statements import Catalogue, analyst_statement

NOTHING_KNOWN = Catalogue()  # the static floor alone must refuse all of these


def checked(sql: str) -> str:
    return analyst_statement(sql, database="nova", catalogue=NOTHING_KNOWN)


@pytest.mark.parametrize("sql", [
    "SELECT file('/proc/self/environ')",
    "SELECT `file`('/etc/passwd')",
    'SELECT "file" (\'/etc/passwd\')',
    "SELECT arrayMap(x -> file(x), ['/etc/passwd'])",
    "SELECT * FROM url('http://h/x', 'LineAsString')",
    "SELECT * FROM Python(secret)",
    "SELECT * FROM merge('nova', '.*')",
    "SELECT 1 INTO OUTFILE '/tmp/x' APPEND",
])
def test_host_reaching_statements_are_refused(sql: str) -> None:
    with pytest.raises(RefusedQueryError):
        checked(sql)


@pytest.mark.parametrize("sql", [
    "SELECT count() FROM lane_events FINAL",
    "SELECT 'file(' AS s, 'INTO OUTFILE' AS `INTO OUTFILE`",
    "SELECT profile, url FROM t WHERE file_name = 'x'",
])
def test_ordinary_statements_pass_unchanged(sql: str) -> None:
    assert checked(sql) == sql
