"""Entity states as frozen typed models, and their pure (de)serialization to ``EntityEvent``.

Entities are event-sourced on the compacted ``entities`` topic: each record carries the whole
state of one entity after a change (``body``, canonical JSON), so the latest record per key is
enough to rebuild it and compaction can drop the history. The key is ``entity_type:entity_id``.

Why whole states rather than deltas: compaction keeps only the last record per key, so a
record must stand on its own. Why canonical JSON (sorted keys, no spaces, timestamps as UTC
milliseconds): the same state always gives the same bytes, which keeps replays, hashes and
tests byte-stable.

Every model knows its ``entity_type``, ``entity_id`` and ``owner_identity`` (the identity
whose boundary the entity lives in). An identity owns itself; every other entity is owned by
the identity that created it, and a child (thread message, dataspace item, meeting entry) by
its parent's owner. Platform-wide settings (provider limits, probe settings, alert thresholds)
belong to no identity: their owner is ``system``, and only operators change them. Unknown
``entity_type`` values decode to None, so a newer writer (budgets, say) never breaks an older
reader.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Final, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from nova.alerts.notices import AlertKind
from nova.auth.keys import ApiKeyRecord
from nova.domain.agents import MAX_STARS, MIN_STARS, AgentRole, ToolName, Visibility
from nova.domain.context import DataspaceItem, MeetingEntry, MeetingEntryKind, ThreadMessage
from nova.domain.governance import Effect, Rule, RuleMatch
from nova.domain.identity_format import is_subject
from nova.domain.intent import Action, TaskType
from nova.domain.roles import Role
from nova.errors import SchemaError
from nova.records import EntityEvent

# Ids are server-generated (UUIDv7 or operator-chosen slugs); the key separator ``:`` only
# ever appears in child ids, between the parent id and the child's own id.
_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"
_CHILD_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}:[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"
EntityId = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]
ChildId = Annotated[str, StringConstraints(pattern=_CHILD_ID_PATTERN)]
Millis = Annotated[int, Field(ge=0)]
_SESSION_ID_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
SessionId = Annotated[str, StringConstraints(pattern=_SESSION_ID_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def _subject(value: str) -> str:
    if not is_subject(value):
        raise ValueError("a user id is 1 to 128 printable characters, not space-padded")
    return value


# A user id is a token's ``sub``: looser than an entity id (``nova.domain.identity_format``).
UserId = Annotated[str, AfterValidator(_subject)]


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _sorted(values: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(sorted(set(values)))


class Entity(BaseModel):
    """Base of every entity state: frozen, closed (unknown fields are a contract error)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ENTITY_TYPE: ClassVar[str]

    @property
    def entity_id(self) -> str:
        raise NotImplementedError

    @property
    def owner_identity(self) -> str:
        raise NotImplementedError

    @property
    def key(self) -> str:
        return entity_key(self.ENTITY_TYPE, self.entity_id)

    def canonical_json(self) -> str:
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )


class OwnedById:
    """Mixin for entities whose key is their ``id`` and whose owner is their ``owner``."""

    id: str
    owner: str

    @property
    def entity_id(self) -> str:
        return self.id

    @property
    def owner_identity(self) -> str:
        return self.owner


class IdentityEntity(Entity):
    """One identity of a user, living in one sphere (personal, business, ...).

    ``roles`` are what its user holds when switching to it from another of their identities
    (``POST /api/v2/auth/identities/{id}/token``); records written before it existed hold
    ``member`` only. An API key of the identity carries its own roles, as before.
    """

    ENTITY_TYPE: ClassVar[str] = "identity"

    id: EntityId
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    sphere_id: EntityId
    created_at: Millis
    roles: Annotated[tuple[Role, ...], Field(min_length=1, max_length=8)] = ("member",)

    @property
    def entity_id(self) -> str:
        return self.id

    @property
    def owner_identity(self) -> str:
        return self.id


class ProvisionedById:
    """Mixin for platform-wide records (users, spheres): keyed by ``id``, their owner pinned to
    the operator identity that provisioned them, ``created_by``."""

    id: str
    created_by: str

    @property
    def entity_id(self) -> str:
        return self.id

    @property
    def owner_identity(self) -> str:
        return self.created_by


