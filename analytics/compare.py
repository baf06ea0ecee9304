"""What "the analytics equal a replay" means, checked the same way by the tests and the chaos run:
the same counts per table, the same deduplicated rows in every table, every view the same answer.

Floats are rounded (sums added in another order differ in the last bits) and rows sorted, so
two databases built from the same topics compare equal whatever order their sinks read in.
The latency rollup's quantiles are t-digest estimates, whose last digits depend on the order the
rows were merged in: they compare within :data:`QUANTILE_TOLERANCE`, its counts exactly.
"""

from __future__ import annotations

import math
from typing import Any

from analytics.client import ClickHouse
from analytics.queries import table_counts
from analytics.rows import COLUMNS

VIEWS = ("v_cost_daily", "v_cost_per_request_by_task", "v_lane_latency_hourly",
         "v_provider_latency_hourly", "v_provider_health_daily", "v_checkpoint_decisions_daily",
         "v_governance_denials_daily", "v_pipeline_events")
ROLLUPS = ("rollup_cost_daily",)
# t-digest's own error at these sizes is well under this; a real difference (rows missing or
# counted twice) shows in the exact counts beside the quantiles
QUANTILE_TOLERANCE = 0.05
TABLES = tuple(COLUMNS)


def normalise(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Round floats so sums added in another order compare equal; sort for set equality."""
    def fix(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) else round(v, 9)
        if isinstance(v, list | tuple):
            return tuple(fix(x) for x in v)
        return v
    return sorted((tuple(fix(v) for v in r) for r in rows), key=repr)


def snapshot(ch: ClickHouse) -> dict[str, Any]:
    """Counts per table, every table's deduplicated content, every view's answer."""
    out: dict[str, Any] = {"counts": table_counts(ch, TABLES)}
    for t in (*TABLES, *ROLLUPS):
        final = "" if t.startswith("rollup") else " FINAL"
        out[t] = normalise(ch.query(f"SELECT * FROM {ch.database}.{t}{final}")[1])  # noqa: S608
    for v in VIEWS:
        out[v] = normalise(ch.query(f"SELECT * FROM {ch.database}.{v}")[1])  # noqa: S608
    out["latency_rollup"] = normalise(ch.query(
        "SELECT kind, subject, sum(events), sum(errors), "  # noqa: S608
        "arrayMap(x -> round(x, 3), quantilesTDigestMerge(0.5, 0.95, 0.99)(q)) "
        f"FROM {ch.database}.rollup_latency_hourly GROUP BY kind, subject")[1])
    return out


def differences(live: dict[str, Any], replayed: dict[str, Any]) -> list[str]:
    """The parts of two snapshots that differ (empty: equal)."""
    return sorted(k for k in live.keys() | replayed.keys()
                  if not _same(k, live.get(k), replayed.get(k)))


def _same(part: str, live: Any, replayed: Any) -> bool:
    if part != "latency_rollup" or live is None or replayed is None:
        return bool(live == replayed)
    if len(live) != len(replayed):
        return False
    for a, b in zip(live, replayed, strict=True):
        *exact_a, quantiles_a = a
        *exact_b, quantiles_b = b
        if exact_a != exact_b or len(quantiles_a) != len(quantiles_b):
            return False
        if not all(math.isclose(x, y, rel_tol=QUANTILE_TOLERANCE, abs_tol=0.5)
                   for x, y in zip(quantiles_a, quantiles_b, strict=True)):
            return False
    return True
