"""What lanes B and D need to know about entities, as a protocol.

The worker's implementation tails the compacted ``entities`` topic into memory; tests may pass
any object with these methods. ``sync`` is the read-your-writes barrier: it returns once every
entity record produced before the call has been applied, so a thread message (or a meeting
note) appended just before a request was submitted is visible to lane B.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from nova.domain.context import DataspaceItem, MeetingEntry, ThreadMessage
from nova.domain.governance import Rule
from nova.entities.models import ProbeSettingsEntity


class EntityView(Protocol):
    async def sync(self) -> None: ...

    async def ready(self) -> None:
        """Wait until the first catch-up with the entities topic is done."""
        ...

    def owner(self, kind: str, entity_id: str) -> str | None:
        """Owning identity of a ``thread`` / ``dataspace`` / ``meeting`` / ``rule`` / … or None
        if unknown."""
        ...

    def sphere_of(self, identity_id: str) -> str | None: ...

    def thread_messages(self, thread_id: str) -> Sequence[ThreadMessage]: ...

    def dataspace_items(self, dataspace_id: str) -> Sequence[DataspaceItem]: ...

    def meeting_entries(self, meeting_id: str) -> Sequence[MeetingEntry]: ...

    def rules_for(self, identity_id: str) -> Sequence[Rule]: ...

    def probe_settings(self) -> ProbeSettingsEntity | None:
        """An operator's provider-health settings (the health probe's interval), or None."""
        ...
