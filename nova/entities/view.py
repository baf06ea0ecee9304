"""What lanes B and D need to know about entities, as a protocol.

The worker's implementation tails the compacted ``entities`` topic into memory; tests may pass
any object with these methods. ``sync`` is the read-your-writes barrier: it returns once every
entity record produced before the call has been applied, so a thread message (or a meeting
note) appended just before a request was submitted is visible to lane B. Given the lane's
record as a :class:`Witness`, it may answer from an offsets request made since that record was
appended, which covers everything acknowledged before its request was submitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from nova.domain.context import DataspaceItem, MeetingEntry, ThreadMessage
from nova.domain.governance import Rule
from nova.entities.models import ProbeSettingsEntity


@dataclass(frozen=True, slots=True)
class Witness:
    """Where the record a lane is processing sits on its own topic, for :meth:`EntityView.sync`.

    ``highwater`` is the partition's end as the lane's consumer last heard it from the broker
    (None if unknown): records below it were appended before the lane asked.
    """

    topic: str
    partition: int
    offset: int
    highwater: int | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)


class EntityView(Protocol):
    async def sync(self, witness: Witness | None = None) -> None:
        """The barrier; with a ``witness``, for what was acknowledged before its request."""
        ...

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
