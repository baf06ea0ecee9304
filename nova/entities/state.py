"""The pure fold of entity events into the current state of every entity, with indexes.

Kept free of Kafka so the rules of the fold are unit-tested directly, and so the gateway, the
worker and tests all agree on them:

- **Versions never go back.** An event whose version is lower than the one already applied
  for its key is stale and ignored. The writer applies its own record locally before the
  consumer sees it in the log; without this rule the consumer would briefly roll a key back to
  an older record still in flight. An equal version is applied (log order wins), which is
  also what compaction keeps, so a replay of the compacted topic ends in the same state.
- **Owners are pinned.** The first record of a key fixes its owner identity; a later record
  naming another owner is rejected, so no bug or forged record can move a thread, a rule or a
  key across the identity boundary. Deleted keys keep their version and owner pinned too.
- **Children are indexed by parent id**, whatever arrives first: messages, items and meeting
  entries hash to other partitions than their thread, dataspace or meeting, so a replay may see
  a child before its parent. Reads of children return only those whose owner is the parent's owner.
- **Undecodable or unknown records are skipped**, never fatal: the reader keeps serving.

A rule whose conditions no longer validate (a pattern a newer build refuses) stays visible to
its owner through the API but is left out of ``rules_for`` with an error in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

from nova.domain.context import DataspaceItem, MeetingEntry, ThreadMessage
from nova.domain.governance import Rule
from nova.entities.models import (
    GLOBAL,
    SYSTEM_OWNER,
    AgentEntity,
    AgentRatingEntity,
    AlertThresholdsEntity,
    AnyEntity,
    ApiKeyEntity,
    BudgetEntity,
    DataspaceEntity,
    DataspaceItemEntity,
    IdentityEntity,
    MeetingEntity,
    MeetingEntryEntity,
    ProbeSettingsEntity,
    ProviderLimitsEntity,
    RuleEntity,
    ThreadEntity,
    ThreadMessageEntity,
    WebhookEntity,
    entity_key,
    from_event,
    split_key,
)
from nova.errors import NovaError, SchemaError
from nova.records import EntityEvent

log = logging.getLogger(__name__)

Outcome = Literal["applied", "stale", "rejected", "unknown", "untrusted"]
E = TypeVar("E", bound=AnyEntity)
K = TypeVar("K")


def _link(index: dict[K, set[str]], slot: K, entity_id: str, *, add: bool) -> None:
    ids = index.get(slot)
    if add:
        index.setdefault(slot, set()).add(entity_id)
    elif ids is not None:
        ids.discard(entity_id)
        if not ids:
            del index[slot]


@dataclass(frozen=True, slots=True)
class Stored:
    """One live entity with the version and time of the record that stated it."""

    entity: AnyEntity
    version: int
    ts: int


class EntityState:
    """Every live entity by key, plus the indexes the gateway and the lanes query."""

    def __init__(self) -> None:
        self._live: dict[str, Stored] = {}
        self._versions: dict[str, int] = {}  # every key ever seen, deleted ones included
        self._owners: dict[str, str] = {}  # pinned at a key's first record
        self._owned: dict[tuple[str, str], set[str]] = {}  # (type, owner) -> ids
        self._children: dict[tuple[str, str], set[str]] = {}  # (child type, parent id) -> ids
        self._by_user: dict[str, set[str]] = {}  # user id -> identity ids
        self._rules: dict[str, Rule] = {}  # rule id -> validated domain rule
        self._gone: dict[str, Stored] = {}  # the last state of each deleted key

    def __len__(self) -> int:
        return len(self._live)

    # -- the fold ------------------------------------------------------------------------
    def apply(self, event: EntityEvent) -> Outcome:
        """Fold one event in; say whether it changed the state and, if not, why."""
        key = entity_key(event.entity_type, event.entity_id)
        try:
            entity = from_event(event)
        except SchemaError as exc:
            log.warning("entity record %s rejected: %s", key, exc)
            return "rejected"
        if entity is None:
            return "unknown"
        pinned = self._owners.get(key)
        if pinned is not None and pinned != event.owner_identity:
            log.error("entity record %s rejected: it would move the entity to another owner", key)
            return "rejected"
        if event.version < self._versions.get(key, 0):
            return "stale"
        self._owners[key] = event.owner_identity
        self._versions[key] = event.version
        previous = self._live.pop(key, None)
        if previous is not None:
            self._index(previous.entity, add=False)
        if not event.deleted:
            self._gone.pop(key, None)
            self._live[key] = Stored(entity, event.version, event.ts)
            self._index(entity, add=True)
        else:
            self._gone[key] = Stored(entity, event.version, event.ts)
        return "applied"

    def last_state(self, key: str) -> tuple[Stored, bool] | None:
        """The newest applied state of a key and whether it is deleted; None if never seen."""
        live = self._live.get(key)
        if live is not None:
            return live, False
        gone = self._gone.get(key)
        return None if gone is None else (gone, True)

    def forget(self, key: str) -> None:
        """A real Kafka tombstone (null value): drop the key entirely, pins included."""
        try:
            entity_type, entity_id = split_key(key)
        except SchemaError:
            return
        full = entity_key(entity_type, entity_id)
        previous = self._live.pop(full, None)
        if previous is not None:
            self._index(previous.entity, add=False)
        self._gone.pop(full, None)
        self._versions.pop(full, None)
        self._owners.pop(full, None)

    def _index(self, entity: AnyEntity, *, add: bool) -> None:
        eid = entity.entity_id
        if isinstance(entity, ThreadMessageEntity):
            _link(self._children, (entity.ENTITY_TYPE, entity.thread_id), eid, add=add)
        elif isinstance(entity, DataspaceItemEntity):
            _link(self._children, (entity.ENTITY_TYPE, entity.dataspace_id), eid, add=add)
        elif isinstance(entity, MeetingEntryEntity):
            _link(self._children, (entity.ENTITY_TYPE, entity.meeting_id), eid, add=add)
        elif isinstance(entity, AgentRatingEntity):
            # Under its agent (the registry's counts) and its rater (the rater's own cap).
            _link(self._children, (entity.ENTITY_TYPE, entity.agent_id), eid, add=add)
            _link(self._owned, (entity.ENTITY_TYPE, entity.owner_identity), eid, add=add)
        else:
            _link(self._owned, (entity.ENTITY_TYPE, entity.owner_identity), eid, add=add)
        if isinstance(entity, IdentityEntity):
            _link(self._by_user, entity.user_id, eid, add=add)
        if isinstance(entity, RuleEntity):
            self._rules.pop(entity.rule_id, None)
            if add:
                try:
                    self._rules[entity.rule_id] = entity.to_rule()
                except (NovaError, ValueError) as exc:
                    log.error("rule %s is not enforceable and is left out: %s", eid, exc)

    # -- generic reads -------------------------------------------------------------------
    def stored(self, entity_type: str, entity_id: str) -> Stored | None:
        return self._live.get(entity_key(entity_type, entity_id))

    def get(self, cls: type[E], entity_id: str) -> E | None:
        """The live entity of type ``cls`` with this id, or None."""
        stored = self._live.get(entity_key(cls.ENTITY_TYPE, entity_id))
        if stored is None or not isinstance(stored.entity, cls):
            return None
        return stored.entity

    def version(self, entity_type: str, entity_id: str) -> int:
        """The last applied version of a key (0 if never seen); deleted keys keep theirs."""
        return self._versions.get(entity_key(entity_type, entity_id), 0)

    def owner(self, kind: str, entity_id: str) -> str | None:
        """Owning identity of a live entity of type ``kind``, or None if unknown or deleted."""
        stored = self._live.get(entity_key(kind, entity_id))
        return None if stored is None else stored.entity.owner_identity

    def pinned_owner(self, entity_type: str, entity_id: str) -> str | None:
        """The owner a key was first written with, even after deletion; None if never seen."""
        return self._owners.get(entity_key(entity_type, entity_id))

    def owned(self, cls: type[E], owner: str) -> list[E]:
        """Live entities of type ``cls`` owned by ``owner``, oldest id first."""
        ids = sorted(self._owned.get((cls.ENTITY_TYPE, owner), ()))
        return [e for e in (self.get(cls, i) for i in ids) if e is not None]

    def count_owned(self, entity_type: str, owner: str) -> int:
        return len(self._owned.get((entity_type, owner), ()))

    def count_children(self, entity_type: str, parent_id: str) -> int:
        return len(self._children.get((entity_type, parent_id), ()))

    def _children_of(self, cls: type[E], parent: type[AnyEntity], parent_id: str) -> Iterator[E]:
        parent_owner = self.owner(parent.ENTITY_TYPE, parent_id)
        if parent_owner is None:
            return
        for child_id in self._children.get((cls.ENTITY_TYPE, parent_id), ()):
            child = self.get(cls, child_id)
            if child is not None and child.owner_identity == parent_owner:
                yield child

    # -- typed reads ---------------------------------------------------------------------
    def identity(self, identity_id: str) -> IdentityEntity | None:
        return self.get(IdentityEntity, identity_id)

    def identities_of_user(self, user_id: str) -> list[IdentityEntity]:
        ids = sorted(self._by_user.get(user_id, ()))
        return [e for e in (self.identity(i) for i in ids) if e is not None]

    def sphere_of(self, identity_id: str) -> str | None:
        ident = self.identity(identity_id)
        return None if ident is None else ident.sphere_id

    def api_key(self, key_id: str) -> ApiKeyEntity | None:
        return self.get(ApiKeyEntity, key_id)

    def messages(self, thread_id: str) -> list[ThreadMessageEntity]:
        """The thread's messages, oldest first (time, then id)."""
        found = self._children_of(ThreadMessageEntity, ThreadEntity, thread_id)
        return sorted(found, key=lambda m: (m.created_at, m.id))

    def items(self, dataspace_id: str) -> list[DataspaceItemEntity]:
        """The dataspace's items, oldest first (time, then id)."""
        found = self._children_of(DataspaceItemEntity, DataspaceEntity, dataspace_id)
        return sorted(found, key=lambda i: (i.created_at, i.id))

    def entries(self, meeting_id: str) -> list[MeetingEntryEntity]:
        """The meeting's agenda items, notes and decisions, oldest first (time, then id)."""
        found = self._children_of(MeetingEntryEntity, MeetingEntity, meeting_id)
        return sorted(found, key=lambda e: (e.created_at, e.id))

    def thread_messages(self, thread_id: str) -> list[ThreadMessage]:
        return [m.to_domain() for m in self.messages(thread_id)]

    def dataspace_items(self, dataspace_id: str) -> list[DataspaceItem]:
        return [i.to_domain() for i in self.items(dataspace_id)]

    def meeting_entries(self, meeting_id: str) -> list[MeetingEntry]:
        """The live meeting's entries as context, each headed with the meeting's title."""
        meeting = self.get(MeetingEntity, meeting_id)
        if meeting is None:
            return []
        return [e.to_domain(meeting.title) for e in self.entries(meeting_id)]

    def agents_visible_to(self, identity_id: str) -> list[AgentEntity]:
        """The identity's own agents and every public one, by id (the registry's candidates).

        Walks the (type, owner) index like :meth:`budgets`; the registry is capped per owner.
        """
        ids = sorted(
            i for (etype, owner), owned in self._owned.items()
            if etype == AgentEntity.ENTITY_TYPE for i in owned
        )
        found = (self.get(AgentEntity, i) for i in ids)
        return [a for a in found if a is not None
                and (a.owner == identity_id or a.visibility == "public")]

    def ratings(self, agent_id: str) -> list[AgentRatingEntity]:
        """The live agent's ratings, one per rater (rater order); none once it is deleted."""
        if self.get(AgentEntity, agent_id) is None:
            return []
        ids = sorted(self._children.get((AgentRatingEntity.ENTITY_TYPE, agent_id), ()))
        return [r for r in (self.get(AgentRatingEntity, i) for i in ids) if r is not None]

    def rules_for(self, identity_id: str) -> list[Rule]:
        """The identity's enforceable rules, highest priority first, then rule id."""
        ids = self._owned.get((RuleEntity.ENTITY_TYPE, identity_id), ())
        rules = [r for r in (self._rules.get(i) for i in ids) if r is not None]
        return sorted(rules, key=lambda r: (-r.priority, r.rule_id))

    def every(self, cls: type[E]) -> list[E]:
        """Every live entity of type ``cls`` of every owner, by id.

        Walks the (type, owner) index, not every entity, so it is cheap enough to call before
        each execution; callers compare the result to what they loaded last.
        """
        ids = sorted(
            i for (etype, _), owned in self._owned.items()
            if etype == cls.ENTITY_TYPE for i in owned
        )
        return [e for e in (self.get(cls, i) for i in ids) if e is not None]

    def budgets(self) -> list[BudgetEntity]:
        """Every live budget of every owner, by id: the worker enforces all of them."""
        return self.every(BudgetEntity)

    def provider_limits(self) -> list[ProviderLimitsEntity]:
        """Operators' provider rate limits, by provider (the workers' and the gateway's)."""
        return self.owned(ProviderLimitsEntity, SYSTEM_OWNER)

    def probe_settings(self) -> ProbeSettingsEntity | None:
        """Operators' provider-health settings, or None (the settings' apply)."""
        return self.get(ProbeSettingsEntity, GLOBAL)

    def alert_thresholds(self) -> AlertThresholdsEntity | None:
        """Operators' alert thresholds, or None (the settings' apply)."""
        return self.get(AlertThresholdsEntity, GLOBAL)

    def webhooks(self) -> list[WebhookEntity]:
        """Every live alert destination of every owner, by id (the alert dispatcher's)."""
        return self.every(WebhookEntity)
