"""Entities written before signing existed: never trusted, the worker refuses them, an operator
adopts them with ``nova entities adopt`` (on the real broker).

The records are written exactly as a pre-signing gateway wrote them: entity schema v1 (no
``key_id``, no ``signature``), its fingerprint in the header.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest

from nova.auth.keys import create_api_key
from nova.entities.models import ApiKeyEntity, IdentityEntity, RuleEntity, to_event
from nova.entities.store import EntityStore
from nova.errors import StartupError
from nova.kafka.producer import RecordProducer
from nova.records import now_ms
from nova.settings import Settings
from nova.signing import load_signer, load_verifier
from schemas.codec import SCHEMA_HEADER, VERSIONS_DIR, schema_fingerprint
from streams.entities import WorkerEntities
from tests.integration.conftest import REPO, serve_gateway

pytestmark = pytest.mark.integration

ALICE = "identity-legacy"


def nova(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.to_env()}
    return subprocess.run([sys.executable, "-m", "nova", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def write_v1(settings: Settings, entities: list[Any]) -> None:
    """Produce ``entities`` as the pre-signing writer did: schema v1, unsigned."""
    v1 = fastavro.parse_schema(json.loads((VERSIONS_DIR / "entity.v1.avsc").read_text()))
    header = (SCHEMA_HEADER, schema_fingerprint(v1).encode())
    producer = RecordProducer(settings)
    await producer.start()
    try:
        for entity in entities:
            event = to_event(entity, version=1, ts=now_ms())
            data = {k: v for k, v in event.to_avro().items() if k not in ("key_id", "signature")}
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, v1, data)
            await producer._producer.send_and_wait(
                settings.topic("entities"), buf.getvalue(), key=entity.key.encode(),
                headers=[header])
    finally:
        await producer.stop()


async def worker_view(settings: Settings) -> None:
    view = WorkerEntities(EntityStore(settings,
                                      verifier=load_verifier(settings)))
    await view.start("the worker", "the entity view")
    await view.stop()


async def test_pre_signing_entities_are_refused_until_an_operator_adopts_them(
    settings: Settings, clickhouse: Any,
) -> None:
    load_signer(settings)  # the upgraded gateway's key
    record, plaintext = create_api_key(ALICE, ["member"], datetime.now(UTC))
    ident = IdentityEntity(id=ALICE, user_id="user-legacy", display_name="Legacy",
                           sphere_id="personal", created_at=now_ms())
    deny = RuleEntity(rule_id="legacy-deny", identity_id=ALICE, effect="deny", priority=0,
                      text_patterns=("forbidden",))
    forged = ApiKeyEntity(key_id="forged-key", identity_id=ALICE, roles=("admin",),
                          hash="x" * 64, created_at=now_ms())
    await write_v1(settings, [ident, ApiKeyEntity.from_record(record), deny, forged])

    with pytest.raises(StartupError) as refused:
        await worker_view(settings)
    message = str(refused.value)
    assert "4 entity records are unsigned" in message
    assert "nova entities adopt" in message

    listed = nova(settings, "entities", "adopt")
    assert listed.returncode == 0, listed.stderr
    assert "rule:legacy-deny: would be adopted" in listed.stdout
    with pytest.raises(StartupError):
        await worker_view(settings)  # listing changed nothing

    adopted = nova(settings, "entities", "adopt", "--yes", "--reject", "api_key:forged-key")
    assert adopted.returncode == 0, adopted.stderr
    assert "api_key:forged-key: rejected" in adopted.stdout
    assert "4 unsigned entity records" in adopted.stdout
    await worker_view(settings)  # starts now

    ch = clickhouse.with_database(settings.clickhouse_database)
    async with serve_gateway(settings, ch) as gw:
        store = gw.services.entities
        assert store.identity(ALICE) == ident
        assert [r.rule_id for r in store.rules_for(ALICE)] == ["legacy-deny"]
        assert store.api_key("forged-key") is None, "the rejected key is signed as deleted"
        token = await gw.http.post("/api/v2/auth/token", json={"api_key": plaintext})
        assert token.status_code == 200, token.text
