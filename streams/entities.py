"""The worker's entity view: an :class:`EntityStore` started before any lane runs.

Lanes must not read owners, rules or budgets before the store has caught up with the entities
topic, so the worker starts it (and refuses to start when it cannot, see
``streams.services``) before the Faust app; :meth:`sync` is the full read-your-writes barrier,
used when a request references a thread, dataspace or meeting written moments before. One
object is the entity view of lanes B and D, the budget, rule and provider-limit source of
lane F, and where the health probe reads its interval.
"""

from __future__ import annotations

from collections.abc import Sequence

from nova.domain.context import DataspaceItem, MeetingEntry, ThreadMessage
from nova.domain.governance import Rule
from nova.entities.models import (
    AgentEntity,
    BudgetEntity,
    ProbeSettingsEntity,
    ProviderLimitsEntity,
)
from nova.entities.store import EntityStore, start_or_refuse
from nova.entities.view import Witness
from nova.errors import StartupError


class WorkerEntities:
    def __init__(self, store: EntityStore) -> None:
        self.store = store

    async def start(self, component: str, needs: str) -> None:
        """Start the store, or refuse ``component``'s start-up (``StartupError``).

        Also refused: a store holding entities no signed record states (written before signing
        existed, or forged). The view ignores them, so a deny rule or a budget among them would
        silently stop binding; an operator reviews and re-signs them first (``nova entities
        adopt``).
        """
        await start_or_refuse(self.store, component, needs)
        unadopted = sorted(self.store.unadopted)
        if unadopted:
            await self.store.stop()
            raise StartupError(
                component,
                f"{len(unadopted)} entity records are unsigned and no signed record states "
                f"them (written before signing existed, or forged: {', '.join(unadopted[:3])}"
                f"{', ...' if len(unadopted) > 3 else ''})",
                "review them with `nova entities adopt` where the gateway's signing key is, "
                "then re-sign them (--yes) or reject them (--reject KEY)",
            )

    async def stop(self) -> None:
        await self.store.stop()

    async def ready(self) -> None:
        await self.store.ready()

    async def sync(self, witness: Witness | None = None) -> None:
        await self.store.sync(witness=witness)

    def owner(self, kind: str, entity_id: str) -> str | None:
        return self.store.owner(kind, entity_id)

    def sphere_of(self, identity_id: str) -> str | None:
        return self.store.sphere_of(identity_id)

    def thread_messages(self, thread_id: str) -> Sequence[ThreadMessage]:
        return self.store.thread_messages(thread_id)

    def dataspace_items(self, dataspace_id: str) -> Sequence[DataspaceItem]:
        return self.store.dataspace_items(dataspace_id)

    def meeting_entries(self, meeting_id: str) -> Sequence[MeetingEntry]:
        return self.store.meeting_entries(meeting_id)

    def agent(self, agent_id: str) -> AgentEntity | None:
        return self.store.get(AgentEntity, agent_id)

    def rules_for(self, identity_id: str) -> Sequence[Rule]:
        return self.store.rules_for(identity_id)

    def budgets(self) -> Sequence[BudgetEntity]:
        return self.store.budgets()

    def provider_limits(self) -> Sequence[ProviderLimitsEntity]:
        """Operators' provider limits (``PUT /api/v2/llm/monitoring/rate-limits/{provider}``)."""
        return self.store.provider_limits()

    def probe_settings(self) -> ProbeSettingsEntity | None:
        """Operators' probe settings (``PUT /api/v2/llm/monitoring/health/probe-settings``)."""
        return self.store.probe_settings()