class UserEntity(ProvisionedById, Entity):
    """A person (or a service) behind tokens: ``id`` is the ``sub`` of their tokens.

    A user id that identities name without a record is an *implicit* user (every identity made
    before users were records, every ``nova keys create --user``): it holds those identities
    all the same; a record adds a display name. ``created_by`` is the operator identity that
    provisioned it, which pins the record's owner (``nova.entities.state``).
    """

    ENTITY_TYPE: ClassVar[str] = "user"

    id: UserId
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    created_by: EntityId
    created_at: Millis


class SphereEntity(ProvisionedById, Entity):
    """A sphere identities live in (personal, business, ...): a platform-wide name.

    As with users, a sphere id identities name without a record is an *implicit* sphere
    (``personal`` and ``business`` of every identity made before spheres were records); a
    record gives it a name and a description.
    """

    ENTITY_TYPE: ClassVar[str] = "sphere"

    id: EntityId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=1000)] = ""
    created_by: EntityId
    created_at: Millis


class SessionEntity(Entity):
    """A session a token exchange opened (``gateway.sessions``), on the ``sessions`` topic.

    It holds the SHA-256 of its current refresh token (never the token), those of the last few
    it replaced (a replaced one presented again is a reuse: the session is revoked), and its
    revocation. ``expires_at`` is fixed at the exchange; refreshes never extend it.
    ``key_id``: the API key it came from, if any (revoking the key ends the session).
    """

    ENTITY_TYPE: ClassVar[str] = "session"

    id: SessionId
    identity_id: EntityId
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    roles: Annotated[tuple[Role, ...], Field(min_length=1, max_length=8)]
    key_id: EntityId | None = None
    refresh_hash: Sha256Hex
    retired_hashes: Annotated[tuple[Sha256Hex, ...], Field(max_length=8)] = ()
    created_at: Millis
    expires_at: Millis
    refreshed_at: Millis
    revoked_at: Millis | None = None
    revoked_reason: Literal["logout", "reuse", "key_revoked"] | None = None

    def __repr__(self) -> str:  # the hashes stay out of logs
        return f"SessionEntity(id={self.id!r}, identity_id={self.identity_id!r})"

    __str__ = __repr__

    @property
    def entity_id(self) -> str:
        return self.id

    @property
    def owner_identity(self) -> str:
        return self.identity_id


class ApiKeyEntity(Entity):
    """A stored API key: the salted hash only, never the plaintext."""

    ENTITY_TYPE: ClassVar[str] = "api_key"

    key_id: EntityId
    identity_id: EntityId
    roles: tuple[str, ...]
    hash: str
    created_at: Millis

    def __repr__(self) -> str:  # the hash stays out of logs
        return f"ApiKeyEntity(key_id={self.key_id!r}, identity_id={self.identity_id!r})"

    __str__ = __repr__

    @property
    def entity_id(self) -> str:
        return self.key_id

    @property
    def owner_identity(self) -> str:
        return self.identity_id

    @classmethod
    def from_record(cls, record: ApiKeyRecord) -> ApiKeyEntity:
        return cls(
            key_id=record.key_id,
            identity_id=record.identity_id,
            roles=tuple(sorted(record.roles)),
            hash=record.hash,
            created_at=int(record.created_at.timestamp() * 1000),
        )

    def to_record(self) -> ApiKeyRecord:
        return ApiKeyRecord(
            key_id=self.key_id,
            identity_id=self.identity_id,
            roles=frozenset(self.roles),
            hash=self.hash,
            created_at=ms_to_datetime(self.created_at),
        )


class ThreadEntity(OwnedById, Entity):
    ENTITY_TYPE: ClassVar[str] = "thread"

    id: EntityId
    owner: EntityId
    title: Annotated[str, StringConstraints(max_length=200)]
    created_at: Millis


class ThreadMessageEntity(OwnedById, Entity):
    """One message of a thread; ``id`` is ``<thread_id>:<message_id>``."""

    ENTITY_TYPE: ClassVar[str] = "thread_message"

    id: ChildId
    owner: EntityId
    thread_id: EntityId
    author: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    text: str
    created_at: Millis

    @model_validator(mode="after")
    def _id_names_parent(self) -> ThreadMessageEntity:
        if not self.id.startswith(f"{self.thread_id}:"):
            raise ValueError("thread message id must be '<thread_id>:<message_id>'")
        return self

    @property
    def message_id(self) -> str:
        return self.id[len(self.thread_id) + 1 :]

    def to_domain(self) -> ThreadMessage:
        return ThreadMessage(
            thread_id=self.thread_id,
            message_id=self.message_id,
            author=self.author,
            text=self.text,
            created_at=ms_to_datetime(self.created_at),
        )


