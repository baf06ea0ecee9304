"""The ``nova`` command line: one module per command group, each adding itself to ``app``.

This package is Nova's entry point, the one place that wires the components together (the
gateway, the worker, analytics), so it is also the only part of ``nova`` that may import them;
everything else in ``nova`` is the core they share (``tests/unit/test_import_graph.py``).

| Module | Commands |
|---|---|
| :mod:`nova.cli.kafka` | ``nova kafka fetch|start|stop|status|provision|acls`` |
| :mod:`nova.cli.serve` | ``nova up``, ``nova demo``, ``nova worker``, ``nova gateway`` |
| :mod:`nova.cli.keys` | ``nova token``, ``nova keys create|signing`` |
| :mod:`nova.cli.entities` | ``nova entities adopt`` |
| :mod:`nova.cli.audit` | ``nova audit verify`` |
| :mod:`nova.cli.analytics` | ``nova sql``, ``nova report``, ``nova replay`` |
| :mod:`nova.cli.fake_llm` | ``nova fake-llm`` |

Beside them: :mod:`nova.cli.stack` (the stack ``nova up`` and ``nova demo`` run) and
:mod:`nova.cli.demo` (the demo's script). Errors a user can fix print one line naming the fix
and exit 2 (:mod:`nova.cli.common`).
"""

from __future__ import annotations

import typer

from nova.cli import analytics, audit, entities, fake_llm, kafka, keys, serve

app = typer.Typer(
    help="Nova: governance-first LLM request pipeline on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for _group in (kafka, serve, keys, entities, analytics, audit, fake_llm):
    _group.register(app)


def main() -> None:
    app(prog_name="nova")


if __name__ == "__main__":
    main()
