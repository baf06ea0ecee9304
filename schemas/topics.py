"""Every Kafka topic Nova uses, declared once: name, key, partitions, retention, value schema.

Keying scheme: every pipeline topic (requests → … → completed, pending, decisions, expiries,
events, audit) is keyed by ``request_id`` (audit records of non-request facts by identity id). Why:
all records of one request land in the same partition number of every topic (the topics share
a partition count), so a request's records stay ordered lane after lane, lane E can join a
decision with its held request partition-locally, and load spreads evenly over partitions
whatever the mix of identities. Per-identity state (rate limits, budgets) is not
partition-local under this scheme; it is shared through topics read whole (``admissions`` for
the gateways' rate limit, ``events`` for budgets).

Retention: hand-off topics between lanes are transient (7 days); requests, completed,
decisions, events and audit are kept forever (-1) because replay rebuilds analytics from them
and auditors walk them from the start; entity topics are compacted (latest state per id).
Sessions are compacted *and* deleted after 30 days: a session lives at most 29
(``NOVA_REFRESH_TTL_S``), so each of its records outlives it, and the topic never grows with
every token exchange ever made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

WEEK_MS = 7 * 24 * 3600 * 1000
HOUR_MS = 3600 * 1000
SESSIONS_RETENTION_MS = 30 * 24 * 3600 * 1000
FOREVER = -1


@dataclass(frozen=True)
class TopicSpec:
    """One topic's contract. ``name`` is logical; settings add the deployment prefix."""

    name: str
    value_schema: str
    key: str
    cleanup: Literal["delete", "compact", "compact,delete"] = "delete"
    retention_ms: int = WEEK_MS
    doc: str = ""

    def config(self) -> dict[str, str]:
        """Broker-side topic configuration."""
        cfg: dict[str, str] = {"cleanup.policy": self.cleanup}
        if "delete" in self.cleanup:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


# Lane hand-offs, in order. LANE_TOPICS[i] is lane i's input.
LANE_FLOW: tuple[tuple[str, str, str], ...] = (
    # (lane, input topic, output topic)
    ("A", "requests", "intents"),
    ("B", "intents", "contexts"),
    ("C", "contexts", "encoded"),
    ("D", "encoded", "governed"),
    ("E", "governed", "executable"),
    ("F", "executable", "executed"),
    ("G", "executed", "completed"),
)

LANE_NAMES = {
    "A": "intent",
    "B": "context",
    "C": "encoding",
    "D": "governance",
    "E": "checkpoint",
    "F": "execution",
    "G": "audit",
}

