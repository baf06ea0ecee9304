"""The worker's consumer loses nothing: no commit past an unprocessed record, nothing dropped."""

import asyncio

import faust
import pytest
from aiokafka.errors import IllegalStateError
from faust.types import TP

from streams import consumer as worker_consumer
from streams.consumer import HeadSafeConsumer, StreamReadOffsets, head_is_done


def test_the_head_record_acknowledged_allows_the_commit():
    assert head_is_done(12, [12, 13, 14], [])


def test_a_missing_head_record_holds_the_commit_even_when_the_next_one_is_acknowledged():
    # Faust 0.15 alone would commit 19 here, past record 12.
    assert not head_is_done(12, [13, 14, 15, 16, 17, 18], [])


def test_a_missing_head_holds_the_commit_at_offset_zero_too():
    assert not head_is_done(0, [1, 2], [])
    assert head_is_done(0, [0, 1], [])


def test_a_known_gap_starting_at_the_head_counts_as_done():
    """Offsets that do not exist (a gap Faust recorded while reading) are not waited for."""
    assert head_is_done(12, [15, 16], [12])


def test_nothing_committed_yet_leaves_the_decision_to_faust():
    assert head_is_done(None, [3, 4], [])


def test_nothing_acknowledged_is_not_a_reason_to_hold():
    assert head_is_done(12, [], [])


# --- Nothing the fetcher delivered is lost when Faust empties the stream buffers -------------


REQUESTS_0 = TP("t.requests", 0)
REQUESTS_1 = TP("t.requests", 1)
CHANGELOG_0 = TP("t-worker-held-changelog", 0)


def _is_changelog(tp):
    return tp.topic.endswith("-changelog")


def test_a_stream_partition_never_keeps_a_read_offset():
    """Faust drops a fetched record below the read offset and calls a jump a gap: never for us."""
    offsets = StreamReadOffsets(_is_changelog)
    offsets[REQUESTS_0] = 14
    offsets.update({REQUESTS_1: 9})
    assert offsets[REQUESTS_0] is None
    assert offsets[REQUESTS_1] is None
    assert REQUESTS_0 not in offsets


def test_a_changelog_partition_keeps_its_read_offset_for_table_recovery():
    offsets = StreamReadOffsets(_is_changelog)
    offsets[CHANGELOG_0] = 7
    offsets.update({CHANGELOG_0: 8})
    assert offsets[CHANGELOG_0] == 8
    assert offsets.pop(CHANGELOG_0) == 8
    assert offsets[CHANGELOG_0] is None


@pytest.fixture
def consumer():
    """The worker's consumer, built but never started (no broker is contacted)."""
    app = faust.App("t-worker", broker="kafka://127.0.0.1:1")
    worker_consumer.install(app, fetch_max_wait_ms=20)
    app.Table("held", default=None)  # gives the app a changelog topic
    c = app.consumer
    assert isinstance(c, HeadSafeConsumer)
    yield c
    c._thread.thread_loop.close()  # the consumer thread's loop, created but never run


async def test_resuming_the_flow_rereads_every_stream_partition_from_its_committed_offset(consumer):
    """Faust empties the streams' buffers when it resumes; what was in them is fetched again."""
    c = consumer
    changelog = TP(next(iter(c.app.tables.changelog_topics)), 0)
    sought: list[dict[TP, int]] = []

    async def seek_wait(partitions):
        sought.append(dict(partitions))

    c.assignment = lambda: {REQUESTS_0, REQUESTS_1, changelog}
    c.seek_wait = seek_wait
    c._committed_offset[REQUESTS_0] = 13
    c._committed_offset[changelog] = 40
    c.resume_flow()
    await asyncio.gather(*c._rereads)
    # requests[1] has no committed offset: Faust's own seek starts it at the earliest record
    assert sought == [{REQUESTS_0: 13}]
    assert c.flow_active


async def test_a_reread_that_loses_to_a_rebalance_is_given_up_quietly(consumer):
    c = consumer

    async def seek_wait(partitions):
        raise IllegalStateError("partition not assigned")

    c.assignment = lambda: {REQUESTS_0}
    c.seek_wait = seek_wait
    c._committed_offset[REQUESTS_0] = 3
    c.resume_flow()
    await asyncio.gather(*c._rereads)  # does not raise
    assert not c._rereads


def test_resuming_before_the_consumer_started_rereads_nothing(consumer):
    c = consumer
    c.resume_flow()  # no assignment yet: nothing to seek, no loop needed
    assert not c._rereads


async def test_the_aiokafka_consumer_fetches_with_the_configured_short_wait(consumer):
    # Faust hard-codes 1,500 ms; a record arriving while a fetch is parked waits for it.
    thread = consumer._new_consumer_thread()
    try:
        built = thread._create_worker_consumer(consumer.transport)
        assert built._fetch_max_wait_ms == 20
        await built.stop()  # never started: closes it without contacting a broker
    finally:
        thread.thread_loop.close()
