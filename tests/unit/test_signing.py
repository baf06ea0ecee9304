"""The gateway's signature: what it covers, where its keys live, who never gets the private key."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nova.errors import ConfigError, SignatureError
from nova.records import CheckpointDecisionRecord, EntityEvent
from nova.settings import Settings
from nova.signing import (
    Signer,
    key_files,
    load_signer,
    load_verifier,
    parse_private_key,
    public_key_text,
)


def decision(**changes: object) -> CheckpointDecisionRecord:
    base = CheckpointDecisionRecord(checkpoint_id="cp_1", request_id="r-1", identity_id="alice",
                                    decision="approve", actor="u-bob", decided_at=1)
    return base.model_copy(update=changes)


def entity(**changes: object) -> EntityEvent:
    base = EntityEvent(entity_type="rule", entity_id="r1", owner_identity="alice", version=1,
                       ts=1, body='{"rule_id":"r1"}')
    return base.model_copy(update=changes)


@pytest.fixture
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


def test_a_signed_decision_verifies_and_every_covered_field_breaks_it(signer: Signer) -> None:
    signed = signer.sign_decision(decision())
    assert signed.key_id == signer.key_id
    assert signed.key_id.startswith("ed25519:")
    signer.verifier.verify_decision(signed)
    for field, value in [("checkpoint_id", "cp_2"), ("request_id", "r-2"),
                         ("identity_id", "mallory"), ("decision", "reject"),
                         ("actor", "nobody"), ("reason", "x"), ("decided_at", 2)]:
        with pytest.raises(SignatureError, match="bad signature"):
            signer.verifier.verify_decision(signed.model_copy(update={field: value}))


def test_unsigned_foreign_and_cross_kind_signatures_are_refused(signer: Signer) -> None:
    with pytest.raises(SignatureError, match="unsigned"):
        signer.verifier.verify_decision(decision())
    other = Signer(Ed25519PrivateKey.generate())
    with pytest.raises(SignatureError, match="unknown key"):
        signer.verifier.verify_decision(other.sign_decision(decision()))
    forged_kid = other.sign_decision(decision()).model_copy(update={"key_id": signer.key_id})
    with pytest.raises(SignatureError, match="bad signature"):
        signer.verifier.verify_decision(forged_kid)
    # An entity signature never passes for a decision (distinct signing contexts).
    event = signer.sign_entity(entity())
    signer.verifier.verify_entity(event)
    crossed = decision().model_copy(update={"key_id": event.key_id, "signature": event.signature})
    with pytest.raises(SignatureError):
        signer.verifier.verify_decision(crossed)
    with pytest.raises(SignatureError, match="bad signature"):
        signer.verifier.verify_entity(event.model_copy(update={"deleted": True}))


def test_the_gateway_creates_its_key_pair_once_private_key_0600(tmp_path: Path) -> None:
    settings = Settings(environment="test", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="no signing public key"):
        load_verifier(settings)  # a worker before the gateway ever started: refuse
    first = load_signer(settings)
    private, public = key_files(settings)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_text().strip() == public_key_text(first.public)
    assert load_signer(settings).key_id == first.key_id, "the same key at the next start"
    verifier = load_verifier(settings)  # reads the public file only
    verifier.verify_decision(first.sign_decision(decision()))
    private.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by other users"):
        load_signer(settings)


def test_keys_from_settings_and_rotation(tmp_path: Path) -> None:
    old = Ed25519PrivateKey.generate()
    new = Ed25519PrivateKey.generate()
    seed = new.private_bytes_raw()

    settings = Settings(environment="test", data_dir=tmp_path,
                        signing_key=base64.b64encode(seed).decode(),
                        signing_trusted_keys=public_key_text(old.public_key()))
    gateway = load_signer(settings)
    assert gateway.key_id == Signer(new).key_id
    worker = Settings(environment="test", data_dir=tmp_path / "elsewhere",
                      signing_public_key=public_key_text(new.public_key()),
                      signing_trusted_keys=public_key_text(old.public_key()))
    verifier = load_verifier(worker)
    verifier.verify_decision(Signer(old).sign_decision(decision()))  # signed before rotation
    verifier.verify_decision(gateway.sign_decision(decision()))
    assert "signing_key" not in {k.lower().removeprefix("nova_") for k in settings.to_env()}
    assert parse_private_key(base64.b64encode(seed).decode()).private_bytes_raw() == seed
    with pytest.raises(ConfigError):
        load_verifier(worker.model_copy(update={"signing_public_key": "not a key"}))