_SPECS = [
    TopicSpec(
        "requests",
        "pipeline_record",
        "request_id",
        retention_ms=FOREVER,
        doc="Requests accepted by the gateway (lane A input).",
    ),
    TopicSpec("intents", "pipeline_record", "request_id", doc="Lane A → B."),
    TopicSpec("contexts", "pipeline_record", "request_id", doc="Lane B → C."),
    TopicSpec("encoded", "pipeline_record", "request_id", doc="Lane C → D."),
    TopicSpec("governed", "pipeline_record", "request_id", doc="Lane D → E."),
    TopicSpec(
        "executable",
        "pipeline_record",
        "request_id",
        doc="Lane E → F: allowed or approved requests, and finished ones passing through.",
    ),
    TopicSpec("executed", "pipeline_record", "request_id", doc="Lane F → G."),
    TopicSpec(
        "completed",
        "pipeline_record",
        "request_id",
        retention_ms=FOREVER,
        doc="Lane G output: the final state of every request.",
    ),
    TopicSpec(
        "pending",
        "pipeline_record",
        "request_id",
        retention_ms=FOREVER,
        doc="Requests held at a checkpoint, waiting for a decision.",
    ),
    TopicSpec(
        "decisions",
        "decision",
        "request_id",
        retention_ms=FOREVER,
        doc="Checkpoint decisions (approve, reject), signed by the gateway, its only writer.",
    ),
    TopicSpec(
        "expiries",
        "decision",
        "request_id",
        retention_ms=FOREVER,
        doc="Lane E's expiry of overdue checkpoints (decision expire, unsigned: the worker holds "
        "no signing key, and lane E re-checks the clock before applying one).",
    ),
    TopicSpec(
        "events",
        "event",
        "request_id",
        retention_ms=FOREVER,
        doc="Every lane event and LLM event; the analytics source of truth.",
    ),
    TopicSpec(
        "facts",
        "audit_fact",
        "request_id (identity id when no request)",
        retention_ms=FOREVER,
        doc="Facts to audit, from the gateway and lanes D/E, for lane G to chain.",
    ),
    TopicSpec(
        "audit",
        "audit_record",
        "request_id",
        retention_ms=FOREVER,
        doc="Hash-chained audit records; never deleted.",
    ),
    TopicSpec(
        "deadletter",
        "dead_letter",
        "source topic/partition/offset",
        retention_ms=FOREVER,
        doc="Records a lane could not decode or process, with the reason and original bytes.",
    ),
    TopicSpec(
        "deliveries",
        "delivery",
        "delivery_id",
        doc="Alert deliveries to webhooks (delivered or dead-lettered), the alert dispatcher's "
        "memory across restarts; a week is kept, far longer than it ever re-reads.",
    ),
    TopicSpec(
        "agent-writes",
        "agent_write",
        "request_id",
        retention_ms=FOREVER,
        doc="Agents' WRITE tool calls (a thread message, a meeting note), allowed on the worker, "
        "for the gateway's applier to check again, sign and write to entities.",
    ),
    TopicSpec(
        "admissions",
        "admission",
        "gateway",
        retention_ms=HOUR_MS,
        doc="What each gateway admitted per identity, a few times a second, so every gateway's "
        "per-identity rate limit counts every gateway's requests.",
    ),
    TopicSpec(
        "entities",
        "entity",
        "entity_type:entity_id",
        cleanup="compact",
        doc="Identities, API keys, threads, dataspaces, rules and budgets (event-sourced).",
    ),
    TopicSpec(
        "sessions",
        "entity",
        "session:session_id",
        cleanup="compact,delete",
        retention_ms=SESSIONS_RETENTION_MS,
        doc="Sessions opened by token exchanges: their refresh token's hash and revocation, "
        "signed like entities; every gateway refuses a revoked session's tokens.",
    ),
]

TOPICS: dict[str, TopicSpec] = {s.name: s for s in _SPECS}

# Faust tables of the worker (lane E's held requests, lane F's idempotency records). Their
# changelog topics are Faust's own format (not part of the Avro contract) but are created with
# the others, compacted, before any worker starts: a worker whose first table write races the
# topic's creation fails with PartitionsMismatch.
WORKER_TABLES = ("held", "llm_results")


def worker_app_id(prefix: str) -> str:
    return f"{prefix}-worker"


def audit_writer_prefix(prefix: str) -> str:
    """What every audit writer's Kafka ``transactional.id`` starts with (its ACL is a prefix)."""
    return f"{worker_app_id(prefix)}-audit-"


def audit_writer_id(prefix: str, partition: int) -> str:
    """The ``transactional.id`` of audit partition ``partition``'s writer: one per partition,
    whichever worker holds it, so taking the partition fences its previous holder
    (``streams.audit_writer``)."""
    return f"{audit_writer_prefix(prefix)}{partition}"


def entity_guard_group(prefix: str) -> str:
    """The consumer group of the worker's entity guard (``streams.entity_guard``)."""
    return f"{worker_app_id(prefix)}-entity-guard"


def agent_writes_group(prefix: str) -> str:
    """The consumer group of the gateways' agent-write appliers (``gateway.agent_writes``):
    one applier per partition, whichever gateway holds it."""
    return f"{prefix}-agent-writes"


def changelog_topics(prefix: str) -> list[str]:
    return [f"{worker_app_id(prefix)}-{table}-changelog" for table in WORKER_TABLES]


def changelog_configs(checkpoint_ttl_s: int, keep_s: int) -> dict[str, str]:
    """The tables' changelog topics' configuration: compacted, and forgotten after twice the
    longer of a checkpoint's life and the worker's in-memory keep (``streams.retention``), so a
    pending hold outlives its TTL with margin while finished entries do not stay for ever."""
    retention_ms = 2 * max(checkpoint_ttl_s, keep_s) * 1000
    return {"cleanup.policy": "compact,delete", "retention.ms": str(retention_ms)}


def topic_spec(name: str) -> TopicSpec:
    return TOPICS[name]
