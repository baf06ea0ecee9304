"""Which statements an analyst may run, decided on ClickHouse's own reading of the text.

What went wrong before (issue 14): over the SQL route an analyst read every identity's answers
(``requests.result``) and ran ``KILL QUERY``, which cancelled the sink's inserts; ``readonly=1``
stops writes and DDL, not reads of private tables, ``KILL`` or ``SYSTEM``. The checks, in order:

1. ClickHouse parses the statement and prints it back (``formatQuerySingleLine``, in
   ``analytics.client``): comments are gone, whitespace and keyword case normalised, quoting
   canonical (`` `nova\\x5fcontent` `` is printed ``nova_content``), and several statements in
   one are a syntax error. Everything below reads that text, so it judges what ClickHouse will
   run, not what a pattern guesses from what the analyst typed.
2. The kind of statement, by its leading keyword: ``SELECT``, ``WITH``, ``DESCRIBE``,
   ``EXPLAIN`` of a SELECT, and ``SHOW TABLES | COLUMNS | CREATE TABLE | CREATE VIEW``. Anything
   else (``KILL``, ``SYSTEM``, ``SET``, ``USE``, ``INSERT``, ``OPTIMIZE``, ``SHOW PROCESSLIST``,
   ``SHOW GRANTS``, ...) is refused.
3. Every name in it, bare or quoted, wherever it stands (FROM, JOIN, IN, a subquery, a CTE,
   DESCRIBE, SHOW ... FROM), against: the private content tables (:data:`PRIVATE_TABLES`), the
   system databases, and every database of the server except the one the statement runs in. A
   statement can only reach a table of another database by naming that database, so this bounds
   what it reads whatever the syntax. (A column or alias that happens to be called ``system`` is
   refused too: the price of not having to understand the grammar.)
4. Every call against ClickHouse's own list of table functions (``system.table_functions``,
   with :data:`KNOWN_TABLE_FUNCTIONS` as a floor): only the few that generate rows
   (:data:`ROW_GENERATORS`) are allowed. ``merge()``, ``loop()``, ``remote()``, ``cluster()``
   name tables in strings, which step 3 cannot see; ``file()``, ``url()`` and the like reach
   the host. A table function a future ClickHouse adds is refused until it is on the list.
5. Scalar functions that read data by name (``dictGet*``, ``joinGet*``) and the scalar
   ``file()``, which ``readonly=1`` still runs; and ``INTO OUTFILE``.

This is the same on the embedded engine and on a server: it runs in the gateway (and in
``nova sql``) before the statement reaches either. Which *rows* a statement sees is not decided
here: a non-operator's statement runs in its identity's scope database (``analytics.scopes``),
whose views hold that identity's metrics and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Tables whose columns are prompts, context or answers: never readable over analyst SQL.
PRIVATE_TABLES: Final = frozenset({"request_content"})
SYSTEM_DATABASES: Final = frozenset({"system", "information_schema"})

# Table functions that only generate rows from their arguments.
ROW_GENERATORS: Final = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries",
    "generaterandom", "primes", "values", "null", "format",
})
# Table functions refused even when system.table_functions cannot be read: every one of them
# reaches another table, the host or the network.
KNOWN_TABLE_FUNCTIONS: Final = frozenset({
    "file", "filecluster", "url", "urlcluster", "s3", "s3cluster", "gcs", "oss", "cosn",
    "azureblobstorage", "azureblobstoragecluster", "hdfs", "hdfscluster", "remote",
    "remotesecure", "cluster", "clusterallreplicas", "input", "executable", "python", "eval",
    "mysql", "postgresql", "sqlite", "mongodb", "redis", "jdbc", "odbc", "merge", "loop", "view",
    "viewifpermitted", "viewexplain", "dictionary", "mergetreeindex", "mergetreeprojection",
    "mergetreeanalyzeindexes", "mergetreeanalyzeindexesuuid", "filesystem", "iceberg",
    "deltalake", "hudi", "paimon", "arrowstream", "fuzzjson", "fuzzquery",
})
# Scalar functions that reach outside the database or read data by name.
_SCALAR_REFUSED: Final = frozenset({"file", "joinget", "joingetornull"})

_TOKEN = re.compile(r"'(?:[^'\\]|\\.)*'|`((?:[^`\\]|\\.)*)`|\"((?:[^\"\\]|\\.)*)\""
                    r"|([A-Za-z_][A-Za-z0-9_]*)")
_OUTFILE = re.compile(r"\bINTO\s+OUTFILE\b", re.IGNORECASE)
_SETTINGS = r"(?:[A-Za-z_][A-Za-z0-9_]* = [^ ,]+(?:, [A-Za-z_][A-Za-z0-9_]* = [^ ,]+)* )?"
_SHAPES: Final = {
    "SELECT": re.compile(r"^SELECT\b"),
    "WITH": re.compile(r"^WITH\b"),
    "DESCRIBE": re.compile(r"^DESCRIBE TABLE\b"),
    "EXPLAIN": re.compile(r"^EXPLAIN (?:(?:AST|SYNTAX|QUERY TREE|PLAN|PIPELINE|ESTIMATE) )?"
                          + _SETTINGS + r"(?:SELECT|WITH)\b"),
    "SHOW": re.compile(r"^SHOW (?:(?:FULL|EXTENDED) )*(?:TABLES|COLUMNS|CREATE (?:TABLE|VIEW))\b"),
}


class RefusedQueryError(ValueError):
    """An analyst statement is not one analysts may run; the message says which rule said no."""


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What the server holds that a statement could name: its databases and table functions."""

    databases: frozenset[str] = frozenset()
    table_functions: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Names:
    names: tuple[str, ...]   # every identifier, quoted ones unquoted
    called: frozenset[str]   # identifiers followed by "(", lower-cased
    bare: str                # the text without literals and quoted names


