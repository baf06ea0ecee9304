"""One module per lane. ``LANES`` lists them in pipeline order."""

from __future__ import annotations

from streams.lanes.lane_a_intent import IntentLane
from streams.lanes.lane_b_context import ContextLane
from streams.lanes.lane_c_encoding import EncodingLane
from streams.lanes.lane_d_governance import GovernanceLane
from streams.lanes.lane_e_checkpoint import CheckpointLane
from streams.lanes.lane_f_execution import ExecutionLane
from streams.lanes.lane_g_audit import AuditLane

__all__ = [
    "AuditLane",
    "CheckpointLane",
    "ContextLane",
    "EncodingLane",
    "ExecutionLane",
    "GovernanceLane",
    "IntentLane",
]
