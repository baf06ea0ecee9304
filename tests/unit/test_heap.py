"""nova.heap: what start-up built is out of the collector's way afterwards."""

import gc

from nova import heap


def test_settling_freezes_what_is_alive_and_later_objects_are_collected_as_before() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    kept = [Node() for _ in range(100)]
    try:
        heap.settle()
        assert gc.get_freeze_count() >= len(kept)
        garbage = Node()
        del garbage
        assert gc.collect() >= 1  # the frozen heap does not stop later cycles being freed
    finally:
        gc.unfreeze()
