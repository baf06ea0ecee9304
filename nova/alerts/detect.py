"""What is worth telling a person, from the events topic and the pending checkpoints.

Fed one decoded ``events`` record at a time (:meth:`AlertDetector.on_event`, the Avro dicts of
``schemas/event.avsc``) and the checkpoints now and then (:meth:`AlertDetector.waiting`):

- **provider down / recovered**: a ``PROVIDER_HEALTH`` announcement of ``down``, and one of
  ``healthy`` after ``down`` or ``degraded`` (a worker's first announcement after its start
  is ``healthy`` too: without a bad status before it, it is no recovery). Announcements of one
  provider share a Kafka key, so one dispatcher sees them in order; the last status per
  provider survives a restart through :meth:`AlertDetector.remember_provider` (the delivery
  log says what was announced last).
- **budget soft and hard limits**: the lanes' ``BUDGET_SOFT_LIMIT`` and ``BUDGET_EXCEEDED``
  alerts, once per budget, identity and UTC day (every request past a soft limit repeats it).
- **error-rate and latency spikes**: per identity and provider, over the last ``window_s``
  of LLM calls: at least ``min_calls`` calls and an error share of ``error_rate`` or more, or
  a p95 latency of successful calls of ``latency_ms`` or more; once per window.
- **checkpoints waiting** longer than ``checkpoint_wait_s``: once per checkpoint.

Windows live in memory: after a restart a spike is judged on the calls read since. Ids are
deterministic (:mod:`nova.alerts.notices`), so the same happening read twice is one alert.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from nova.alerts.notices import SYSTEM, Notice

HEALTH: Final = "PROVIDER_HEALTH"
BUDGETS: Final = {"BUDGET_SOFT_LIMIT": "budget.soft", "BUDGET_EXCEEDED": "budget.hard"}
BAD: Final = frozenset({"down", "degraded"})


@dataclass(frozen=True, slots=True)
class Thresholds:
    window_s: float = 300.0
    min_calls: int = 10
    error_rate: float = 0.5
    latency_ms: float = 10_000.0
    checkpoint_wait_s: float = 900.0


@dataclass(frozen=True, slots=True)
class Waiting:
    """A pending checkpoint as the sweep sees it (from the gateway's checkpoint book)."""

    checkpoint_id: str
    request_id: str
    identity: str
    created_at_ms: int
    expires_at_ms: int
    action: str | None


def _day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).date().isoformat()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class AlertDetector:
    def __init__(self, thresholds: Thresholds, *, keep: int = 10_000) -> None:
        self.t = thresholds
        self.keep = keep
        self.providers: dict[str, str] = {}  # provider → last announced status
        self._calls: dict[tuple[str, str], deque[tuple[int, bool, float]]] = {}
        self._fired: OrderedDict[str, None] = OrderedDict()  # spike ids already raised

    def remember_provider(self, provider: str, status: str) -> None:
        self.providers[provider] = status

    # -- events ------------------------------------------------------------------------------
    def on_event(self, event: Mapping[str, Any]) -> list[Notice]:
        alert, llm = event.get("alert"), event.get("llm")
        if event.get("kind") == "alert" and alert is not None:
            return self._alert(event, alert)
        if event.get("kind") == "llm" and llm is not None:
            return self._call(event, llm)
        return []

    def _alert(self, event: Mapping[str, Any], alert: Mapping[str, Any]) -> list[Notice]:
        kind, subject, ts = alert["alert_type"], str(alert["subject"]), int(event["ts"])
        if kind == HEALTH:
            status, before = str(alert["message"]), self.providers.get(subject)
            self.providers[subject] = status
            if status == "down" and before != "down":
                return [Notice(f"provider.down/{event['event_id']}", "provider.down", SYSTEM,
                               subject, f"provider {subject} is down", "high", ts,
                               {"provider": subject, "status": status})]
            if status == "healthy" and before in BAD:
                return [Notice(f"provider.recovered/{event['event_id']}", "provider.recovered",
                               SYSTEM, subject, f"provider {subject} has recovered (was {before})",
                               "info", ts, {"provider": subject, "status": status,
                                            "was": before})]
            return []
        if kind in BUDGETS:
            identity, which = str(event["identity_id"]), BUDGETS[kind]
            hard = which == "budget.hard"
            return [Notice(f"{which}/{identity}/{subject}/{_day(ts)}", which,  # type: ignore[arg-type]
                           identity, subject, str(alert["message"]),
                           "high" if hard else "warning", ts,
                           {"budget": subject, "request_id": event["request_id"]})]
        return []

    def _call(self, event: Mapping[str, Any], llm: Mapping[str, Any]) -> list[Notice]:
        if llm["status"] not in ("ok", "error"):
            return []  # skipped candidates are no calls
        identity, provider, ts = str(event["identity_id"]), str(llm["provider"]), int(event["ts"])
        calls = self._calls.setdefault((identity, provider), deque())
        calls.append((ts, llm["status"] == "ok", float(llm["latency_ms"])))
        horizon = ts - self.t.window_s * 1000
        while calls and calls[0][0] < horizon:
            calls.popleft()
        if len(calls) < self.t.min_calls:
            return []
        bucket = int(ts // (self.t.window_s * 1000))
        window = {"window_s": self.t.window_s, "provider": provider, "calls": len(calls)}
        out = []
        errors = sum(1 for _, ok, _ in calls if not ok)
        if errors / len(calls) >= self.t.error_rate:
            out += self._spike(
                f"error_rate/{identity}/{provider}/{bucket}", "error_rate", identity, provider,
                f"{errors} of the last {len(calls)} calls to {provider} failed "
                f"({errors / len(calls):.0%} over {self.t.window_s:g} s)", ts,
                {**window, "errors": errors, "error_rate": round(errors / len(calls), 4)})
        ok_latencies = [latency for _, ok, latency in calls if ok]
        if len(ok_latencies) >= self.t.min_calls:
            p95 = _p95(ok_latencies)
            if p95 >= self.t.latency_ms:
                out += self._spike(
                    f"latency/{identity}/{provider}/{bucket}", "latency", identity, provider,
                    f"calls to {provider} take {p95:.0f} ms at p95 over {self.t.window_s:g} s "
                    f"(threshold {self.t.latency_ms:g} ms)", ts, {**window, "p95_ms": p95})
        return out

    def _spike(self, alert_id: str, kind: str, identity: str, provider: str, message: str,
               ts: int, details: dict[str, Any]) -> list[Notice]:
        if alert_id in self._fired:
            return []
        self._fired[alert_id] = None
        while len(self._fired) > self.keep:
            self._fired.popitem(last=False)
        return [Notice(alert_id, kind, identity, provider, message,  # type: ignore[arg-type]
                       "warning", ts, details)]

    # -- checkpoints -------------------------------------------------------------------------
    def waiting(self, checkpoints: Iterable[Waiting], now_ms: int) -> list[Notice]:
        limit = self.t.checkpoint_wait_s * 1000
        out = []
        for cp in checkpoints:
            waited = now_ms - cp.created_at_ms
            if waited < limit or now_ms >= cp.expires_at_ms:
                continue
            how_long = (f"{waited / 1000:.0f} s" if waited < 120_000
                        else f"{waited / 60_000:.0f} min")
            out.append(Notice(
                f"checkpoint.waiting/{cp.checkpoint_id}", "checkpoint.waiting", cp.identity,
                cp.checkpoint_id,
                f"a {cp.action or 'request'} has waited {how_long} for an approver "
                f"(checkpoint {cp.checkpoint_id})", "warning", now_ms,
                {"checkpoint_id": cp.checkpoint_id, "request_id": cp.request_id,
                 "action": cp.action, "waited_s": round(waited / 1000),
                 "expires_at": cp.expires_at_ms}))
        return out
