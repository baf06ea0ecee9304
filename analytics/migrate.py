"""Versioned ClickHouse migrations: ``analytics/migrations/NNNN_name.sql``, applied in order once.

Applied versions are recorded in ``schema_migrations``; statements use ``CREATE … IF NOT
EXISTS`` so a migration interrupted half-way can simply run again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from analytics.client import ClickHouse

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self, database: str) -> list[str]:
        lines = self.path.read_text().splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("--"))
        return [s.strip().replace("{db}", database) for s in text.split(";") if s.strip()]


def discover() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = _NAME.match(path.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), path))
    return found


def migrate(ch: ClickHouse) -> list[int]:
    """Apply every migration not yet recorded; return the versions applied now."""
    db = ch.database
    ch.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    applied_sql = f"SELECT version FROM {db}.schema_migrations FINAL"  # noqa: S608 - our db name
    done = {int(r[0]) for r in ch.query(applied_sql)[1]}
    applied = []
    for mig in discover():
        if mig.version in done:
            continue
        for stmt in mig.statements(db):
            ch.command(stmt)
        ch.insert("schema_migrations", [[mig.version, mig.name]], ["version", "name"])
        applied.append(mig.version)
    return applied
