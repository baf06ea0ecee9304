"""Retry policy: classification, Retry-After parsing and full-jitter backoff bounds."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nova.errors import ProviderError
from nova.llm.retry import ContextWindowError, RetryPolicy, classify, parse_retry_after

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


def err(status, retry_after=None):
    return ProviderError("x", provider="p", status=status, retry_after_s=retry_after)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        ("1.5", 1.5),
        (" 0 ", 0.0),
        ("-3", 0.0),
        ("Tue, 24 Nov 2026 12:00:30 GMT", 30.0),
        ("Tue, 24 Nov 2026 11:59:00 GMT", 0.0),  # in the past: go now
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (err(429), "rate_limited"),
        (err(500), "transient"),
        (err(503), "transient"),
        (err(529), "transient"),
        (err(408), "transient"),
        (err(None), "transient"),
        (ContextWindowError("too long", provider="p"), "context_overflow"),
        (err(400), "fatal"),
        (err(401), "fatal"),
        (err(403), "fatal"),
        (err(404), "fatal"),
        (err(422), "fatal"),
    ],
)
def test_errors_are_classified(error, kind):
    assert classify(error) == kind


POLICY = RetryPolicy(max_attempts_per_candidate=2, max_retry_after_s=30, rand=lambda: 1.0)


@pytest.mark.parametrize(
    ("error", "attempt", "has_fallback", "action", "delay"),
    [
        (err(429, 1.5), 1, True, "retry_same", 1.5),  # told when: wait as told
        (err(429, 1.5), 2, True, "fall_back", 0.0),  # but only so often
        (err(429, 120), 1, True, "fall_back", 0.0),  # too long to wait
        (err(429), 1, True, "fall_back", 0.0),
        (err(500), 1, True, "fall_back", 0.0),
        (err(None), 1, True, "fall_back", 0.0),
        (ContextWindowError("too long", provider="p"), 1, True, "fall_back", 0.0),
        (ContextWindowError("too long", provider="p"), 1, False, "fatal", 0.0),
        (err(400), 1, True, "fatal", 0.0),
        (err(401), 1, True, "fatal", 0.0),
        (err(500), 1, False, "retry_same", 0.5),  # last candidate: back off and retry
        (err(429), 1, False, "retry_same", 0.5),
        (err(500), 2, False, "fatal", 0.0),
    ],
)
def test_decisions(error, attempt, has_fallback, action, delay):
    decision = POLICY.decide(error, attempt_on_candidate=attempt, has_fallback=has_fallback)
    assert (decision.action, decision.delay_s) == (action, delay)


def test_backoff_doubles_up_to_the_cap():
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0, rand=lambda: 1.0)
    assert [policy.backoff_s(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert RetryPolicy(rand=lambda: 0.0).backoff_s(5) == 0.0


@given(st.integers(1, 60), st.floats(0, 1, exclude_max=True))
def test_full_jitter_stays_within_zero_and_the_exponential_ceiling(attempt, r):
    policy = RetryPolicy(base_delay_s=0.25, max_delay_s=20.0, rand=lambda: r)
    delay = policy.backoff_s(attempt)
    assert 0.0 <= delay <= min(20.0, 0.25 * 2 ** (attempt - 1))
