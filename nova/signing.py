"""The gateway's signature on what governs: checkpoint decisions and entity changes.

Whoever can write the ``decisions`` or ``entities`` topic must not be able to approve a
payment, add an API key or delete a rule. So the gateway signs every decision and every entity
change it writes with an Ed25519 key only it holds, and every reader that acts on them (lane E,
the entity views of the gateway and the worker, ``nova audit verify``) checks the signature
against the gateway's *public* key before folding the record in. A record that is unsigned,
signed with an unknown key or whose signature does not verify is a :class:`SignatureError`:
the reader ignores it (fail closed) and the worker dead-letters and audits it.

Keys (see README, "Signed decisions and entity changes")::

    private  NOVA_SIGNING_KEY (base64 of the 32-byte seed, or PEM)        the gateway, and
             else <data dir>/keys/signing.key, created at first start, 0600   `nova keys create`
    public   NOVA_SIGNING_PUBLIC_KEY (base64 of the 32 raw bytes, or PEM)  worker, tools
             else <data dir>/keys/signing.pub, written next to the private key
    extra    NOVA_SIGNING_TRUSTED_KEYS (comma-separated public keys)      rotation: old keys

:func:`load_signer` is the only function that reads a private key; the worker and the tools
call :func:`load_verifier`, which never looks at one. ``key_id`` is ``ed25519:`` and the first
16 hex digits of SHA-256 over the raw public key; records name it so a reader picks the key
(RFC 8725's ``kid``) and rotation needs no flag day.

What is signed: a fixed list of fields per record kind (not "every field but the signature"),
canonical JSON (sorted keys, no spaces, UTF-8), prefixed by a context string that names the
kind (``nova.decision.v1``, ``nova.entity.v1``). The context keeps a decision's signature from
verifying as an entity change's; the fixed list keeps a signature valid when a later schema
version adds a field with a default. Everything that says *what* was decided (checkpoint,
request, identity, decision, actor, time) is covered, so a signed approval copied onto
another checkpoint no longer verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from nova.errors import ConfigError, SignatureError
from nova.records import CheckpointDecisionRecord, EntityEvent
from nova.settings import Settings

log = logging.getLogger(__name__)

DECISION_CONTEXT: Final = b"nova.decision.v1\n"
ENTITY_CONTEXT: Final = b"nova.entity.v1\n"
DECISION_FIELDS: Final = (
    "checkpoint_id", "request_id", "identity_id", "decision", "actor", "reason", "decided_at",
)
ENTITY_FIELDS: Final = (
    "entity_type", "entity_id", "owner_identity", "version", "ts", "deleted", "body",
)


def _canonical(values: Mapping[str, Any]) -> bytes:
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def decision_payload(record: CheckpointDecisionRecord, key_id: str) -> bytes:
    """The bytes a decision's signature covers."""
    values = {name: getattr(record, name) for name in DECISION_FIELDS}
    return DECISION_CONTEXT + _canonical({**values, "key_id": key_id})


def entity_payload(event: EntityEvent, key_id: str) -> bytes:
    """The bytes an entity change's signature covers."""
    values = {name: getattr(event, name) for name in ENTITY_FIELDS}
    return ENTITY_CONTEXT + _canonical({**values, "key_id": key_id})


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PublicKey) -> str:
    return "ed25519:" + hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def public_key_text(key: Ed25519PublicKey) -> str:
    """The public key as NOVA_SIGNING_PUBLIC_KEY takes it: base64 of the 32 raw bytes."""
    return base64.b64encode(_raw_public(key)).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes or from PEM; ``ConfigError`` otherwise."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError("the signing public key is not an Ed25519 key")
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ConfigError(f"the signing public key does not parse: {exc}") from exc


