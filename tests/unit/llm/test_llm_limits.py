"""Token-bucket math for rpm and tpm limits, with time passed in."""

import math

import pytest

from nova.llm.limits import RateLimiter


def limiter(**limits):
    lim = RateLimiter()
    for key, (rpm, tpm) in limits.items():
        lim.configure(key, rpm=rpm, tpm=tpm)
    return lim


def test_rpm_allows_a_full_minute_of_burst_then_asks_to_wait():
    lim = limiter(p=(3, None))
    for _ in range(3):
        assert lim.acquire(["p"], 0, now=0).allowed
    denied = lim.acquire(["p"], 0, now=0)
    assert not denied.allowed
    assert denied.limit == "p:rpm"
    assert denied.wait_s == pytest.approx(20.0)  # 3 per minute refill one every 20 s
    assert lim.acquire(["p"], 0, now=20).allowed


def test_tpm_wait_is_the_time_to_refill_the_shortfall():
    lim = limiter(p=(None, 600))  # 10 tokens per second
    assert lim.acquire(["p"], 500, now=0).allowed
    denied = lim.check(["p"], 300, now=0)
    assert (denied.allowed, denied.limit) == (False, "p:tpm")
    assert denied.wait_s == pytest.approx(20.0)  # need 200 more at 10/s
    assert lim.check(["p"], 300, now=20).allowed


def test_a_request_larger_than_the_bucket_can_never_fit():
    denied = limiter(p=(None, 100)).check(["p"], 101, now=0)
    assert not denied.allowed
    assert math.isinf(denied.wait_s)


def test_several_keys_are_taken_atomically_and_the_longest_wait_is_named():
    lim = limiter(**{"provider:openai": (100, None), "identity:abc": (1, None)})
    assert lim.acquire(["provider:openai", "identity:abc"], 0, now=0).allowed
    denied = lim.acquire(["provider:openai", "identity:abc"], 0, now=0)
    assert denied.limit == "identity:abc:rpm"
    assert denied.wait_s == pytest.approx(60)
    # the denied request took nothing from the provider bucket
    assert lim.export_state()["provider:openai:rpm"]["tokens"] == 99


def test_unconfigured_keys_are_unlimited():
    lim = RateLimiter()
    for _ in range(1000):
        assert lim.acquire(["anything"], 10**6, now=0).allowed


def test_settle_corrects_the_estimate_and_can_go_into_debt():
    lim = limiter(p=(None, 60))
    lim.acquire(["p"], 10, now=0)
    lim.settle(["p"], 70, now=0)  # used 70 more than estimated: 60 - 10 - 70 = -20
    denied = lim.check(["p"], 1, now=0)
    assert denied.wait_s == pytest.approx(21.0)
    lim.settle(["p"], -1000, now=0)  # refunds never overfill
    assert lim.export_state()["p:tpm"]["tokens"] == 60


def test_exhausted_says_whether_anything_at_all_would_pass():
    lim = limiter(p=(1, 100))
    assert not lim.exhausted("p", now=0)
    lim.acquire(["p"], 10, now=0)
    assert lim.exhausted("p", now=0)
    assert not lim.exhausted("p", now=60)


def test_state_round_trips_through_plain_dicts():
    lim = limiter(p=(10, 1000))
    lim.acquire(["p"], 400, now=5)
    exported = lim.export_state()
    assert exported == {
        "p:rpm": {"tokens": 9.0, "updated_at": 5},
        "p:tpm": {"tokens": 600.0, "updated_at": 5},
    }
    other = limiter(p=(10, 1000))
    other.import_state(exported)
    assert other.check(["p"], 700, now=5).limit == "p:tpm"
    assert other.check(["p"], 700, now=11).allowed  # 6 s at 1000/60 per s refills 100


def test_a_worker_share_scales_every_limit():
    half = limiter(p=(10, 1000)).with_share(0.5)
    for _ in range(5):
        assert half.acquire(["p"], 0, now=0).allowed
    assert half.acquire(["p"], 0, now=0).limit == "p:rpm"
    with pytest.raises(ValueError, match="share"):
        half.with_share(0)


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        RateLimiter().configure("p", rpm=0)
