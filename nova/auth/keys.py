"""API keys for machine clients: shown once, stored only as a salted hash.

Format of the plaintext: ``nova_<key_id>_<secret>`` where ``key_id`` is 16 hex characters and
``secret`` is 32 random bytes, URL-safe base64. The prefix makes a leaked key recognisable to
secret scanners (Nova's own governance refuses prompts containing one); the embedded ``key_id``
lets the gateway fetch the one record to check without scanning all of them.

Storage: ``pbkdf2_sha256$<iterations>$<salt b64>$<digest b64>`` with a random 16-byte salt.
The secret already carries 256 bits of entropy, so the KDF is not there to slow brute force of
a guessable password; the salt and the hash make a stolen key table useless for logging in,
and the modest iteration count keeps verification cheap on the request path. The iteration
count travels in the stored string, so it can be raised later without breaking old records.
Comparison uses ``hmac.compare_digest`` so timing reveals nothing about the stored digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from nova.auth.tokens import Principal
from nova.domain.identity_format import is_identity_id
from nova.domain.roles import ROLES
from nova.errors import AuthError

API_KEY_PREFIX: Final = "nova_"
PBKDF2_ITERATIONS: Final = 10_000
_SCHEME: Final = "pbkdf2_sha256"
_KEY_FORMAT = re.compile(r"nova_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """What is stored for one API key; never the plaintext."""

    key_id: str
    identity_id: str
    roles: frozenset[str]
    hash: str
    created_at: datetime

    def __repr__(self) -> str:  # the hash stays out of logs too
        return f"ApiKeyRecord(key_id={self.key_id!r}, identity_id={self.identity_id!r})"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_api_key() -> tuple[str, str]:
    """A new ``(key_id, plaintext)``; show the plaintext once, store only its hash."""
    key_id = secrets.token_hex(8)
    return key_id, f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def parse_key_id(presented: str) -> str:
    """The key id embedded in a presented key, or ``AuthError`` if it is not a Nova key."""
    match = _KEY_FORMAT.fullmatch(presented)
    if match is None:
        raise AuthError("malformed api key")
    return match.group(1)


def hash_api_key(plaintext: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Salted PBKDF2-SHA256 of a plaintext key in the self-describing stored format."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", plaintext.encode("utf-8"), salt, iterations)
    return f"{_SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def create_api_key(
    identity_id: str, roles: Iterable[str], now: datetime
) -> tuple[ApiKeyRecord, str]:
    """A record to store and the plaintext to show once."""
    wanted = frozenset(roles)
    if not identity_id:
        raise AuthError("identity is required")
    if not is_identity_id(identity_id):
        raise AuthError("malformed identity id")
    if not wanted <= ROLES:
        raise AuthError("unknown role")
    if not wanted:
        raise AuthError("empty roles")  # a token with no role is refused: so is such a key
    key_id, plaintext = generate_api_key()
    record = ApiKeyRecord(
        key_id=key_id,
        identity_id=identity_id,
        roles=wanted,
        hash=hash_api_key(plaintext),
        created_at=now,
    )
    return record, plaintext


def verify_api_key(record: ApiKeyRecord, presented: str) -> Principal:
    """The principal of a presented key matching ``record``; ``AuthError`` otherwise."""
    key_id = parse_key_id(presented)
    if not hmac.compare_digest(key_id, record.key_id):
        raise AuthError("invalid api key")
    try:
        scheme, iterations, salt, expected = record.hash.split("$")
        rounds = int(iterations)
        if scheme != _SCHEME or not 1 <= rounds <= 10_000_000:
            raise ValueError(scheme)
        digest = hashlib.pbkdf2_hmac("sha256", presented.encode("utf-8"), _unb64(salt), rounds)
        stored = _unb64(expected)
    except ValueError as exc:
        raise AuthError("unusable api key record") from exc
    if not hmac.compare_digest(digest, stored):
        raise AuthError("invalid api key")
    return Principal(
        sub=f"apikey:{record.key_id}",
        identity=record.identity_id,
        roles=record.roles,
        expires_at=None,
    )
