"""README.md's table of route domains counts the operations ``/openapi.json`` describes.

The table sits next to the report's own domains (``../shared/seed``) so a user of the original
system finds each one; the counts are written by hand, so a route added or removed fails here
until the table says so.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from gateway.app import create_app
from nova.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
METHODS = {"get", "post", "put", "patch", "delete"}
NESTED = ("/api/v2/llm/monitoring", "/api/v2/nova/monitoring", "/api/v2/llm/routing")


def domain(path: str) -> str:
    for prefix in NESTED:
        if path.startswith(prefix):
            return f"{prefix}/*"
    parts = path.split("/")
    return f"/api/v2/{parts[3]}/*" if path.startswith("/api/v2/") else path


def described() -> Counter[str]:
    counts: Counter[str] = Counter()
    for path, operations in create_app(Settings()).openapi()["paths"].items():
        counts[domain(path)] += len(METHODS & set(operations))
    return counts


def tabled() -> Counter[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("| Domain | Report's module | Nova operations |")
    table = text[start:text.index("\n\n", start)]
    rows = re.findall(r"^\| `([^`]+)` \| [^|]* \| (\d+) \|$", table, re.MULTILINE)
    return Counter({path: int(n) for path, n in rows})


def test_the_readme_counts_every_domains_operations() -> None:
    assert tabled() == described()
