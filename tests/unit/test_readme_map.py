"""README.md's "Where things are" is written by hand: keep it in step with the tree.

Every lane's agent module and every route module is named there, and every path named there
exists, so a lane or a route group added, moved or renamed fails here until the map says so.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Where things are")
    return text[start:text.index("\n## ", start + 1)]


def named_paths() -> set[str]:
    return set(re.findall(r"`((?:nova|streams|gateway|analytics|schemas|tests)/[\w/.]*)`",
                          section()))


def test_every_path_the_map_names_exists() -> None:
    assert sorted(p for p in named_paths() if not (ROOT / p).exists()) == []


def test_the_map_names_every_lane_and_every_route_module() -> None:
    modules = [*ROOT.glob("streams/lanes/lane_*.py"), *ROOT.glob("gateway/routes/*.py")]
    wanted = {str(p.relative_to(ROOT)) for p in modules if p.name != "__init__.py"}
    assert sorted(wanted - named_paths()) == []
