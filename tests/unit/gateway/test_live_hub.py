"""The live hub: who receives what, bounded queues, and resuming from a position."""

from __future__ import annotations

import json
from typing import Any

from gateway.live.hub import Filter, LiveHub, Subscriber
from gateway.live.messages import TOPICS, LiveMessage

ALL = frozenset(TOPICS)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def msg(identity: str, topic: str = "lane.complete", *, ts: int = 1, user: str | None = None,
        n: int = 0) -> LiveMessage:
    return LiveMessage(topic=topic, id=f"{identity}/{topic}/{n}", ts=ts,  # type: ignore[arg-type]
                       identity=identity, request_id=f"r-{n}", data={"n": n}, user_id=user)


def flt(identity: str = "identity-a", *, sub: str = "user-a", approver: bool = False,
        identities: frozenset[str] | None = None, topics: frozenset[str] = ALL) -> Filter:
    return Filter(identity, sub, approver, topics, identities or frozenset({identity}))


def drain(subscriber: Subscriber) -> list[dict[str, Any]]:
    out = []
    while len(subscriber):
        out.append(json.loads(subscriber._queue.popleft()))
    return out


def hub(**kw: Any) -> LiveHub:
    return LiveHub(window_s=kw.pop("window_s", 60.0), buffer_max=kw.pop("buffer_max", 100), **kw)


def test_a_subscriber_receives_only_its_identitys_events() -> None:
    h = hub()
    a, b = Subscriber(10), Subscriber(10)
    h.subscribe(a, flt("identity-a"))
    h.subscribe(b, flt("identity-b", sub="user-b"))
    h.publish(msg("identity-a", n=1))
    h.publish(msg("identity-b", n=2))
    h.publish(msg("system", "provider.health", n=3))
    assert [e["data"]["n"] for e in drain(a)] == [1, 3]
    assert [e["data"]["n"] for e in drain(b)] == [2, 3]


def test_every_identity_for_an_operator_filter_but_checkpoints_stay_home() -> None:
    h = hub()
    op = Subscriber(10)
    h.subscribe(op, flt("identity-op", identities=frozenset({"*"})))
    h.publish(msg("identity-a", n=1))
    h.publish(msg("identity-b", "pipeline.complete", n=2))
    h.publish(msg("identity-a", "checkpoint.created", user="user-a", n=3))
    assert [e["data"]["n"] for e in drain(op)] == [1, 2]


def test_checkpoints_reach_approvers_and_the_submitter_only() -> None:
    h = hub()
    approver, submitter, other = Subscriber(10), Subscriber(10), Subscriber(10)
    h.subscribe(approver, flt(sub="user-x", approver=True))
    h.subscribe(submitter, flt(sub="user-a"))
    h.subscribe(other, flt(sub="user-z"))
    h.publish(msg("identity-a", "checkpoint.created", user="user-a", n=1))
    h.publish(msg("identity-a", "checkpoint.decided", user=None, n=2))  # submitter unknown
    assert [e["data"]["n"] for e in drain(approver)] == [1, 2]
    assert [e["data"]["n"] for e in drain(submitter)] == [1]
    assert drain(other) == []


def test_topics_filter() -> None:
    h = hub()
    s = Subscriber(10)
    h.subscribe(s, flt(topics=frozenset({"pipeline.complete"})))
    h.publish(msg("identity-a", "lane.complete", n=1))
    h.publish(msg("identity-a", "pipeline.complete", n=2))
    assert [e["topic"] for e in drain(s)] == ["pipeline.complete"]


def test_a_full_queue_drops_the_subscriber_and_its_backlog_not_the_others() -> None:
    h = hub()
    told: list[str] = []
    slow = Subscriber(5, lambda: told.append("overflow"))
    fast = Subscriber(5)
    h.subscribe(slow, flt())
    h.subscribe(fast, flt())
    for i in range(20):
        h.publish(msg("identity-a", n=i))
        drain(fast)  # a client that keeps up
        assert h.stats()["queued"] <= 5
    assert told == ["overflow"]
    assert slow.overflowed
    assert len(slow) == 0
    assert h.stats() == {"subscribers": 1, "queued": 0, "buffered": 20, "dropped_slow": 1}


def test_resume_from_a_position_replays_exactly_what_was_missed_after_the_greeting() -> None:
    h = hub()
    s = Subscriber(100)
    h.subscribe(s, flt())
    h.publish(msg("identity-a", n=1))
    last_seen = drain(s)[-1]["position"]
    h.unsubscribe(s)  # the connection drops
    h.publish(msg("identity-a", n=2))
    h.publish(msg("identity-b", n=3))  # not ours
    h.publish(msg("identity-a", n=4))
    again = Subscriber(100)
    result = h.subscribe(again, flt(), after=last_seen,
                         greeting=lambda r: json.dumps({"type": "subscribed",
                                                        "resume": r.resume}))
    h.publish(msg("identity-a", n=5))
    frames = drain(again)
    assert frames[0] == {"type": "subscribed", "resume": "exact"}
    assert [f["data"]["n"] for f in frames[1:]] == [2, 4, 5]
    assert result.replayed == 2


def test_resume_past_the_window_is_a_gap() -> None:
    clock = Clock()
    h = hub(window_s=10.0, clock=clock)
    h.publish(msg("identity-a", n=1))
    position = h.position
    clock.now = 5
    h.publish(msg("identity-a", n=2))
    clock.now = 12
    h.publish(msg("identity-a", n=3))  # 1 and 2 have left the buffer now? only 1
    s = Subscriber(100)
    assert h.subscribe(s, flt(), after=position).resume == "exact"
    clock.now = 30
    h.publish(msg("identity-a", n=4))  # everything older than 20 leaves
    s2 = Subscriber(100)
    assert h.subscribe(s2, flt(), after=position).resume == "gap"
    assert drain(s2) == []


def test_buffer_is_bounded_by_count() -> None:
    h = hub(buffer_max=3)
    for i in range(10):
        h.publish(msg("identity-a", n=i))
    assert h.stats()["buffered"] == 3


def test_a_position_of_another_gateway_resumes_by_time_or_is_a_gap() -> None:
    h = hub()
    for i in range(5):
        h.publish(msg("identity-a", ts=100 + i, n=i))
    s = Subscriber(100)
    result = h.subscribe(s, flt(), after="deadbeef-3", since=103)
    assert result.resume == "approximate"
    assert [f["data"]["n"] for f in drain(s)] == [3, 4]
    assert h.subscribe(Subscriber(100), flt(), after="deadbeef-3").resume == "gap"
    assert h.subscribe(Subscriber(100), flt(), after=f"{h.epoch}-999").resume == "gap"


def test_a_replay_larger_than_half_the_queue_is_a_gap_not_an_overflow() -> None:
    h = hub()
    s = Subscriber(100)
    h.subscribe(s, flt())
    position = h.position
    h.unsubscribe(s)
    for i in range(10):
        h.publish(msg("identity-a", n=i))
    small = Subscriber(8)
    assert h.subscribe(small, flt(), after=position).resume == "gap"
    assert not small.overflowed
    assert h.stats()["subscribers"] == 1
