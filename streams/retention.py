"""How long lane E's and lane F's tables keep a finished request: long enough for any copy of
it that can still arrive, not for ever.

Both tables hold one entry per request (lane F's ``llm_results``: its attempt marker, then its
result; lane E's ``held``: a held request, then its decision), in memory (``memory://``), and
nothing removed them: ``make bench-soak`` measured the worker growing by 10% in five minutes at
half load, and a restart re-read every entry ever written from the changelogs. An entry is
only needed while a copy of its request may still be delivered (a redelivery after a crash or
a rebalance, an upstream lane's second hand-off): seconds to minutes, never hours. So a
finished entry leaves memory ``table_keep_s`` after it was written, without a tombstone (a
delete per request would cost a Kafka record per request, the other figure issue 9 counts),
and the changelog topics are created with ``compact,delete`` so the broker forgets them too
(``schemas.topics.changelog_configs``), after a retention that outlives a checkpoint's TTL: a
pending hold, and an agent run paused at one, is never dropped while someone may decide it.

Entries in a state that waits for a person (a ``pending`` hold, a ``paused`` run) are never
evicted here; deciding or expiring them writes a finished entry in their place. The trade-off:
a copy of a request arriving more than ``table_keep_s`` after its first was finished, in the
same process, is treated as new (lane F would call again; lane E would hold it again).
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping
from typing import Any

# Why an entry is kept regardless of age: it waits for a person.
WAITING = frozenset({"pending", "paused"})
YOUNG_RUN = 64  # young finished entries in a row after which a sweep stops looking


def written_at(raw: bytes) -> int | None:
    """When a finished entry was written (ms), -1 when it predates timestamps, None while it
    waits for a person. Both tables' entries are JSON objects with ``status`` (lane F) or
    ``state`` (lane E), and, since this module, ``at``."""
    try:
        data = json.loads(raw)
    except ValueError:
        return -1  # not ours to read; old enough to go when its time comes
    if not isinstance(data, dict):
        return -1
    if data.get("status") in WAITING or data.get("state") in WAITING:
        return None
    at = data.get("at")
    return at if isinstance(at, int) else -1


class TableRetention:
    """Evicts finished entries older than ``keep_ms`` from one table's in-memory store.

    Entries are visited oldest first (a dict keeps insertion order, and a table entry is
    inserted when its request first reaches the lane; lane F's durable writes move the key to
    the end), and a sweep stops after :data:`YOUNG_RUN` finished entries in a row that are
    still young, so it costs about what it evicts plus the waiting entries in front; an entry
    rewritten in place (a decision on an old hold) does not stop it. Entries without a
    timestamp (written before this module) count from the first sweep.
    """

    def __init__(self, store: MutableMapping[bytes, bytes], keep_ms: int, now_ms: Callable[[], int],
                 *, partitions: MutableMapping[Any, int] | None = None) -> None:
        self.store = store
        self.keep_ms = keep_ms
        self.now_ms = now_ms
        self.partitions = partitions  # the memory store's key -> partition index, kept in step
        self.started_ms = now_ms()

    def sweep(self) -> int:
        """Drop what is past its time; the number dropped."""
        cutoff = self.now_ms() - self.keep_ms
        gone: list[bytes] = []
        young = 0
        for key, raw in self.store.items():
            at = written_at(raw)
            if at is None:
                continue
            if (self.started_ms if at < 0 else at) > cutoff:
                young += 1
                if young >= YOUNG_RUN:
                    break
                continue
            young = 0
            gone.append(key)
        for key in gone:
            self.store.pop(key, None)
            if self.partitions is not None:
                self.partitions.pop(key, None)
        return len(gone)

    @classmethod
    def of_table(cls, table: Any, keep_ms: int, now_ms: Callable[[], int]) -> TableRetention:
        """For a Faust table on the ``memory://`` store: its dict, and the key -> partition
        index the store keeps beside it (both would otherwise hold every key)."""
        store = table.data  # faust.stores.memory.Store
        return cls(store.data, keep_ms, now_ms, partitions=getattr(store, "_key_partition", None))
