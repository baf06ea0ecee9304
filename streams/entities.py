"""The worker's entity read model: an :class:`EntityStore` started with the worker.

Lanes must not read rules or threads before the store has caught up with the entities topic,
so :meth:`ready` waits for the first catch-up; :meth:`sync` is the full read-your-writes
barrier, used when a request references a thread or dataspace written moments before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nova.domain.context import DataspaceItem, ThreadMessage
from nova.domain.governance import Rule
from nova.entities.store import EntityStore


class WorkerEntities:
    def __init__(self, store: EntityStore) -> None:
        self.store = store
        self._started = asyncio.Event()

    async def run(self) -> None:
        await self.store.start()
        self._started.set()

    async def ready(self) -> None:
        await self._started.wait()

    async def sync(self) -> None:
        await self._started.wait()
        await self.store.sync()

    def owner(self, kind: str, entity_id: str) -> str | None:
        return self.store.owner(kind, entity_id)

    def sphere_of(self, identity_id: str) -> str | None:
        return self.store.sphere_of(identity_id)

    def thread_messages(self, thread_id: str) -> Sequence[ThreadMessage]:
        return self.store.thread_messages(thread_id)

    def dataspace_items(self, dataspace_id: str) -> Sequence[DataspaceItem]:
        return self.store.dataspace_items(dataspace_id)

    def rules_for(self, identity_id: str) -> Sequence[Rule]:
        return self.store.rules_for(identity_id)
