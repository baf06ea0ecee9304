"""The import graph keeps its layers, so each part can be read, tested and changed alone.

From the bottom up: ``schemas`` (the contracts: the standard library, fastavro and
``nova.errors`` only), the ``nova`` core (settings, records, the pure ``nova.domain``, Kafka and
LLM clients), then ``analytics``, ``streams`` and ``gateway`` on top of the core (the gateway
also reads analytics; it never imports the lanes, nor the lanes the gateway), and ``nova.cli``,
the entry point that wires them together and so may import anything. No module imports,
directly or through others, a module that imports it back.

Every import counts, also one inside a function or under ``TYPE_CHECKING``: a reader follows
those as much as any other. The graph is read from the source with :mod:`ast`, nothing is
imported, so a planted back-edge fails here before it can fail at run time.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("nova", "streams", "schemas", "gateway", "analytics")

# Who may import whom among Nova's own modules: the most specific prefix of the importer wins.
# A module may always import modules of its own prefix.
CORE = ("nova", "schemas")
ALLOWED: Mapping[str, tuple[str, ...]] = {
    "schemas": ("schemas", "nova.errors"),
    "nova.domain": ("nova.domain", "nova.errors"),
    "nova": CORE,
    "analytics": (*CORE, "analytics"),
    "streams": (*CORE, "streams"),
    "gateway": (*CORE, "analytics", "gateway"),
    "nova.cli": PACKAGES,
    "nova.__main__": ("nova.cli",),  # ``python -m nova`` is the ``nova`` command
}
ENTRY_POINT = "nova.cli"  # only the entry point itself and ``nova.__main__`` import it
SCHEMAS_THIRD_PARTY = ("fastavro",)


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    return {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }


def imported_names(source: str, module: str, is_package: bool) -> set[tuple[str, str]]:
    """Every import of ``source``, anywhere in it, as (module, name): ``("p", "x")`` for
    ``from p import x``, ``("p.q", "")`` for ``import p.q``."""
    names: set[tuple[str, str]] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update((alias.name, "") for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.update((base, alias.name) for alias in node.names)
    return names


def resolve(name: tuple[str, str], known: set[str]) -> str | None:
    """The project module an import uses: ``p.x`` when ``from p import x`` names a module
    (importing a submodule is no use of its package), else the longest known prefix of ``p``."""
    base, member = name
    if member and f"{base}.{member}" in known:
        return f"{base}.{member}"
    parts = base.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = project_modules(root)
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        names = imported_names(path.read_text(), module, path.name == "__init__.py")
        graph[module] = {t for n in names if (t := resolve(n, known))} - {module}
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> str:
    return max((p for p in ALLOWED if within(module, p)), key=len)


def back_edges(graph: Mapping[str, set[str]]) -> list[str]:
    """Every import the layers forbid, as ``importer -> imported``."""
    wrong = []
    for importer, targets in sorted(graph.items()):
        layer = layer_of(importer)
        for target in sorted(targets):
            allowed = within(target, layer) or any(within(target, p) for p in ALLOWED[layer])
            if within(target, ENTRY_POINT) and layer not in (ENTRY_POINT, "nova.__main__"):
                allowed = False
            if not allowed:
                wrong.append(f"{importer} -> {target}")
    return wrong


def third_party(source: str, module: str, is_package: bool) -> set[str]:
    """Top-level names of modules ``source`` imports that are neither the standard library's
    nor Nova's."""
    tops = {base.split(".")[0] for base, _ in imported_names(source, module, is_package)}
    return {t for t in tops if t not in sys.stdlib_module_names and t not in PACKAGES}


def test_no_module_imports_itself_back_through_others() -> None:
    assert cycles(import_graph(ROOT)) == []


def test_each_layer_imports_only_the_layers_below_it() -> None:
    assert back_edges(import_graph(ROOT)) == []


def test_schemas_need_only_the_standard_library_and_fastavro() -> None:
    used = {
        name: third_party(path.read_text(), name, path.name == "__init__.py")
        for name, path in project_modules(ROOT, ["schemas"]).items()
    }
    assert {name: deps - set(SCHEMAS_THIRD_PARTY) for name, deps in used.items()} == {
        name: set() for name in used
    }


# The checks above pass on today's code; these show they would fail on the regressions they
# guard against, on small trees written for the purpose.


def _tree(tmp_path: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in PACKAGES:
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"nova/report.py": "from analytics.access import SqlAccess\n",
          "analytics/access.py": ""},
         ["nova.report -> analytics.access"]),
        ({"gateway/checkpoints.py": "def f():\n    from streams import convert\n",
          "streams/convert.py": ""},
         ["gateway.checkpoints -> streams.convert"]),
        ({"streams/lane.py": "from gateway import app\n", "gateway/app.py": ""},
         ["streams.lane -> gateway.app"]),
        ({"schemas/codec.py": "from nova import settings\n", "nova/settings.py": ""},
         ["schemas.codec -> nova.settings"]),
        ({"nova/domain/rules.py": "from nova.kafka import clients\n",
          "nova/domain/__init__.py": "", "nova/kafka/__init__.py": "",
          "nova/kafka/clients.py": ""},
         ["nova.domain.rules -> nova.kafka.clients"]),
        ({"nova/stack.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                           "    from nova.cli import app\n",
          "nova/cli/__init__.py": "app = 1\n"},
         ["nova.stack -> nova.cli"]),
        ({"nova/cli/__init__.py": "from gateway import app\nfrom analytics import replay\n"
                                  "from streams import worker\n",
          "gateway/app.py": "", "analytics/replay.py": "", "streams/worker.py": ""},
         []),
    ],
)
def test_a_forbidden_import_is_named(
    tmp_path: Path, files: Mapping[str, str], expected: list[str]
) -> None:
    assert back_edges(import_graph(_tree(tmp_path, files))) == expected


def test_a_cycle_is_named_also_through_a_function_level_import(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "nova/cli/__init__.py": "from nova.cli import keys\n",
        "nova/cli/keys.py": "def run():\n    from nova.cli import fail\n",
    })
    assert cycles(import_graph(root)) == [["nova.cli", "nova.cli.keys"]]


def test_importing_a_submodule_is_not_a_cycle_with_its_package(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "nova/domain/__init__.py": "from nova.domain.rules import decide\n",
        "nova/domain/rules.py": "from nova.domain import words\n",
        "nova/domain/words.py": "",
    })
    assert cycles(import_graph(root)) == []


def test_a_schema_module_importing_a_third_party_library_is_named(tmp_path: Path) -> None:
    source = "import json\nimport fastavro\nfrom pydantic import BaseModel\n"
    assert third_party(source, "schemas.codec", is_package=False) == {"fastavro", "pydantic"}


def test_only_open_reader_builds_a_kafka_consumer() -> None:
    """Every topic a process reads outside a lane is read through ``nova.kafka.tail``
    (credentials, start, decoding and shutdown in one place); Faust builds the lanes' own."""
    builders = {"kafka_consumer", "AIOKafkaConsumer"}
    allowed = {"nova.kafka.tail", "nova.kafka.clients"}
    calls = []
    for module, path in project_modules(ROOT).items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in builders and module not in allowed:
                    calls.append(f"{module}:{node.lineno}")
    assert calls == []
