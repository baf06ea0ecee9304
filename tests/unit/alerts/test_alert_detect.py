"""What is worth telling a person: the detector on event records as the topic carries them."""

from __future__ import annotations

from typing import Any

from nova.alerts.detect import AlertDetector, Thresholds, Waiting
from nova.alerts.notices import SYSTEM, Notice, wants
from nova.entities.models import WebhookEntity
from nova.records import Alert, Event, LlmCall

IDENT = "identity-alice"
DAY = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def health(provider: str, status: str, ts: int = DAY) -> dict[str, Any]:
    return Event(event_id=f"provider-health/{provider}/{status}/{ts // 60_000}", kind="alert",
                 request_id=f"provider-health/{provider}", identity_id="system", ts=ts,
                 alert=Alert(alert_type="PROVIDER_HEALTH", subject=provider, message=status)
                 ).to_avro()


def budget(kind: str, ts: int = DAY, rid: str = "r1") -> dict[str, Any]:
    return Event(event_id=f"{rid}/alert/0", kind="alert", request_id=rid, identity_id=IDENT,
                 ts=ts, alert=Alert(alert_type=kind, subject="daily-cap", message="spent 4 of 5")
                 ).to_avro()


def call(status: str, latency: float = 100.0, ts: int = DAY, provider: str = "openai",
         identity: str = IDENT) -> dict[str, Any]:
    return Event(event_id=f"r-{ts}/llm/1", kind="llm", request_id=f"r-{ts}", identity_id=identity,
                 ts=ts, llm=LlmCall(provider=provider, model="m", tokens_in=1, tokens_out=1,
                                    cost_usd=0.0, latency_ms=latency, attempt=1, status=status)
                 ).to_avro()


def kinds(notices: list[Notice]) -> list[str]:
    return [n.kind for n in notices]


def test_provider_down_then_recovered_once_each() -> None:
    d = AlertDetector(Thresholds())
    assert d.on_event(health("openai", "healthy")) == []  # a worker's first word: no recovery
    assert kinds(d.on_event(health("openai", "down"))) == ["provider.down"]
    assert d.on_event(health("openai", "down", DAY + 60_000)) == []  # another worker agrees
    [back] = d.on_event(health("openai", "healthy", DAY + 120_000))
    assert (back.kind, back.identity, back.subject) == ("provider.recovered", SYSTEM, "openai")
    assert back.details["was"] == "down"
    assert kinds(d.on_event(health("openai", "degraded"))) == []
    assert kinds(d.on_event(health("openai", "healthy", DAY + 180_000))) == ["provider.recovered"]


def test_a_remembered_down_provider_recovers_after_a_restart() -> None:
    d = AlertDetector(Thresholds())
    d.remember_provider("anthropic", "down")
    assert kinds(d.on_event(health("anthropic", "healthy"))) == ["provider.recovered"]


def test_budget_limits_once_per_budget_and_day() -> None:
    d = AlertDetector(Thresholds())
    [soft] = d.on_event(budget("BUDGET_SOFT_LIMIT"))
    [again] = d.on_event(budget("BUDGET_SOFT_LIMIT", DAY + 3_600_000, rid="r2"))
    [tomorrow] = d.on_event(budget("BUDGET_SOFT_LIMIT", DAY + 86_400_000, rid="r3"))
    [hard] = d.on_event(budget("BUDGET_EXCEEDED"))
    assert soft.alert_id == again.alert_id != tomorrow.alert_id
    assert (soft.kind, soft.identity, soft.severity) == ("budget.soft", IDENT, "warning")
    assert (hard.kind, hard.severity) == ("budget.hard", "high")


def test_an_error_rate_spike_needs_enough_calls_and_fires_once_a_window() -> None:
    d = AlertDetector(Thresholds(window_s=60, min_calls=4, error_rate=0.5))
    got: list[Notice] = []
    for i, status in enumerate(["ok", "error", "error"]):
        got += d.on_event(call(status, ts=DAY + i))
    assert got == []  # three calls: too few to judge
    got += d.on_event(call("error", ts=DAY + 3))
    assert kinds(got) == ["error_rate"]
    assert got[0].details["errors"] == 3
    for i in range(4, 10):
        got += d.on_event(call("error", ts=DAY + i))
    assert kinds(got) == ["error_rate"]  # once in the window
    assert d.on_event(call("error", identity="identity-bob", ts=DAY)) == []  # not bob's


