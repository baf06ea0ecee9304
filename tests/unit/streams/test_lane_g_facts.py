"""Lane G chains a request's governance decision from the record itself (lane D writes no
fact of its own), except for a request lane E held: lane E chained it at the hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from nova.records import AuditFact, CheckpointState, GovernanceDecision, PipelineRecord
from streams.lanes.lane_g_audit import AuditLane


@dataclass
class Chain:
    appended: list[tuple[int, AuditFact]] = field(default_factory=list)

    async def append(self, partition: int, fact: AuditFact) -> None:
        self.appended.append((partition, fact))


def ctx(chain: Chain) -> Any:
    return SimpleNamespace(state=SimpleNamespace(audit_chain=chain, current_partition=lambda: 3))


def record(**fields: Any) -> PipelineRecord:
    return PipelineRecord(**{"request_id": "r-1", "identity_id": "i-1", "user_id": "u-1",
                             "submitted_at": 1, "prompt": "hi", "status": "in_flight", **fields})


GOV = GovernanceDecision(outcome="allow", fired_rules=("r1",), reasons=("fine",))


async def test_an_allowed_request_chains_its_governance_then_its_outcome() -> None:
    chain = Chain()
    out = await AuditLane().process(record(governance=GOV), ctx(chain))
    assert out.record.status == "completed"
    assert [(p, f.kind, f.fact_id) for p, f in chain.appended] == [
        (3, "GOVERNANCE", "r-1/GOVERNANCE"), (3, "OUTCOME", "r-1/OUTCOME")]
    assert '"fired_rules":["r1"]' in chain.appended[0][1].detail


async def test_a_request_that_was_held_chains_only_its_outcome() -> None:
    chain = Chain()
    cp = CheckpointState(checkpoint_id="c", reason="PAYMENT", status="approved", created_at=1,
                         expires_at=2)
    gov = GOV.model_copy(update={"outcome": "require_approval"})
    await AuditLane().process(record(governance=gov, checkpoint=cp), ctx(chain))
    assert [f.kind for _, f in chain.appended] == ["OUTCOME"]


async def test_a_request_that_failed_before_governance_chains_only_its_outcome() -> None:
    chain = Chain()
    await AuditLane().process(record(status="failed", error="lane B: boom"), ctx(chain))
    assert [f.kind for _, f in chain.appended] == ["OUTCOME"]