class DataspaceEntity(OwnedById, Entity):
    ENTITY_TYPE: ClassVar[str] = "dataspace"

    id: EntityId
    owner: EntityId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    created_at: Millis = 0


class DataspaceItemEntity(OwnedById, Entity):
    """One document of a dataspace; ``id`` is ``<dataspace_id>:<item_id>``."""

    ENTITY_TYPE: ClassVar[str] = "dataspace_item"

    id: ChildId
    owner: EntityId
    dataspace_id: EntityId
    title: Annotated[str, StringConstraints(max_length=200)]
    text: str
    created_at: Millis

    @model_validator(mode="after")
    def _id_names_parent(self) -> DataspaceItemEntity:
        if not self.id.startswith(f"{self.dataspace_id}:"):
            raise ValueError("dataspace item id must be '<dataspace_id>:<item_id>'")
        return self

    @property
    def item_id(self) -> str:
        return self.id[len(self.dataspace_id) + 1 :]

    def to_domain(self) -> DataspaceItem:
        return DataspaceItem(
            dataspace_id=self.dataspace_id,
            item_id=self.item_id,
            title=self.title,
            text=self.text,
            created_at=ms_to_datetime(self.created_at),
        )


class MeetingEntity(OwnedById, Entity):
    """A meeting of its owner identity: who takes part, when, and the thread it belongs to.

    ``participants`` name identities by id, sorted and without repeats so equal meetings
    serialize identically. Naming one grants it nothing: the meeting, like every entity, stays
    in its owner's boundary. ``thread_id`` links the meeting to one of its owner's threads
    (the gateway resolves it through the boundary guard before writing it).
    """

    ENTITY_TYPE: ClassVar[str] = "meeting"

    id: EntityId
    owner: EntityId
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    thread_id: EntityId | None = None
    participants: tuple[EntityId, ...] = ()
    starts_at: AwareDatetime | None = None  # as the owner wrote it, offset included
    created_at: Millis

    @field_validator("participants")
    @classmethod
    def _canonical_participants(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(value)))


class MeetingEntryEntity(OwnedById, Entity):
    """One agenda item, note or decision of a meeting; ``id`` is ``<meeting_id>:<entry_id>``.

    One child type with a ``kind`` rather than three: they share their parent, caps, storage
    and context treatment, and differ only in what a reader calls them.
    """

    ENTITY_TYPE: ClassVar[str] = "meeting_entry"

    id: ChildId
    owner: EntityId
    meeting_id: EntityId
    kind: MeetingEntryKind
    text: str
    created_at: Millis

    @model_validator(mode="after")
    def _id_names_parent(self) -> MeetingEntryEntity:
        if not self.id.startswith(f"{self.meeting_id}:"):
            raise ValueError("meeting entry id must be '<meeting_id>:<entry_id>'")
        return self

    @property
    def entry_id(self) -> str:
        return self.id[len(self.meeting_id) + 1 :]

    def to_domain(self, meeting_title: str) -> MeetingEntry:
        return MeetingEntry(
            meeting_id=self.meeting_id,
            entry_id=self.entry_id,
            meeting_title=meeting_title,
            kind=self.kind,
            text=self.text,
            created_at=ms_to_datetime(self.created_at),
        )


class AgentEntity(OwnedById, Entity):
    """An agent its owner defined: what it is for, how it is prompted, which tools it may call
    and within which limits lane F runs its loop (``max_steps`` model calls, ``max_cost_usd``).

    ``visibility`` ``public`` lists it in every identity's registry (name, description, role,
    tools, limits: what choosing it needs; the system prompt only to its owner); ``private``
    keeps it in its owner's boundary like a thread. ``provider`` and ``model`` pin it as a
    request's would (role routing applies otherwise; the ``nova`` role stays on Claude).
    ``tools`` are kept sorted and unique so equal agents serialize identically.
    """

    ENTITY_TYPE: ClassVar[str] = "agent"

    id: EntityId
    owner: EntityId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    role: AgentRole
    system_prompt: Annotated[str, StringConstraints(max_length=16_000)] = ""
    tools: tuple[ToolName, ...] = ()
    provider: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    model: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    max_steps: Annotated[int, Field(ge=1, le=50)] = 8
    max_cost_usd: Annotated[float, Field(gt=0, le=100)] = 1.0
    allowed_hosts: tuple[Annotated[str, StringConstraints(min_length=1, max_length=253)],
                         ...] = ()  # http_call's allow list (host names, exact)
    visibility: Visibility = "private"
    created_at: Millis

    @field_validator("tools", "allowed_hosts")
    @classmethod
    def _canonical_sets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(value)))


