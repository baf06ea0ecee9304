"""The identity boundary at the gateway: one identity never reads or acts on another's data.

Every route that takes a resource id resolves it through :class:`BoundaryGuard` before doing
anything else, so the check cannot be forgotten in one handler and the refusal is the same
everywhere (OWASP API1, broken object-level authorization):

- the resource is the caller identity's own → it is returned and the route proceeds;
- it is unknown (or deleted) → ``NotFoundError`` (404);
- it exists and belongs to another identity → an ``IDENTITY_BOUNDARY`` audit fact is produced,
  then ``ForbiddenError`` (403) whose message names only the kind of resource. Nothing of the
  resource (owner, title, content) is in the answer and the route has no side effect.

Why 403 and not 404 for a foreign id: the refusal is an audit event the owner and operators
must see, and 403 states it honestly. The price is that a caller can tell "exists elsewhere"
from "does not exist"; ids are server-generated UUIDv7 (74 random bits), so that oracle
cannot be used to enumerate anything, and every probe leaves a fact.

Identities are the one resource shared across identities of the same user: a user may see the
metadata (id, display name, sphere) of their own identities in every sphere, never another
user's. Data inside an identity (threads, dataspaces, meetings, rules, keys) stays strictly per
identity.

A failure to produce the audit fact is logged and does not turn the refusal into an allow.

An owner's update or deletion of its own thread, dataspace or meeting is audited too
(:meth:`BoundaryGuard.owner_change`, a ``RESOURCE_CHANGE`` fact written before the change).

Operators (``nova.domain.roles``) cross the boundary lawfully: :meth:`BoundaryGuard.operator_act`
records each change an operator makes to another identity's objects (or to a platform-wide
one, such as a budget on ``*``) as an ``OPERATOR_ACTION`` fact *before* the change is made, and
unlike a refusal's fact it is not optional: when it cannot be sent, the change is not made.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final, TypeVar

from nova.audit.facts import RecordSender, emit_audit_fact, fact
from nova.auth.tokens import Principal
from nova.domain.governance import IDENTITY_BOUNDARY
from nova.domain.roles import OPERATOR
from nova.entities.models import (
    AgentEntity,
    AnyEntity,
    DataspaceEntity,
    IdentityEntity,
    MeetingEntity,
    ThreadEntity,
)
from nova.entities.store import EntityStore, EntityWriter
from nova.errors import AuditUnavailableError, ForbiddenError, NotFoundError
from nova.ids import uuid7

log = logging.getLogger(__name__)

E = TypeVar("E", bound=AnyEntity)

OPERATOR_ACTION: Final = "OPERATOR_ACTION"
RESOURCE_CHANGE: Final = "RESOURCE_CHANGE"  # an owner updated or deleted its own resource
EVERY_IDENTITY: Final = "*"  # the target of a platform-wide change (a budget on a sphere, *)

# How a resource kind is named to the caller ("this thread belongs to another identity").
_NOUNS: Final = {
    "identity": "identity",
    "user": "user",
    "sphere": "sphere",
    "session": "session",
    "api_key": "API key",
    "thread": "thread",
    "thread_message": "message",
    "dataspace": "dataspace",
    "dataspace_item": "item",
    "meeting": "meeting",
    "meeting_entry": "meeting entry",
    "agent": "agent",
    "agent_rating": "rating",
    "rule": "rule",
    "request": "request",
    "budget": "budget",
    "webhook": "alert destination",
}


class BoundaryGuard:
    """Resolves resource ids for a principal, refusing and recording boundary crossings."""

    def __init__(self, store: EntityStore, writer: EntityWriter, producer: RecordSender) -> None:
        self.store = store
        self.writer = writer
        self.producer = producer

    # -- recording -----------------------------------------------------------------------
    async def violation(
        self,
        principal: Principal,
        kind: str,
        resource_id: str,
        owner_identity: str,
        *,
        operation: str = "read",
        request_id: str | None = None,
    ) -> None:
        """Record that ``principal`` tried to reach another identity's resource.

        Only records; the caller raises ``ForbiddenError`` (see :meth:`refuse`).
        """
        detail = {
            "resource_kind": kind,
            "resource_id": resource_id,
            "owner_identity": owner_identity,
            "operation": operation,
        }
        try:
            await emit_audit_fact(self.producer, IDENTITY_BOUNDARY, principal.identity,
                                  principal.sub, request_id, detail)
        except Exception:  # the refusal stands even if the fact cannot be sent
            log.exception("could not record an identity boundary fact for %s %s",
                          kind, resource_id)

    async def operator_act(
        self,
        principal: Principal,
        kind: str,
        resource_id: str,
        target_identity: str,
        *,
        operation: str,
        change: dict[str, object] | None = None,
    ) -> bool:
        """Audit an operator's ``operation`` on another identity's ``kind`` ``resource_id``.

        Returns whether a fact was produced: none when the object is the operator's own
        identity's (``target_identity`` is its identity), which is no crossing. A platform-wide
        change names :data:`EVERY_IDENTITY` as its target; its fact is filed under the
        operator's identity (no one identity owns it). Raises :class:`AuditUnavailableError`
        (a 503) when the fact cannot be sent, so the caller makes no unaudited change.
        """
        if OPERATOR not in principal.roles:
            raise ForbiddenError("only an operator acts on other identities' objects")
        if target_identity == principal.identity:
            return False
        detail: dict[str, object] = {
            "resource_kind": kind,
            "resource_id": resource_id,
            "owner_identity": target_identity,
            "operation": operation,
            "operator_identity": principal.identity,
        }
        if change is not None:
            detail["change"] = change
        filed_under = principal.identity if target_identity == EVERY_IDENTITY else target_identity
        try:
            await emit_audit_fact(self.producer, OPERATOR_ACTION, filed_under, principal.sub,
                                  None, detail)
        except Exception as exc:  # no fact, no change: the caller's write never happens
            log.exception("could not record an operator action on %s %s", kind, resource_id)
            raise AuditUnavailableError("the audit record of this change could not be written; "
                                        "nothing was changed, try again") from exc
        return True

    async def owner_change(
        self,
        principal: Principal,
        kind: str,
        resource_id: str,
        *,
        operation: str,
        detail: dict[str, object],
    ) -> None:
        """Audit an owner's change to its own ``kind`` ``resource_id`` (``update``, ``delete``)
        before it is made: a :data:`RESOURCE_CHANGE` fact in the audit chain, with who did it
        and what changed (field names and counts, never content). Nothing is wrong, so unlike
        a crossing it raises no alert; like an operator's act, no fact, no change
        (:class:`AuditUnavailableError`, a 503)."""
        record = fact(
            RESOURCE_CHANGE, principal.identity,
            {"resource_kind": kind, "resource_id": resource_id,
             "owner_identity": principal.identity, "operation": operation, **detail},
            actor=principal.sub, suffix=f"{kind}:{resource_id}:{uuid7()}",
        )
        try:
            await self.producer.send("facts", principal.identity, record)
        except Exception as exc:
            log.exception("could not record the %s of %s %s", operation, kind, resource_id)
            raise AuditUnavailableError("the audit record of this change could not be written; "
                                        "nothing was changed, try again") from exc

    async def refuse(
        self, principal: Principal, kind: str, resource_id: str, owner_identity: str,
        *, operation: str,
    ) -> ForbiddenError:
        """Record the crossing and return the error to raise (names only the kind)."""
        await self.violation(principal, kind, resource_id, owner_identity, operation=operation)
        return ForbiddenError(f"this {_NOUNS.get(kind, kind)} belongs to another identity")

    # -- resolving -----------------------------------------------------------------------
    async def _find(self, cls: type[E], entity_id: str) -> E | None:
        entity = self.store.get(cls, entity_id)
        if entity is None:  # written by another gateway a moment ago?
            await self.store.sync()
            entity = self.store.get(cls, entity_id)
        return entity

    async def existing(self, cls: type[E], entity_id: str) -> E:
        """The live entity with this id, whoever owns it (404 if unknown): for an operator's
        reach, and for resources some of which other identities may see (public agents); the
        caller checks who may."""
        entity = await self._find(cls, entity_id)
        if entity is None:
            raise NotFoundError(f"no {_NOUNS.get(cls.ENTITY_TYPE, cls.ENTITY_TYPE)} {entity_id}")
        return entity

    async def owned(
        self, principal: Principal, cls: type[E], entity_id: str, *, operation: str = "read"
    ) -> E:
        """The caller's own entity with this id; 404 if unknown, 403 + fact if foreign."""
        entity = await self.existing(cls, entity_id)
        if entity.owner_identity != principal.identity:
            raise await self.refuse(principal, cls.ENTITY_TYPE, entity_id,
                                    entity.owner_identity, operation=operation)
        return entity

    async def usable_agent(
        self, principal: Principal, agent_id: str, *, operation: str = "read"
    ) -> AgentEntity:
        """An agent the caller may see and run: its own, or a public one (404 unknown; another
        identity's private agent is a crossing: 403 and a fact)."""
        agent = await self.existing(AgentEntity, agent_id)
        if agent.owner != principal.identity and agent.visibility != "public":
            raise await self.refuse(principal, AgentEntity.ENTITY_TYPE, agent_id, agent.owner,
                                    operation=operation)
        return agent

    def user_of(self, principal: Principal) -> str:
        """The caller's user: from its identity record, else the token's subject."""
        ident = self.store.identity(principal.identity)
        return ident.user_id if ident is not None else principal.sub

    async def identity(
        self, principal: Principal, identity_id: str, *, operation: str = "read"
    ) -> IdentityEntity:
        """An identity of the caller's own user; 404 if unknown, 403 + fact otherwise."""
        ident = await self._find(IdentityEntity, identity_id)
        if ident is None:
            raise NotFoundError(f"no identity {identity_id}")
        if ident.id != principal.identity and ident.user_id != self.user_of(principal):
            raise await self.refuse(principal, "identity", identity_id, ident.id,
                                    operation=operation)
        return ident

    async def listing(self, principal: Principal, kind: str, owner: str | None) -> str:
        """The owner whose ``kind`` list the caller may read: only its own identity."""
        if owner is None or owner == principal.identity:
            return principal.identity
        raise await self.refuse(principal, kind, f"list:{owner}", owner, operation="list")

    async def check_request(
        self,
        principal: Principal,
        thread_id: str | None,
        dataspace_ids: Iterable[str],
        meeting_id: str | None = None,
    ) -> None:
        """Refuse a pipeline request that references a resource it does not own.

        Every reference is checked before answering, so one request naming several foreign
        resources leaves one fact per resource. A foreign reference wins over an unknown one.
        """
        refs: list[tuple[type[AnyEntity], str]] = []
        if thread_id is not None:
            refs.append((ThreadEntity, thread_id))
        refs += [(DataspaceEntity, d) for d in dict.fromkeys(dataspace_ids)]
        if meeting_id is not None:
            refs.append((MeetingEntity, meeting_id))
        if not refs:
            return
        if any(self.store.get(cls, rid) is None for cls, rid in refs):
            await self.store.sync()
        unknown: list[str] = []
        foreign: list[tuple[str, str, str]] = []
        for cls, rid in refs:
            entity = self.store.get(cls, rid)
            if entity is None:
                unknown.append(f"{_NOUNS[cls.ENTITY_TYPE]} {rid}")
            elif entity.owner_identity != principal.identity:
                foreign.append((cls.ENTITY_TYPE, rid, entity.owner_identity))
        for kind, rid, owner in foreign:
            await self.violation(principal, kind, rid, owner, operation="submit")
        if foreign:
            raise ForbiddenError("the request references a resource of another identity")
        if unknown:
            raise NotFoundError(f"no {', '.join(unknown)}")
