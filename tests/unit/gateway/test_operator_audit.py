"""An operator's change to another identity's objects is audited first, or not made at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.boundary import EVERY_IDENTITY, OPERATOR_ACTION, BoundaryGuard
from nova.auth.tokens import Principal
from nova.errors import AuditUnavailableError, ForbiddenError
from nova.records import AuditFact, Event, Record


def principal(*roles: str, identity: str = "ops") -> Principal:
    return Principal(sub="olivia", identity=identity, roles=frozenset(roles),
                     expires_at=datetime.now(UTC))


class Producer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, Record]] = []
        self.fail = fail

    async def send(self, topic: str, key: str, record: Record) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((topic, key, record))


def guard(producer: Producer) -> BoundaryGuard:
    return BoundaryGuard(None, None, producer)  # type: ignore[arg-type]


async def test_the_fact_names_the_operator_and_the_target_identity() -> None:
    producer = Producer()
    change: dict[str, Any] = {"after": {"hard_usd": 0.0}}
    assert await guard(producer).operator_act(principal("operator"), "budget", "b-1", "alice",
                                              operation="replace", change=change)
    (_, _, event), (_, _, fact) = producer.sent
    assert isinstance(event, Event)
    assert isinstance(fact, AuditFact)
    assert event.alert is not None
    assert (event.identity_id, event.alert.alert_type, event.alert.subject) == (
        "alice", OPERATOR_ACTION, "budget:b-1")
    assert (fact.identity_id, fact.kind, fact.actor) == ("alice", OPERATOR_ACTION, "olivia")
    assert json.loads(fact.detail) == {
        "resource_kind": "budget", "resource_id": "b-1", "owner_identity": "alice",
        "operation": "replace", "operator_identity": "ops", "change": change}


async def test_a_platform_wide_change_is_filed_under_the_operators_identity() -> None:
    producer = Producer()
    await guard(producer).operator_act(principal("operator"), "budget", "b-2", EVERY_IDENTITY,
                                       operation="create")
    (_, _, event), (_, _, fact) = producer.sent
    assert isinstance(event, Event)
    assert isinstance(fact, AuditFact)
    assert (event.identity_id, fact.identity_id) == ("ops", "ops")
    assert json.loads(fact.detail)["owner_identity"] == EVERY_IDENTITY


async def test_the_operators_own_objects_leave_no_fact() -> None:
    producer = Producer()
    assert not await guard(producer).operator_act(principal("operator"), "budget", "b-3", "ops",
                                                  operation="delete")
    assert producer.sent == []


async def test_no_fact_means_no_change_and_a_retriable_error() -> None:
    with pytest.raises(AuditUnavailableError) as raised:
        await guard(Producer(fail=True)).operator_act(principal("operator"), "budget", "b-4",
                                                      "alice", operation="delete")
    assert raised.value.retriable  # a 503 problem, never a 500


@pytest.mark.parametrize("roles", [("admin",), ("member", "approver", "admin", "analyst")])
async def test_no_other_role_acts_as_an_operator(roles: tuple[str, ...]) -> None:
    producer = Producer()
    with pytest.raises(ForbiddenError):
        await guard(producer).operator_act(principal(*roles), "budget", "b-5", "alice",
                                           operation="delete")
    assert producer.sent == []
