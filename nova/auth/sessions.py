"""Sessions and their refresh tokens: the pure rules, no storage or HTTP (``gateway.sessions``).

A token exchange (an API key, or a switch to another identity of the same user) opens a
*session*: a record naming the identity, the user, the roles and the API key it came from,
with the hash of one *refresh token*. Access tokens (JWTs) carry the session id (``sid``), so
revoking the session (logout, the API key revoked) ends them too, before their ``exp``.

Refresh token format: ``nova_rt_<session id>_<secret>``, the secret 32 random bytes URL-safe
base64 (as API keys, ``nova.auth.keys``: recognisable to secret scanners, and naming the one
record to check). Stored: its SHA-256 only. The secret carries 256 bits of entropy, so a KDF
would slow nothing that matters, and refreshes happen every access-token lifetime.

Rotation (OAuth 2.0 Security BCP, RFC 9700 §4.14.2): each refresh replaces the refresh token;
the old one's hash is *retired* (the last :data:`MAX_RETIRED` are kept). A retired token
presented again means two parties hold the session's tokens, one of them a thief, and nobody
can tell which: the session is revoked (``reuse``) and both must sign in again. A token that
matches neither is merely invalid (a guess), which revokes nothing: otherwise anyone who read a
session id off a JWT could end that session.

Sessions expire ``refresh_ttl_s`` after the exchange that opened them; refreshing does not
extend them (a stolen refresh token is good for that long at most, however it is used).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from nova.entities.models import SessionEntity
from nova.errors import AuthError
from nova.ids import uuid7

REFRESH_PREFIX: Final = "nova_rt_"
MAX_RETIRED: Final = 8
_FORMAT = re.compile(
    r"nova_rt_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_([A-Za-z0-9_-]{43})")

Check = Literal["current", "reused", "invalid", "expired", "revoked"]
RevokeReason = Literal["logout", "reuse", "key_revoked"]


def refresh_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_refresh(session_id: str) -> str:
    return f"{REFRESH_PREFIX}{session_id}_{secrets.token_urlsafe(32)}"


def parse_session_id(presented: str) -> str:
    """The session id a presented refresh token names, or ``AuthError`` if it is none."""
    match = _FORMAT.fullmatch(presented)
    if match is None:
        raise AuthError("malformed refresh token")
    return match.group(1)


@dataclass(frozen=True, slots=True)
class Opened:
    """A session to store and the refresh token to hand out once."""

    session: SessionEntity
    refresh_token: str

    def __repr__(self) -> str:
        return f"Opened(session={self.session!r})"


def open_session(
    *, identity_id: str, user_id: str, roles: Iterable[str], key_id: str | None, now_ms: int,
    ttl_s: int,
) -> Opened:
    """A new session of ``identity_id`` for ``user_id``, expiring ``ttl_s`` from now."""
    session_id = uuid7(now_ms)
    token = _new_refresh(session_id)
    session = SessionEntity(
        id=session_id, identity_id=identity_id, user_id=user_id,
        roles=tuple(sorted(set(roles))),  # checked by the model: known roles only
        key_id=key_id, refresh_hash=refresh_hash(token), created_at=now_ms,
        expires_at=now_ms + ttl_s * 1000, refreshed_at=now_ms,
    )
    return Opened(session, token)


def check_refresh(session: SessionEntity, presented: str, now_ms: int) -> Check:
    """What a presented refresh token is to ``session``: its current one, a retired one (a
    reuse), neither; or the session is over (revoked, expired), whatever was presented."""
    if session.revoked_at is not None:
        return "revoked"
    if now_ms >= session.expires_at:
        return "expired"
    digest = refresh_hash(presented)
    if hmac.compare_digest(digest, session.refresh_hash):
        return "current"
    if any(hmac.compare_digest(digest, old) for old in session.retired_hashes):
        return "reused"
    return "invalid"


def rotate(session: SessionEntity, now_ms: int) -> Opened:
    """The session with a new refresh token; the current one is retired."""
    token = _new_refresh(session.id)
    retired = (session.refresh_hash, *session.retired_hashes)[:MAX_RETIRED]
    changed = session.model_copy(update={"refresh_hash": refresh_hash(token),
                                         "retired_hashes": retired, "refreshed_at": now_ms})
    return Opened(SessionEntity.model_validate(changed.model_dump()), token)


def revoke(session: SessionEntity, reason: RevokeReason, now_ms: int) -> SessionEntity:
    """The session revoked (the first revocation's time and reason stay)."""
    if session.revoked_at is not None:
        return session
    return SessionEntity.model_validate(
        {**session.model_dump(), "revoked_at": now_ms, "revoked_reason": reason})


def refuse_access(session: SessionEntity | None, *, identity: str, sub: str, now_ms: int,
                  key_live: bool) -> str | None:
    """Why an access token of this session is refused (a 401 detail), or None to accept it.

    ``session`` None: no gateway knows it (never opened, or long expired). The token must
    name the session's identity and user; a session whose API key was revoked is over.
    """
    if session is None:
        return "session unknown or ended"
    if session.revoked_at is not None:
        return "token revoked"
    if now_ms >= session.expires_at:
        return "session expired"
    if session.identity_id != identity or session.user_id != sub:
        return "token does not match its session"
    if not key_live:
        return "token revoked"
    return None
