"""Sessions at the gateway: opening, refreshing and ending them, and the check every token passes.

The rules are pure (``nova.auth.sessions``); this is where they meet Kafka. Sessions are
records on their own topic, ``sessions`` (signed like entities and folded by the same
:class:`~nova.entities.store.EntityStore`), which every gateway tails: a session opened or
revoked at one gateway is known to all of them, and no gateway keeps a revocation list of its
own. Only gateways read or write the topic (``nova.kafka.acls``).

Consistency across gateways, where it matters:

- **Refreshing** (and the exchange of an API key, ``gateway.routes.auth``) first reads the
  topic to its end (``EntityStore.sync``), so a logged-out session's refresh token, or a
  revoked key, is refused at once by every gateway, not only by the one that revoked it.
- **An access token** is checked against the gateway's view on every request, without a
  round trip to the broker: a revoked session's tokens are refused by another gateway as soon
  as its tail has read the revocation (normally within milliseconds of the logout's answer).
  A session this gateway has not heard of yet (opened elsewhere a moment ago) costs one sync.

The view holds live sessions only: expired ones are forgotten, at most once a minute, once no
token of theirs can still be valid; the topic itself drops records after 30 days
(``schemas.topics``). Refreshes of one session are serialized within a gateway; two gateways
refreshing the same token at the same instant both succeed and the log's order decides which
new refresh token stays current (the other one is then merely invalid).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from nova.audit.facts import RecordSender, emit_audit_fact
from nova.auth.sessions import (
    Opened,
    RevokeReason,
    check_refresh,
    open_session,
    parse_session_id,
    refuse_access,
    revoke,
    rotate,
)
from nova.auth.tokens import Principal, issue_token
from nova.entities.models import ApiKeyEntity, SessionEntity, entity_key
from nova.entities.store import EntityStore, EntityWriter
from nova.errors import AuthError, ConflictError
from nova.records import now_ms
from nova.settings import Settings

log = logging.getLogger(__name__)

TOPIC: Final = "sessions"
# A retired refresh token came back: the session is revoked (an audit fact name, no secret).
TOKEN_REUSE: Final = "TOKEN_REUSE"  # noqa: S105
_INVALID: Final = "invalid refresh token"
PRUNE_EVERY_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What an exchange hands out: an access token and its session's refresh token."""

    access_token: str
    refresh_token: str
    expires_in: int  # seconds, the access token's
    refresh_expires_in: int  # seconds, the session's
    session_id: str

    def __repr__(self) -> str:  # the tokens stay out of logs
        return f"TokenPair(session_id={self.session_id!r})"


