-- Checkpoints, audit records, and the identity's sphere on every cost-bearing table.
--
-- sphere_id: the identity's sphere is not on events yet; the mappers fill it when a record
-- carries it, so it is NULL until then and group-bys keep working.
ALTER TABLE {db}.requests ADD COLUMN IF NOT EXISTS sphere_id LowCardinality(Nullable(String)) AFTER identity_id;
ALTER TABLE {db}.lane_events ADD COLUMN IF NOT EXISTS sphere_id LowCardinality(Nullable(String)) AFTER identity_id;
ALTER TABLE {db}.llm_calls ADD COLUMN IF NOT EXISTS sphere_id LowCardinality(Nullable(String)) AFTER identity_id;

-- One row per checkpoint, assembled from two topics: the held request on `pending` brings
-- reason, created_at and expires_at; the decision on `decisions` brings decided_by,
-- decided_at, decision_reason and the outcome. Neither row knows the other's columns and the
-- two topics arrive in any order (live or replay), so this is an AggregatingMergeTree whose
-- columns keep the last non-NULL value (anyLast skips NULLs): the merged row is the same
-- whatever the order, and a row consumed twice changes nothing. `status` is derived:
-- 'pending' until a decision arrived. Read with FINAL. Not partitioned: the table is small, and
-- both halves of a checkpoint must always be able to meet in one merge.
CREATE TABLE IF NOT EXISTS {db}.checkpoints
(
    checkpoint_id   String,
    identity_id     LowCardinality(String),
    request_id      SimpleAggregateFunction(anyLast, String),
    sphere_id       SimpleAggregateFunction(anyLast, Nullable(String)),
    reason          SimpleAggregateFunction(anyLast, Nullable(String)),
    decided_status  SimpleAggregateFunction(anyLast, Nullable(String)),
    created_at      SimpleAggregateFunction(anyLast, Nullable(DateTime64(3, 'UTC'))),
    expires_at      SimpleAggregateFunction(anyLast, Nullable(DateTime64(3, 'UTC'))),
    decided_by      SimpleAggregateFunction(anyLast, Nullable(String)),
    decided_at      SimpleAggregateFunction(anyLast, Nullable(DateTime64(3, 'UTC'))),
    decision_reason SimpleAggregateFunction(anyLast, Nullable(String)),
    request_ts      SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    status          String ALIAS ifNull(decided_status, 'pending')
)
ENGINE = AggregatingMergeTree
ORDER BY (identity_id, checkpoint_id);

-- Every audit record with its Kafka position (partition, offset), so a chain can be checked
-- from ClickHouse too. Row identity is audit_id; kind and day lead the key because audit
-- questions are "all GOVERNANCE records last week". request_id has a bloom filter for trails.
CREATE TABLE IF NOT EXISTS {db}.audit_events
(
    audit_id    String,
    kind        LowCardinality(String),
    request_id  Nullable(String),
    identity_id LowCardinality(String),
    sphere_id   LowCardinality(Nullable(String)),
    actor       Nullable(String),
    ts          DateTime64(3, 'UTC'),
    detail      String,
    prev_hash   String,
    hash        String,
    `partition` UInt32,
    `offset`    UInt64,
    version     UInt64,
    INDEX idx_request_id request_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (kind, toDate(ts), audit_id);
