-- Lane events, LLM calls, alerts and the final state of each request.
-- Every table is a ReplacingMergeTree whose ORDER BY is the row's identity, so a record
-- consumed twice (sink restarted, worker re-processing after a crash) collapses to one row:
-- read with FINAL (the views in later migrations do). request_ts is the request's submission
-- time (from its UUIDv7 id): all rows of one request share a partition, so FINAL can merge them.
CREATE TABLE IF NOT EXISTS {db}.lane_events
(
    request_id  String,
    identity_id LowCardinality(String),
    lane        LowCardinality(String),
    status      LowCardinality(String),
    started_at  DateTime64(3, 'UTC'),
    duration_ms Float64,
    worker      LowCardinality(String),
    error       Nullable(String),
    request_ts  DateTime64(3, 'UTC'),
    ts          DateTime64(3, 'UTC'),
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(request_ts)
ORDER BY (toStartOfDay(request_ts), lane, request_id);

CREATE TABLE IF NOT EXISTS {db}.llm_calls
(
    request_id    String,
    identity_id   LowCardinality(String),
    provider      LowCardinality(String),
    model         LowCardinality(String),
    role          LowCardinality(Nullable(String)),
    task_type     LowCardinality(Nullable(String)),
    tokens_in     UInt32,
    tokens_out    UInt32,
    cost_usd      Float64,
    latency_ms    Float64,
    attempt       UInt16,
    fallback_from LowCardinality(Nullable(String)),
    status        LowCardinality(String),
    error         Nullable(String),
    request_ts    DateTime64(3, 'UTC'),
    ts            DateTime64(3, 'UTC'),
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(request_ts)
ORDER BY (toStartOfDay(request_ts), provider, model, request_id, attempt)
SETTINGS allow_nullable_key = 1;

CREATE TABLE IF NOT EXISTS {db}.alerts
(
    event_id    String,
    request_id  String,
    identity_id LowCardinality(String),
    alert_type  LowCardinality(String),
    subject     String,
    message     String,
    severity    LowCardinality(String),
    ts          DateTime64(3, 'UTC'),
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (alert_type, event_id);

CREATE TABLE IF NOT EXISTS {db}.requests
(
    request_id    String,
    identity_id   LowCardinality(String),
    user_id       String,
    status        LowCardinality(String),
    task_type     LowCardinality(Nullable(String)),
    action        LowCardinality(Nullable(String)),
    role          LowCardinality(Nullable(String)),
    governance    LowCardinality(Nullable(String)),
    fired_rules   Array(String),
    checkpoint    LowCardinality(Nullable(String)),
    provider      LowCardinality(Nullable(String)),
    model         LowCardinality(Nullable(String)),
    cost_usd      Float64,
    tokens_in     UInt32,
    tokens_out    UInt32,
    attempts      UInt16,
    latency_ms    Float64,
    error         Nullable(String),
    result        Nullable(String),
    request_ts    DateTime64(3, 'UTC'),
    completed_at  DateTime64(3, 'UTC'),
    version       UInt64,
    INDEX idx_request_id request_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(request_ts)
ORDER BY (toStartOfDay(request_ts), request_id);
