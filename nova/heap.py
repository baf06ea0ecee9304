"""Keep the long-lived start-up heap out of the garbage collector's way.

A worker or gateway loads its whole world before the first request: Faust, the SDKs, pydantic
models, lane A's lexicons and language models. CPython's full (generation 2) collections walk
every tracked object, so under load each one paused the event loop for 70-260 ms (measured in
the worker during ``make bench``; a stalled loop holds every request in it). What start-up
built lives as long as the process: :func:`settle` collects once and freezes it
(:func:`gc.freeze`), so later collections only walk what requests allocate (20-50 ms then,
the same measure). The worker settles once its app is built, the gateway once it serves.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect, then move every surviving object to the permanent generation."""
    gc.collect()
    gc.freeze()
