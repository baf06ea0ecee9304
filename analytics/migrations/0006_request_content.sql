-- Private content apart from metrics: a request's answer (result) and its error text (which
-- quotes words of the prompt when governance refuses it) move out of `requests` into their
-- own table, so analysts' SQL, which may read metric tables only, never reaches them
-- (analytics/statements.py refuses any reference to request_content). Prompts and context are
-- not stored in ClickHouse at all. The owning identity still reads its answers through the
-- request routes (analytics.queries.request_final). Same key and engine as `requests`, so a
-- record consumed twice is one row here too.
CREATE TABLE IF NOT EXISTS {db}.request_content
(
    request_id  String,
    identity_id LowCardinality(String),
    result      Nullable(String),
    error       Nullable(String),
    request_ts  DateTime64(3, 'UTC'),
    version     UInt64,
    INDEX idx_request_id request_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(request_ts)
ORDER BY (toStartOfDay(request_ts), request_id);

-- What earlier versions stored in `requests` stays readable, from here. Running this again
-- (a migration interrupted before it was recorded) copies the same rows with the same
-- versions, which ReplacingMergeTree collapses. The columns are dropped by 0007, a migration
-- of its own, so this copy can always run again.
INSERT INTO {db}.request_content (request_id, identity_id, result, error, request_ts, version)
SELECT request_id, identity_id, result, error, request_ts, version
FROM {db}.requests FINAL
WHERE result IS NOT NULL OR error IS NOT NULL