def _unescape(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted)


def _names(normalised: str) -> _Names:
    """Identifiers and calls of ``normalised``; string literals are data, never names."""
    names: list[str] = []
    called: set[str] = set()
    bare: list[str] = []
    last = 0
    for token in _TOKEN.finditer(normalised):
        quoted = token.group(1) if token.group(1) is not None else token.group(2)
        name = _unescape(quoted) if quoted is not None else token.group(3)
        bare.append(normalised[last:token.start()] + (token.group(3) or " _ "))
        last = token.end()
        if name is None:
            continue
        names.append(name)
        if normalised[last:].lstrip().startswith("("):
            called.add(name.lower())
    bare.append(normalised[last:])
    return _Names(tuple(names), frozenset(called), "".join(bare))


def statement_kind(normalised: str) -> str:
    """The statement's kind if analysts may run that kind, else RefusedQueryError."""
    found = re.match(r"[A-Za-z]+", normalised)
    keyword = found.group(0).upper() if found else ""
    shape = _SHAPES.get(keyword)
    if shape is None:
        raise RefusedQueryError(f"{keyword or 'this'} statements are not analytics: only "
                                "SELECT, WITH, SHOW, DESCRIBE and EXPLAIN are")
    if not shape.match(normalised):
        what = {"SHOW": "SHOW TABLES, SHOW COLUMNS and SHOW CREATE TABLE/VIEW are",
                "EXPLAIN": "EXPLAIN explains a SELECT only",
                "DESCRIBE": "DESCRIBE describes a table only"}.get(keyword, "")
        raise RefusedQueryError(f"this {keyword} is not allowed: {what}")
    return keyword


def analyst_statement(normalised: str, *, database: str, catalogue: Catalogue) -> str:
    """``normalised`` (ClickHouse's own single-line formatting) if an analyst may run it in
    ``database``; RefusedQueryError naming the first rule it breaks otherwise."""
    statement_kind(normalised)
    found = _names(normalised)
    others = {d.lower() for d in catalogue.databases if d != database} | SYSTEM_DATABASES
    for name in found.names:
        lowered = name.lower()
        if lowered in PRIVATE_TABLES:
            raise RefusedQueryError(f"{name} holds private content (prompts, answers): "
                                    "analysts read metric tables only")
        if lowered in others and name != database:
            raise RefusedQueryError(f"{name}: analysts read the analytics database only")
    table_functions = (catalogue.table_functions | KNOWN_TABLE_FUNCTIONS) - ROW_GENERATORS
    for call in sorted(found.called):
        if call in table_functions or call in _SCALAR_REFUSED or call.startswith("dict"):
            raise RefusedQueryError(f"function {call}() reaches outside the metric tables")
    if _OUTFILE.search(found.bare):
        raise RefusedQueryError("INTO OUTFILE writes to the host")
    return normalised