class AgentRatingEntity(Entity):
    """One identity's rating of an agent; ``id`` is ``<agent_id>:<rater identity>``, so an
    identity holds at most one rating per agent (rating again replaces it).

    Owned by the rater, not by the agent's owner: the rating is the rater's statement, and it
    stays in the rater's boundary (the registry shows only counts and averages)."""

    ENTITY_TYPE: ClassVar[str] = "agent_rating"

    agent_id: EntityId
    rater: EntityId
    stars: Annotated[int, Field(ge=MIN_STARS, le=MAX_STARS)]
    created_at: Millis

    @property
    def entity_id(self) -> str:
        return f"{self.agent_id}:{self.rater}"

    @property
    def owner_identity(self) -> str:
        return self.rater


class RuleEntity(Entity):
    """A governance :class:`Rule`, flattened: the match conditions sit beside the rule fields.

    Set-valued conditions are stored sorted so equal rules serialize identically. The model
    checks shapes; :meth:`to_rule` runs the domain validation (patterns, known roles, ...).
    """

    ENTITY_TYPE: ClassVar[str] = "rule"

    rule_id: EntityId
    identity_id: EntityId
    sphere_id: EntityId | None = None
    effect: Effect
    priority: int
    actions: tuple[Action, ...] | None = None
    task_types: tuple[TaskType, ...] | None = None
    roles: tuple[str, ...] | None = None
    providers: tuple[str, ...] | None = None
    min_cost_usd: float | None = None
    max_cost_usd: float | None = None
    text_patterns: tuple[str, ...] = ()
    amount_above: float | None = None  # four eyes: "above 1,000" (bodies before it: unset)
    approvals_required: int = 1  # distinct approvers a checkpoint it causes needs

    @property
    def entity_id(self) -> str:
        return self.rule_id

    @property
    def owner_identity(self) -> str:
        return self.identity_id

    def to_rule(self) -> Rule:
        """The domain rule; raises ``InvalidRuleError`` when the conditions are malformed."""
        return Rule(
            rule_id=self.rule_id,
            identity_id=self.identity_id,
            sphere_id=self.sphere_id,
            effect=self.effect,
            priority=self.priority,
            match=RuleMatch(
                actions=None if self.actions is None else frozenset(self.actions),
                task_types=None if self.task_types is None else frozenset(self.task_types),
                roles=None if self.roles is None else frozenset(self.roles),
                providers=None if self.providers is None else frozenset(self.providers),
                min_cost_usd=self.min_cost_usd,
                max_cost_usd=self.max_cost_usd,
                text_patterns=self.text_patterns,
                amount_above=self.amount_above,
            ),
            approvals_required=self.approvals_required,
        )

    @classmethod
    def from_rule(cls, rule: Rule) -> RuleEntity:
        m = rule.match
        return cls(
            rule_id=rule.rule_id,
            identity_id=rule.identity_id,
            sphere_id=rule.sphere_id,
            effect=rule.effect,
            priority=rule.priority,
            actions=_sorted(m.actions),
            task_types=_sorted(m.task_types),
            roles=_sorted(m.roles),
            providers=_sorted(m.providers),
            min_cost_usd=m.min_cost_usd,
            max_cost_usd=m.max_cost_usd,
            text_patterns=m.text_patterns,
            amount_above=m.amount_above,
            approvals_required=rule.approvals_required,
        )


class BudgetEntity(OwnedById, Entity):
    """A spend budget (:class:`nova.llm.budgets.Budget`) kept by its owner identity.

    Workers enforce every live budget whoever owns it; who may create which scope is the
    gateway's decision (``gateway/routes/llm.py``). ``id`` is the budget's name in spend state
    and in ``budget_exceeded`` errors, so renaming (``name``) never resets its spend.
    """

    ENTITY_TYPE: ClassVar[str] = "budget"

    id: EntityId
    owner: EntityId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    scope: Literal["identity", "sphere", "provider"]
    subject: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    period: Literal["day", "week", "month"]
    soft_usd: Annotated[float, Field(ge=0)]
    hard_usd: Annotated[float, Field(ge=0)]
    created_at: Millis

    @model_validator(mode="after")
    def _soft_below_hard(self) -> BudgetEntity:
        if self.soft_usd > self.hard_usd:
            raise ValueError("soft_usd must not exceed hard_usd")
        return self


