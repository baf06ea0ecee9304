"""Bearer tokens: HS256 JWTs whose algorithm the server pins, never the token (RFC 8725).

Decoding passes ``algorithms=["HS256"]`` so ``alg: none``, HS512 and RS256 tokens (including
the classic RS256-public-key-as-HMAC-secret confusion) are refused before any claim is read.
``exp``, ``iat``, ``iss``, ``aud``, ``sub`` and the Nova claims ``identity`` and ``roles`` are
required; ``iss`` and ``aud`` must equal the settings. Expiry and not-before are checked here
against an explicit ``now`` (defaulting to the clock) rather than inside PyJWT, so tests and
replays are deterministic. Roles must be a subset of the closed role set, so a token minted
with an invented role is refused instead of carrying a privilege nobody defined.

A valid signature proves who minted a token, not that its claims are sane, so every claim is
bounded before it is used (RFC 8725 §3.10): ``exp``, ``iat`` and ``nbf`` are JSON numbers
between 0 and year 9999 (no strings, booleans, NaN, 1e300 or 400-digit integers, which used to
reach ``datetime`` and answer 500); ``iat`` may be at most :data:`IAT_SKEW_S` ahead of this
gateway's clock (a token "issued" a year ahead is refused); ``exp`` must follow ``iat`` by at
most ``jwt_ttl_s`` plus that skew, the longest lifetime Nova ever mints, so a leaked signing
key cannot mint a token that outlives its rotation; ``identity`` must have the identity id
shape and ``sub`` be printable text (``nova.domain.identity_format``: no NUL, no control
characters, at most 128 characters); ``roles`` is a non-empty list of known roles.

A token issued by a gateway's exchange names its session (``sid``, ``gateway.sessions``): the
session can be revoked (logout, a revoked API key), and every gateway then refuses the token
before its expiry. A token without ``sid`` (``nova token``, or minted before sessions existed)
belongs to no session and lives until ``exp``. ``sid`` has the shape of a UUID; anything else
is a malformed claim.

Every failure is an ``AuthError`` with a short reason ("token expired", "bad signature") that
is safe to return to the client; PyJWT's own messages are not exposed. A token that does not
even prove knowledge of the signing key (malformed, too large, wrong algorithm, bad signature)
raises the subclass :class:`UnprovenTokenError`: that is what guessing looks like, and what the
gateway throttles per source address (``gateway.auth_throttle``). A well-signed token with a
bad claim was minted by a holder of the key and is no guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt

from nova.domain.identity_format import is_identity_id, is_subject
from nova.domain.roles import ROLES
from nova.errors import AuthError
from nova.settings import Settings

ALGORITHM: Final = "HS256"
MAX_TOKEN_LENGTH: Final = 4096
IAT_SKEW_S: Final = 60.0  # clocks of the minting and the checking process may differ this much
MAX_ROLES: Final = 16
_MAX_NUMERIC_DATE: Final = 253_402_300_799  # 9999-12-31T23:59:59Z, the last datetime can hold
_REQUIRED: Final = ["exp", "iat", "iss", "aud", "sub"]
_SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_session_id(value: object) -> bool:
    """True for a session id: a lowercase UUID in its hyphenated form (``nova.ids.uuid7``)."""
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


class UnprovenTokenError(AuthError):
    """The token proves nothing: not a JWT, too large, another algorithm, or a bad signature."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: subject, the identity it acts for, its roles, when its proof expires.

    ``expires_at`` is None for API keys, which do not expire on their own; ``session_id`` is
    the session a gateway's exchange opened for the token (None: a token of no session).
    """

    sub: str
    identity: str
    roles: frozenset[str]
    expires_at: datetime | None
    session_id: str | None = None

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now


def _check_roles(roles: Iterable[object]) -> frozenset[str]:
    checked: set[str] = set()
    for count, role in enumerate(roles, 1):
        if count > MAX_ROLES:
            raise AuthError("malformed claim roles")
        if not isinstance(role, str) or role not in ROLES:
            raise AuthError("unknown role")
        checked.add(role)
    if not checked:
        raise AuthError("empty roles")
    return frozenset(checked)


def issue_token(
    settings: Settings, sub: str, identity: str, roles: Iterable[str], now: datetime,
    *, session_id: str | None = None,
) -> str:
    """Sign a token for ``sub`` acting as ``identity`` with ``roles``, valid for jwt_ttl_s
    (of session ``session_id``, when given)."""
    if not sub or not identity:
        raise AuthError("sub and identity are required")
    if not is_identity_id(identity):
        raise AuthError("malformed identity id")
    if not is_subject(sub):
        raise AuthError("malformed subject")
    checked = _check_roles(roles)
    if session_id is not None and not is_session_id(session_id):
        raise AuthError("malformed session id")
    issued = _utc(now)
    payload: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": sub,
        "identity": identity,
        "roles": sorted(checked),
        "iat": int(issued.timestamp()),
        "nbf": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=settings.jwt_ttl_s)).timestamp()),
    }
    if session_id is not None:
        payload["sid"] = session_id
    return jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


def _decode(settings: Settings, token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={
                "require": _REQUIRED,
                "verify_signature": True,
                "verify_aud": True,
                "verify_iss": True,
                # Checked below against the caller's ``now``.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidAlgorithmError as exc:
        raise UnprovenTokenError("algorithm not allowed") from exc
    except jwt.InvalidSignatureError as exc:
        raise UnprovenTokenError("bad signature") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"missing claim {exc.claim}") from exc
    except jwt.InvalidAudienceError as exc:
        raise AuthError("wrong audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise AuthError("wrong issuer") from exc
    except jwt.DecodeError as exc:  # not a JWT at all (checked before the signature)
        raise UnprovenTokenError("malformed token") from exc
    except jwt.PyJWTError as exc:
        raise AuthError("malformed token") from exc
    return claims


def _numeric_date(claims: dict[str, Any], name: str) -> float | None:
    """A NumericDate claim (RFC 7519 §2) as seconds, bounded to what ``datetime`` can hold."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthError(f"malformed claim {name}")
    if isinstance(value, int) and not 0 <= value <= _MAX_NUMERIC_DATE:  # before float(): 10**400
        raise AuthError(f"malformed claim {name}")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= _MAX_NUMERIC_DATE:
        raise AuthError(f"malformed claim {name}")
    return seconds


