"""Throttled authentication: credential guessing is slowed per source address and per key id.

Three credential checks exist at the gateway, and each passes this guard before doing any work:

- **API-key exchange** (``POST /api/v2/auth/token``): failures count against the source
  address and, when the presented key is well formed, against its key id. An unknown key id
  costs an entity-store sync (a Kafka round trip) and a known one a PBKDF2 hash, so the check
  comes before both.
- **Refresh-token exchanges** (``POST /api/v2/auth/refresh``, or ``/token`` with a refresh
  token): as API keys, per source address and per the session id the token names.
- **Bearer tokens** (every other ``/api/v2`` route): failures that prove nothing (not a JWT,
  another algorithm, a bad signature: :class:`~nova.auth.tokens.UnprovenTokenError`) count
  against the source address. A well-signed token that is expired or carries a bad claim was
  minted with the key, is no guess, and keeps answering 401.

Each source address and key id may fail ``NOVA_AUTH_FAILURES_PER_MINUTE`` times a minute
(default 20, after a first burst of as many; ``nova.auth.throttle``). Beyond, every attempt
(even with a valid credential) is refused with 429 problem+json, ``Retry-After`` and the name
of the limit (RFC 6585), until the allowance refills. When a source or a key id runs out, an
``AUTH_FAILURES`` audit fact is produced (at most one a minute per source or key id), the way
the boundary guard records crossings: an ``alert`` event for analysts and a fact lane G chains
into the audit topic. A key id under attack is throttled for its owner too: the owner waits a
minute or uses another key, which is the price of not letting a known key id be guessed at.

The source address is the TCP peer (``request.client.host``). ``X-Forwarded-For`` is not read:
anyone can write it, so trusting it would let a guesser pick a fresh address per attempt. Behind
a reverse proxy, run the proxy's own per-client limit, or every client shares the proxy's
address (and its allowance).

**Several gateways: per process, on purpose.** Each gateway keeps its own buckets, so with n
gateways a guesser gets at most n times the allowance: bounded, and linear in n. Sharing the
counts would cost a Kafka write (or a read before each check) per failed attempt, turning the
flood the throttle exists to absorb into a flood of the broker; a throttle must be cheaper than
what it protects. What it protects is per process anyway: each gateway's CPU (PBKDF2) and its
entity-store syncs. The secrets themselves are not guessable at any rate (an API key carries
256 random bits, a token an HMAC-SHA256), so n times a few failures a minute changes nothing
about their safety; and every gateway that sees a burst writes its own audit fact, so a
distributed attempt is visible in one place, the audit topic. A balancer that hashes on the
source address makes the allowance exact.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final, Literal

from nova.audit.facts import RecordSender, emit_audit_fact
from nova.auth.throttle import WINDOW_S, FailureThrottle
from nova.errors import AuthError, StartupError
from nova.settings import Settings

log = logging.getLogger(__name__)

AUTH_FAILURES: Final = "AUTH_FAILURES"
Credential = Literal["api_key", "refresh", "bearer"]
_WHAT: Final = {"api_key": "API-key exchanges", "refresh": "refresh-token exchanges",
                "bearer": "bearer tokens"}


@dataclass
class CheckScope:
    """What a credential check learnt before it failed: whose credential it was, if anyone's
    (the identity an ``AUTH_FAILURES`` fact is filed under)."""

    owner_identity: str | None = None


class AuthThrottle:
    """The gateway's guard in front of every credential check."""

    @contextlib.asynccontextmanager
    async def checking(self, credential: Credential, source: str,
                       key_id: str | None = None) -> AsyncIterator[CheckScope]:
        """One credential check, throttled: :meth:`acquire` before it (429 before any work);
        an ``AuthError`` out of the block is a failure (:meth:`failed`); anything else (the
        check could not be made: Kafka down) or success costs the caller nothing."""
        self.acquire(credential, source, key_id)
        scope = CheckScope()
        try:
            yield scope
        except AuthError:
            await self.failed(credential, source, key_id, owner_identity=scope.owner_identity)
            raise
        except BaseException:
            self.release(credential, source, key_id)
            raise
        self.release(credential, source, key_id)

    def __init__(self, throttle: FailureThrottle, producer: RecordSender) -> None:
        self.throttle = throttle
        self.producer = producer

    @staticmethod
    def _keys(credential: Credential, source: str, key_id: str | None) -> tuple[str, ...]:
        keys = (f"{credential}:source:{source}",)
        return keys if key_id is None else (*keys, f"{credential}:key:{key_id}")

    def acquire(self, credential: Credential, source: str, key_id: str | None = None) -> None:
        """Before a check: 429 (``LimitError``) when this source or key id has no failure
        left, else one is set aside for this check (given back by :meth:`release`)."""
        self.throttle.acquire(*self._keys(credential, source, key_id), what=_WHAT[credential])

    def release(self, credential: Credential, source: str, key_id: str | None = None) -> None:
        """The check succeeded (or could not be made): it costs nothing."""
        self.throttle.release(*self._keys(credential, source, key_id))

    async def failed(
        self,
        credential: Credential,
        source: str,
        key_id: str | None = None,
        *,
        owner_identity: str | None = None,
    ) -> None:
        """The check failed: its failure stays counted; audit each source or key id that has
        just run out (at most once a minute each)."""
        for key in self.throttle.failed(*self._keys(credential, source, key_id)):
            detail = {
                "resource_kind": "credential",
                "resource_id": key,
                "operation": "authenticate",
                "credential": credential,
                "source": source,
                "key_id": key_id,
                "failures": self.throttle.capacity,
                "window_s": WINDOW_S,
            }
            try:
                await emit_audit_fact(self.producer, AUTH_FAILURES, owner_identity or "",
                                      f"source:{source}", None, detail)
            except Exception:  # the refusal stands even if the fact cannot be sent
                log.exception("could not record an %s fact for %s", AUTH_FAILURES, key)


def build_failure_throttle(settings: Settings) -> FailureThrottle:
    """The pure throttle, built before anything connects; an unusable allowance refuses
    start-up (the throttle is never skipped)."""
    try:
        return FailureThrottle(settings.auth_failures_per_minute)
    except ValueError as exc:
        raise StartupError(
            "the gateway",
            "no authentication throttle can be built",
            f"NOVA_AUTH_FAILURES_PER_MINUTE={settings.auth_failures_per_minute:g} must be a "
            "positive number of failed credential checks per minute (default 20)",
        ) from exc
