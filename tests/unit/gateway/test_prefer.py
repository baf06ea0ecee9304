"""How long a submission waits: the body's wait_ms, RFC 7240 Prefer, or the server's default."""

from __future__ import annotations

import pytest

from gateway.prefer import MAX_WAIT_MS, PreferError, Wait, choose_wait, preferences

DEFAULT = 10_000


@pytest.mark.parametrize(
    ("wait_ms", "prefer", "expected"),
    [
        (None, [], Wait(DEFAULT)),  # a plain POST: the server's default, nothing applied
        (None, ["respond-async"], Wait(0, "respond-async")),
        (None, ["Respond-Async"], Wait(0, "respond-async")),  # names are case-insensitive
        (None, ["wait=3"], Wait(3000, "wait=3")),
        (None, ["wait=0"], Wait(0, "wait=0")),
        (None, ['wait="7"'], Wait(7000, "wait=7")),  # a word may be a quoted string
        (None, ["wait = 5"], Wait(5000, "wait=5")),  # BWS around "="
        (None, ["wait=600"], Wait(MAX_WAIT_MS, "wait=120")),  # bounded; the answer says so
        (None, ["respond-async, wait=4"], Wait(4000, "respond-async, wait=4")),  # RFC 7240 §4.1
        (None, ["respond-async", "wait=4"], Wait(4000, "respond-async, wait=4")),  # two headers
        (None, ["wait=2, wait=9"], Wait(2000, "wait=2")),  # the first instance counts
        (None, ["return=minimal"], Wait(DEFAULT)),  # unknown preferences are ignored
        (None, ["handling=lenient; x=1, wait=1"], Wait(1000, "wait=1")),
        (None, ["wait=1;foo=bar"], Wait(1000, "wait=1")),  # parameters are dropped
        (None, [" , ,"], Wait(DEFAULT)),
        (5000, [], Wait(5000)),  # the body's wait_ms is the API's own and wins
        (0, [], Wait(0)),
        (5000, ["respond-async"], Wait(5000)),  # ... over a preference, not applied then
        (2500, ["wait=60"], Wait(2500)),
    ],
)
def test_the_wait_of_a_submission(wait_ms: int | None, prefer: list[str], expected: Wait) -> None:
    assert choose_wait(wait_ms, prefer, DEFAULT) == expected


@pytest.mark.parametrize(
    "prefer",
    ["wait=soon", "wait=-1", "wait=1.5", "wait=", "wait", "wait=1e3", "wait=9999999999",
     "respond-async=yes", 'wait=""'],
)
def test_a_known_preference_with_a_bad_value_is_refused(prefer: str) -> None:
    with pytest.raises(PreferError, match="Prefer: "):
        choose_wait(None, [prefer], DEFAULT)
    with pytest.raises(PreferError):  # even beside a wait_ms: bad input is not ignored
        choose_wait(1000, [prefer], DEFAULT)


def test_the_default_is_bounded_like_every_wait() -> None:
    assert choose_wait(None, [], 10 * MAX_WAIT_MS) == Wait(MAX_WAIT_MS)


def test_preferences_keep_the_first_instance_and_their_values() -> None:
    assert preferences(["respond-async, wait=10", "wait=3; p=1", "return=minimal"]) == {
        "respond-async": None, "wait": "10", "return": "minimal"}
