"""Lane D's optional second opinion, end to end on the real broker and the fake providers.

What must hold: off by default, no classifier is ever called; on, a classifier that reads an
order in a prompt the rules took for a question adds a checkpoint, with the reason naming the
model; a classifier can never remove one; one that answers nonsense or too late changes
nothing; it sees the masked prompt, never an IBAN; its call is an LLM event of role
``classifier`` that does not collide with lane F's call.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nova.kafka.launcher import free_port
from tests.integration.conftest import (
    FakeLlm,
    Gateway,
    WorkerProcess,
    eventually,
    provisioned,
    serve_gateway,
)

pytestmark = pytest.mark.integration

ALICE = "identity-alice-opinion"
CLASSIFIER = "openai"  # the classifier role's route: openai/gpt-5-mini
# The time bound leaves room for a loaded machine: a classifier answer that misses it is
# ignored (by design), which would turn the holding test into a false failure.
ON = {"NOVA_INTENT_SECOND_OPINION": "true", "NOVA_INTENT_SECOND_OPINION_TIMEOUT_S": "10"}


async def post(gw: Gateway, prompt: str) -> Any:
    return await gw.http.post(
        "/api/v2/nova/requests", headers=gw.auth(ALICE, "member"),
        json={"prompt": prompt, "wait_ms": 30_000},
    )


@pytest.fixture(scope="module")
async def opinion(
    broker: Any, clickhouse: Any, fake_llm: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    """One gateway and one worker with the second opinion on, shared by this module's tests
    (each sets the fake classifier's answer it needs; the controls are reset between tests)."""
    tag = uuid.uuid4().hex[:10]
    settings = provisioned(broker.settings(
        environment="test", data_dir=tmp_path_factory.mktemp("opinion") / "data",
        topic_prefix=f"t{tag}", topic_partitions=4, clickhouse_database=f"t_{tag}",
        gateway_port=free_port(), sink_flush_interval_s=0.2, log_level="warning",
        llm_fake_url=fake_llm.url,
    ))
    async with serve_gateway(settings, clickhouse.with_database(f"t_{tag}")) as gw:
        worker = WorkerProcess(settings, dict(ON)).start()
        try:
            yield gw
        finally:
            worker.stop()


def classifier_calls(llm_fake: FakeLlm, request_id: str) -> list[dict[str, Any]]:
    return llm_fake.calls(f"{request_id}:classifier")


async def test_off_by_default_no_classifier_is_called(
    gateway: Gateway, worker_factory: Any, llm_fake: FakeLlm
) -> None:
    worker_factory()
    llm_fake.control(CLASSIFIER, reply="PAYMENT")
    r = await post(gateway, "Summarise the notes of our Monday meeting")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
    assert classifier_calls(llm_fake, r.json()["request_id"]) == []


async def test_a_classifier_reading_an_order_holds_a_request_the_rules_let_through(
    opinion: Gateway, llm_fake: FakeLlm, fake_llm: Any
) -> None:
    gateway = opinion
    llm_fake.control(CLASSIFIER, reply="PAYMENT")
    iban = "FR76 3000 6000 0112 3456 7890 189"
    r = await post(gateway, f"Summarise the notes of our Monday meeting about {iban}")
    assert r.status_code == 423, r.text
    request_id = r.json()["request_id"]
    assert "raised READ to PAYMENT" in r.json()["reason"]
    assert "openai/gpt-5-mini" in r.json()["reason"]
    assert [c["status"] for c in classifier_calls(llm_fake, request_id)] == [200]
    sent = [s for b in fake_llm.state.bodies_for(f"{request_id}:classifier") for s in b.strings()]
    assert any("[IBAN_1]" in s for s in sent), "the classifier reads the masked prompt"
    assert not any("3000 6000" in s for s in sent)
    assert llm_fake.calls(request_id) == [], "held: lane F called nobody"


async def test_a_classifier_never_lowers_a_checkpoint(opinion: Gateway, llm_fake: FakeLlm) -> None:
    gateway = opinion
    llm_fake.control(CLASSIFIER, reply="READ")
    r = await post(gateway, "Delete every file in the shared drive")
    assert r.status_code == 423, r.text
    assert "CHECKPOINT_ACTION: DELETE" in r.json()["reason"]
    assert "READ, not riskier; kept" in r.json()["reason"]


@pytest.mark.parametrize(
    ("control", "why"),
    [
        ({"reply": "It could be READ or SEND, hard to say."}, "unreadable answer, ignored"),
        ({"latency_ms": 12_000}, "no answer within 10 s, ignored"),
    ],
)
async def test_a_classifier_that_answers_nonsense_or_late_changes_nothing(
    opinion: Gateway, llm_fake: FakeLlm, control: dict[str, Any], why: str
) -> None:
    gateway = opinion
    llm_fake.control(CLASSIFIER, **control)
    r = await post(gateway, "Summarise the notes of our Monday meeting")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed"
    assert any(why in reason for reason in body["governance"]["reasons"]), body
    assert [c["status"] for c in llm_fake.calls(body["request_id"])] == [200]


async def test_the_classifier_call_lands_in_analytics_beside_lane_fs_call(
    opinion: Gateway, llm_fake: FakeLlm
) -> None:
    gateway = opinion
    llm_fake.control(CLASSIFIER, reply="READ")
    r = await post(gateway, "Summarise the notes of our Monday meeting")
    assert r.status_code == 200, r.text
    request_id = r.json()["request_id"]

    table = f"{gateway.settings.clickhouse_database}.llm_calls"

    async def rows() -> list[tuple[Any, ...]] | None:
        _, found = gateway.clickhouse.query(
            f"SELECT role, attempt, status FROM {table} FINAL WHERE request_id = {{rid:String}} "  # noqa: S608 - the test names its own database
            "ORDER BY attempt", parameters={"rid": request_id})
        return found if len(found) == 2 else None

    landed = await eventually(rows, 60, message="two LLM calls of the request in ClickHouse")
    assert landed[0][1] == 1
    assert landed[0][0] != "classifier"
    assert landed[1] == ("classifier", 101, "ok")