def verify_token(
    settings: Settings, token: str, now: datetime | None = None, leeway_s: float = 0.0
) -> Principal:
    """The principal a valid token proves; ``AuthError`` with a short reason otherwise."""
    if not token:
        raise AuthError("missing token")
    if len(token) > MAX_TOKEN_LENGTH:
        raise UnprovenTokenError("token too large")
    claims = _decode(settings, token)
    current = _utc(now).timestamp()

    exp = _numeric_date(claims, "exp")
    iat = _numeric_date(claims, "iat")
    nbf = _numeric_date(claims, "nbf")
    if exp is None:
        raise AuthError("missing claim exp")
    if iat is None:
        raise AuthError("missing claim iat")
    if iat > current + max(leeway_s, IAT_SKEW_S):
        raise AuthError("token issued in the future")
    if current >= exp + leeway_s:
        raise AuthError("token expired")
    if not iat < exp <= iat + settings.jwt_ttl_s + IAT_SKEW_S:
        raise AuthError("token lifetime out of bounds")
    if nbf is not None and current + leeway_s < nbf:
        raise AuthError("token not yet valid")

    sub, identity, roles = claims.get("sub"), claims.get("identity"), claims.get("roles")
    if not is_subject(sub):
        raise AuthError("malformed claim sub")
    if identity is None:
        raise AuthError("missing claim identity")
    if not is_identity_id(identity):
        raise AuthError("malformed claim identity")
    if not isinstance(roles, list):
        raise AuthError("missing claim roles")
    session_id = claims.get("sid")
    if session_id is not None and not is_session_id(session_id):
        raise AuthError("malformed claim sid")
    return Principal(
        sub=sub,
        identity=identity,
        roles=_check_roles(roles),
        expires_at=datetime.fromtimestamp(exp, UTC),
        session_id=session_id,
    )