class SessionBook:
    """The gateway's sessions (see the module docstring)."""

    def __init__(self, settings: Settings, store: EntityStore, writer: EntityWriter,
                 entities: EntityStore, producer: RecordSender) -> None:
        self.settings = settings
        self.store = store  # the sessions topic
        self.writer = writer
        self.entities = entities  # the API keys sessions came from
        self.producer = producer
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary())
        self._pruned_at = 0

    def _lock(self, session_id: str) -> asyncio.Lock:
        lock = self._locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[session_id] = lock
        return lock

    def _pair(self, opened: Opened, now: int) -> TokenPair:
        s = opened.session
        access = issue_token(self.settings, s.user_id, s.identity_id, s.roles,
                             datetime.fromtimestamp(now / 1000, UTC), session_id=s.id)
        return TokenPair(access, opened.refresh_token, self.settings.jwt_ttl_s,
                         max(0, (s.expires_at - now) // 1000), s.id)

    # -- opening, refreshing, ending -----------------------------------------------------
    async def open(self, *, identity: str, user: str, roles: frozenset[str] | tuple[str, ...],
                   key_id: str | None) -> TokenPair:
        """A new session and its first pair of tokens."""
        now = now_ms()
        self._prune(now)
        opened = open_session(identity_id=identity, user_id=user, roles=roles, key_id=key_id,
                              now_ms=now, ttl_s=self.settings.refresh_ttl_s)
        await self.writer.put(opened.session)
        return self._pair(opened, now)

    async def refresh(self, presented: str) -> TokenPair:
        """A new pair for a session's current refresh token (which it then retires).

        ``AuthError`` (401) for anything else; a retired token revokes its session first.
        """
        session_id = parse_session_id(presented)
        async with self._lock(session_id):
            await self.store.sync()  # a logout or a rotation at another gateway counts here
            session = self.store.get(SessionEntity, session_id)
            if session is None:
                raise AuthError(_INVALID)
            now = now_ms()
            verdict = check_refresh(session, presented, now)
            if verdict == "reused":
                await self._revoke(session, "reuse", now)
                await self._report_reuse(session)
                raise AuthError(_INVALID)
            if verdict != "current" or not await self.key_live(session.key_id):
                raise AuthError(_INVALID)
            opened = rotate(session, now)
            await self.writer.update(opened.session)
            return self._pair(opened, now)

    async def end(self, principal: Principal) -> None:
        """Logout: revoke the principal's session, its refresh token with it."""
        if principal.session_id is None:
            raise ConflictError("this token belongs to no session (it was minted with `nova "
                                "token`): nothing to revoke, it expires on its own")
        async with self._lock(principal.session_id):
            session = await self._session(principal.session_id)
            if session is None:
                raise AuthError("session unknown or ended")
            await self._revoke(session, "logout", now_ms())

    async def _revoke(self, session: SessionEntity, reason: RevokeReason, now: int) -> None:
        revoked = revoke(session, reason, now)
        if revoked is not session:
            await self.writer.update(revoked)

    async def _report_reuse(self, session: SessionEntity) -> None:
        detail = {"resource_kind": "session", "resource_id": session.id,
                  "operation": "refresh", "key_id": session.key_id}
        try:
            await emit_audit_fact(self.producer, TOKEN_REUSE, session.identity_id,
                                  session.user_id, None, detail)
        except Exception:  # the revocation stands even if the fact cannot be sent
            log.exception("could not record a %s fact for session %s", TOKEN_REUSE, session.id)

    # -- the check of every token --------------------------------------------------------
    async def _session(self, session_id: str) -> SessionEntity | None:
        session = self.store.get(SessionEntity, session_id)
        if session is None and self.store.version(SessionEntity.ENTITY_TYPE, session_id) == 0:
            await self.store.sync()  # opened at another gateway a moment ago?
            session = self.store.get(SessionEntity, session_id)
        return session

    async def key_live(self, key_id: str | None) -> bool:
        """Whether the API key a session came from is still live (no key: nothing to end)."""
        if key_id is None or self.entities.api_key(key_id) is not None:
            return True
        if self.entities.version(ApiKeyEntity.ENTITY_TYPE, key_id) == 0:
            await self.entities.sync()  # created at another gateway a moment ago?
        return self.entities.api_key(key_id) is not None

    async def check(self, principal: Principal) -> None:
        """Refuse (``AuthError``, 401) a token whose session is revoked, expired or unknown."""
        if principal.session_id is None:
            return
        session = await self._session(principal.session_id)
        key_live = session is None or await self.key_live(session.key_id)
        reason = refuse_access(session, identity=principal.identity, sub=principal.sub,
                               now_ms=now_ms(), key_live=key_live)
        if reason is not None:
            raise AuthError(reason)

    # -- bounds --------------------------------------------------------------------------
    def _prune(self, now: int) -> None:
        """Forget sessions expired for longer than a token lives: none can be used again."""
        if now - self._pruned_at < PRUNE_EVERY_MS:
            return
        self._pruned_at = now
        horizon = now - (self.settings.jwt_ttl_s + 60) * 1000
        for session in self.store.every(SessionEntity):
            if session.expires_at < horizon:
                self.store.forget(entity_key(SessionEntity.ENTITY_TYPE, session.id))