def parse_private_key(text: str) -> Ed25519PrivateKey:
    """A private key from base64 of its 32-byte seed or from PEM (PKCS#8, unencrypted)."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ConfigError("NOVA_SIGNING_KEY is not an Ed25519 key")
            return key
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ConfigError(f"NOVA_SIGNING_KEY does not parse: {exc}") from exc


@dataclass(frozen=True)
class Verifier:
    """Checks signatures against the trusted public keys, by key id. Holds no private key."""

    keys: Mapping[str, Ed25519PublicKey]

    @classmethod
    def of(cls, keys: Iterable[Ed25519PublicKey]) -> Verifier:
        found = {key_id_of(k): k for k in keys}
        if not found:
            raise ConfigError("a verifier needs at least one public key")
        return cls(found)

    def _check(self, key_id: str | None, signature: bytes | None, payload: bytes) -> None:
        if not signature or not key_id:
            raise SignatureError("unsigned record")
        key = self.keys.get(key_id)
        if key is None:
            raise SignatureError(f"signed with an unknown key {key_id}")
        try:
            key.verify(signature, payload)
        except InvalidSignature:
            raise SignatureError(f"bad signature (key {key_id})") from None

    def verify_decision(self, record: CheckpointDecisionRecord) -> None:
        """Raise ``SignatureError`` unless the gateway signed exactly this decision."""
        key_id = record.key_id or ""
        self._check(record.key_id, record.signature, decision_payload(record, key_id))

    def verify_entity(self, event: EntityEvent) -> None:
        """Raise ``SignatureError`` unless the gateway signed exactly this entity change."""
        key_id = event.key_id or ""
        self._check(event.key_id, event.signature, entity_payload(event, key_id))


@dataclass(frozen=True)
class Signer:
    """The gateway's private key. Built by :func:`load_signer` only."""

    private: Ed25519PrivateKey
    trusted: tuple[Ed25519PublicKey, ...] = ()

    def __repr__(self) -> str:  # the key stays out of logs
        return f"Signer(key_id={self.key_id!r})"

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public)

    @property
    def verifier(self) -> Verifier:
        """Verifies what this key signs (and what the trusted older keys signed)."""
        return Verifier.of((self.public, *self.trusted))

    def sign_decision(self, record: CheckpointDecisionRecord) -> CheckpointDecisionRecord:
        key_id = self.key_id
        signature = self.private.sign(decision_payload(record, key_id))
        return record.model_copy(update={"key_id": key_id, "signature": signature})

    def sign_entity(self, event: EntityEvent) -> EntityEvent:
        key_id = self.key_id
        signature = self.private.sign(entity_payload(event, key_id))
        return event.model_copy(update={"key_id": key_id, "signature": signature})


def key_files(settings: Settings) -> tuple[Path, Path]:
    """Where the generated key pair lives: ``<data dir>/keys/signing.key`` and ``.pub``."""
    folder = settings.data_dir / "keys"
    return folder / "signing.key", folder / "signing.pub"


def _trusted(settings: Settings) -> tuple[Ed25519PublicKey, ...]:
    return tuple(parse_public_key(t) for t in settings.signing_trusted_keys.split(",") if t.strip())


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    """Create the key file 0600 from the start (never world-readable, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def _write_public(path: Path, key: Ed25519PublicKey) -> None:
    tmp = path.with_suffix(".pub.tmp")
    tmp.write_text(public_key_text(key) + "\n")
    tmp.chmod(0o644)
    tmp.replace(path)


def load_signer(settings: Settings) -> Signer:
    """The gateway's signing key: NOVA_SIGNING_KEY, else the data dir's, created if absent.

    Also (re)writes the public key file next to a generated private key, so the worker and the
    tools on this machine find it without being told. A private key file readable by others
    is refused: it would let any local user approve payments.
    """
    trusted = _trusted(settings)
    private_path, public_path = key_files(settings)
    if settings.signing_key is not None:
        signer = Signer(parse_private_key(settings.signing_key.get_secret_value()), trusted)
    else:
        if not private_path.exists():
            try:
                _write_private(private_path, Ed25519PrivateKey.generate())
                log.warning("created the gateway's signing key %s", private_path)
            except FileExistsError:
                pass  # another process of this gateway created it first: use theirs
        mode = private_path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(
                f"{private_path} is readable by other users (mode {mode:o}); run chmod 600 on it"
            )
        signer = Signer(parse_private_key(private_path.read_text()), trusted)
    text = public_key_text(signer.public)
    if not public_path.exists() or public_path.read_text().strip() != text:
        public_path.parent.mkdir(parents=True, exist_ok=True)
        _write_public(public_path, signer.public)
    return signer


def load_verifier(settings: Settings) -> Verifier:
    """The gateway's public key(s), never its private key: what the worker and tools verify with.

    ``ConfigError`` when there is none (the gateway never started on this data dir and
    NOVA_SIGNING_PUBLIC_KEY is unset): a reader without the key cannot tell a forged decision
    from a real one, so it must not run.
    """
    keys = list(_trusted(settings))
    if settings.signing_public_key:
        keys.insert(0, parse_public_key(settings.signing_public_key))
    else:
        _, public_path = key_files(settings)
        if not public_path.exists():
            raise ConfigError(
                f"no signing public key: {public_path} does not exist and "
                "NOVA_SIGNING_PUBLIC_KEY is unset; start the gateway once (it creates the key "
                "pair) or set NOVA_SIGNING_PUBLIC_KEY to its public key"
            )
        keys.insert(0, parse_public_key(public_path.read_text()))
    return Verifier.of(keys)