def test_old_calls_leave_the_window() -> None:
    d = AlertDetector(Thresholds(window_s=10, min_calls=3, error_rate=0.5))
    for i in range(2):
        d.on_event(call("error", ts=DAY + i))
    assert d.on_event(call("ok", ts=DAY + 60_000)) == []  # the errors are a minute old
    assert d.on_event(call("error", ts=DAY + 60_001)) == []


def test_a_latency_spike_is_the_p95_of_successful_calls() -> None:
    d = AlertDetector(Thresholds(window_s=60, min_calls=5, latency_ms=1000))
    got: list[Notice] = []
    for i in range(5):
        got += d.on_event(call("ok", latency=50.0 if i < 3 else 5000.0, ts=DAY + i))
    assert kinds(got) == ["latency"]
    assert got[0].details["p95_ms"] == 5000.0
    calm = AlertDetector(Thresholds(window_s=60, min_calls=5, latency_ms=1000))
    assert [n for i in range(20) for n in calm.on_event(call("ok", latency=50, ts=DAY + i))] == []


def test_checkpoints_waiting_too_long_until_they_expire() -> None:
    d = AlertDetector(Thresholds(checkpoint_wait_s=600))
    fresh = Waiting("cp-1", "r1", IDENT, DAY, DAY + 86_400_000, "PAYMENT")
    assert d.waiting([fresh], DAY + 599_000) == []
    [late] = d.waiting([fresh], DAY + 960_000)
    assert (late.alert_id, late.kind, late.identity) == (
        "checkpoint.waiting/cp-1", "checkpoint.waiting", IDENT)
    assert "16 min" in late.message
    assert d.waiting([fresh], DAY + 86_400_000) == []  # expired: no one can approve it now


def webhook(owner: str, scope: str, alerts: tuple[str, ...]) -> WebhookEntity:
    return WebhookEntity.model_validate({
        "id": f"w-{owner}-{scope}", "owner": owner, "scope": scope, "name": "n",
        "url": "https://hooks.example.com/x", "format": "json", "alerts": alerts,
        "secret": "s" * 32, "created_at": 0})


def test_who_wants_which_notice() -> None:
    soft = Notice("a", "budget.soft", IDENT, "cap", "m", "warning", 0)
    down = Notice("b", "provider.down", SYSTEM, "openai", "m", "high", 0)
    report = Notice("c", "report", SYSTEM, "weekly", "m", "info", 0)
    mine = webhook(IDENT, "identity", ("budget.soft", "provider.down", "report"))
    theirs = webhook("identity-bob", "identity", ("budget.soft", "provider.down"))
    ops = webhook("identity-ops", "global", ("budget.soft", "report"))
    assert [wants(w, soft) for w in (mine, theirs, ops)] == [True, False, True]
    assert [wants(w, down) for w in (mine, theirs, ops)] == [True, True, False]
    assert [wants(w, report) for w in (mine, theirs, ops)] == [False, False, True]


def test_an_operators_thresholds_replace_the_settings():
    from gateway.alerts.dispatcher import thresholds
    from nova.entities.models import AlertThresholdsEntity, Changed
    from nova.settings import load_settings

    settings = load_settings(environment="test")
    assert thresholds(settings).min_calls == settings.alert_min_calls
    chosen = AlertThresholdsEntity(window_s=60, min_calls=2, error_rate=0.9, latency_ms=50,
                                   checkpoint_wait_s=30,
                                   changed=Changed(updated_at=1, updated_by="ops"))
    assert thresholds(settings, chosen) == Thresholds(window_s=60, min_calls=2, error_rate=0.9,
                                                      latency_ms=50, checkpoint_wait_s=30)