class WebhookEntity(OwnedById, Entity):
    """An alert destination (``nova.alerts``): where to POST which alerts, in which form.

    ``scope`` ``identity``: its owner's alerts (and those about no identity, such as
    providers); ``global``: an operator's, for every identity's. ``secret`` keys the HMAC
    signature of each request; the API shows it once, at creation, and the URL never whole
    again (an incoming-webhook URL is a secret too).
    """

    ENTITY_TYPE: ClassVar[str] = "webhook"

    id: EntityId
    owner: EntityId
    scope: Literal["identity", "global"]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    format: Literal["slack", "json"]
    alerts: tuple[AlertKind, ...]
    secret: Annotated[str, StringConstraints(min_length=16, max_length=128)]
    created_at: Millis

    def __repr__(self) -> str:  # the URL and the secret stay out of logs
        return f"WebhookEntity(id={self.id!r}, owner={self.owner!r}, scope={self.scope!r})"

    __str__ = __repr__


SYSTEM_OWNER: Final = "system"  # platform-wide settings and provider alerts: no identity's
GLOBAL: Final = "global"  # the id of a settings entity there is one of
# The bounds of the platform-wide settings below, shared with the API bodies that set them.
Rpm = Annotated[int, Field(ge=1, le=100_000_000)]
Tpm = Annotated[int, Field(ge=1, le=10_000_000_000)]
Seconds = Annotated[float, Field(ge=1, le=86_400)]
WindowMin = Annotated[int, Field(ge=1, le=1_440)]
Share = Annotated[float, Field(gt=0, le=1)]
MinCalls = Annotated[int, Field(ge=1, le=1_000_000)]
LatencyMs = Annotated[float, Field(gt=0, le=3_600_000)]
WaitS = Annotated[float, Field(ge=1, le=30 * 86_400)]
Note = Annotated[str, StringConstraints(max_length=500)]


class Changed(BaseModel):
    """Who changed a platform-wide setting last, and when (the audit fact has the rest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    updated_at: Millis
    updated_by: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class SystemOwned:
    """Mixin for platform-wide settings: they belong to no identity (owner ``system``)."""

    @property
    def owner_identity(self) -> str:
        return SYSTEM_OWNER


class GlobalSetting(SystemOwned):
    """Mixin for a platform-wide setting there is one of (id ``global``)."""

    @property
    def entity_id(self) -> str:
        return GLOBAL


class ProviderLimitsEntity(SystemOwned, Entity):
    """A provider's rate limits as an operator set them, in place of the registry's.

    ``None`` keeps the registry's (``providers.yaml``) figure. Every worker enforces its
    partition share of these (``streams.execution``) from the next request it routes, and the
    gateway's ``rate-limits`` answers show them; so the change reaches every process and
    survives restarts, as the entities topic does. ``reset_at`` is the last reset: a worker
    whose buckets predate it starts them full again.
    """

    ENTITY_TYPE: ClassVar[str] = "provider_limits"

    provider: EntityId
    rpm: Rpm | None = None
    tpm: Tpm | None = None
    reset_at: Millis = 0
    changed: Changed

    @property
    def entity_id(self) -> str:
        return self.provider


class ProbeSettingsEntity(GlobalSetting, Entity):
    """How provider health is watched: the workers' probe interval (``streams.health_probe``),
    and the gateway's live-call window and error share that make a provider degraded
    (``gateway.llm_state.HealthView``). One of it (id ``global``); absent, the settings'."""

    ENTITY_TYPE: ClassVar[str] = "probe_settings"

    interval_s: Seconds
    window_min: WindowMin
    degraded_failure_rate: Share
    changed: Changed


class AlertThresholdsEntity(GlobalSetting, Entity):
    """When the alert dispatcher raises error-rate, latency and checkpoint-wait alerts
    (``nova.alerts.detect.Thresholds``), over the settings' ``NOVA_ALERT_*``. One of it."""

    ENTITY_TYPE: ClassVar[str] = "alert_thresholds"

    window_s: Seconds
    min_calls: MinCalls
    error_rate: Share
    latency_ms: LatencyMs
    checkpoint_wait_s: WaitS
    changed: Changed


def alert_ack_id(event_id: str) -> str:
    """The entity id of an alert's acknowledgement (alert ids hold ``/``, which ids may not)."""
    return hashlib.sha256(event_id.encode()).hexdigest()[:40]


class AlertAckEntity(OwnedById, Entity):
    """Someone has seen an alert (``POST /api/v2/llm/monitoring/alerts/acknowledge``).

    Owned by the alert's identity (``system`` for provider alerts), so an acknowledgement is
    guarded like the alert it answers; ``by_identity`` and ``by`` say who acknowledged it.
    """

    ENTITY_TYPE: ClassVar[str] = "alert_ack"

    id: EntityId
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    owner: EntityId
    by_identity: EntityId
    by: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    note: Note = ""
    at: Millis

    @model_validator(mode="after")
    def _id_of_event(self) -> AlertAckEntity:
        if self.id != alert_ack_id(self.event_id):
            raise ValueError("an acknowledgement's id is alert_ack_id(event_id)")
        return self


AnyEntity: TypeAlias = (
    IdentityEntity
    | UserEntity
    | SphereEntity
    | SessionEntity
    | ApiKeyEntity
    | ThreadEntity
    | ThreadMessageEntity
    | DataspaceEntity
    | DataspaceItemEntity
    | MeetingEntity
    | MeetingEntryEntity
    | AgentEntity
    | AgentRatingEntity
    | RuleEntity
    | BudgetEntity
    | WebhookEntity
    | ProviderLimitsEntity
    | ProbeSettingsEntity
    | AlertThresholdsEntity
    | AlertAckEntity
)

ENTITY_TYPES: Final[dict[str, type[AnyEntity]]] = {
    cls.ENTITY_TYPE: cls
    for cls in (
        IdentityEntity,
        UserEntity,
        SphereEntity,
        SessionEntity,
        ApiKeyEntity,
        ThreadEntity,
        ThreadMessageEntity,
        DataspaceEntity,
        DataspaceItemEntity,
        MeetingEntity,
        MeetingEntryEntity,
        AgentEntity,
        AgentRatingEntity,
        RuleEntity,
        BudgetEntity,
        WebhookEntity,
        ProviderLimitsEntity,
        ProbeSettingsEntity,
        AlertThresholdsEntity,
        AlertAckEntity,
    )
}

EntityType = Literal[
    "identity",
    "user",
    "sphere",
    "session",
    "api_key",
    "thread",
    "thread_message",
    "dataspace",
    "dataspace_item",
    "meeting",
    "meeting_entry",
    "agent",
    "agent_rating",
    "rule",
    "budget",
    "webhook",
    "provider_limits",
    "probe_settings",
    "alert_thresholds",
    "alert_ack",
]


def entity_key(entity_type: str, entity_id: str) -> str:
    """The Kafka key of an entity: ``entity_type:entity_id``."""
    return f"{entity_type}:{entity_id}"


def split_key(key: str) -> tuple[str, str]:
    """``(entity_type, entity_id)`` of a key; the type never contains ``:``, the id may."""
    entity_type, sep, entity_id = key.partition(":")
    if not sep or not entity_type or not entity_id:
        raise SchemaError(f"malformed entity key {key!r}")
    return entity_type, entity_id


def to_event(entity: AnyEntity, *, version: int, ts: int, deleted: bool = False) -> EntityEvent:
    """The record stating ``entity`` at ``version``; ``deleted`` keeps the last state as body."""
    if version < 1:
        raise ValueError("entity versions start at 1")
    return EntityEvent(
        entity_type=entity.ENTITY_TYPE,
        entity_id=entity.entity_id,
        owner_identity=entity.owner_identity,
        version=version,
        ts=ts,
        deleted=deleted,
        body=entity.canonical_json(),
    )


def from_event(event: EntityEvent) -> AnyEntity | None:
    """The entity state an event carries; None for an entity type this build does not know.

    Raises ``SchemaError`` when the body does not parse or contradicts the event's envelope
    (id or owner), so a forged or corrupted record is never applied under another key.
    """
    cls = ENTITY_TYPES.get(event.entity_type)
    if cls is None:
        return None
    try:
        entity = cls.model_validate_json(event.body)
    except ValueError as exc:
        raise SchemaError(f"{event.entity_type} {event.entity_id}: invalid body: {exc}") from exc
    if entity.entity_id != event.entity_id:
        raise SchemaError(f"{event.entity_type} {event.entity_id}: body names another id")
    if entity.owner_identity != event.owner_identity:
        raise SchemaError(f"{event.entity_type} {event.entity_id}: body names another owner")
    return entity
