-- Rollups for dashboards over long horizons: small tables that refreshable materialized
-- views recompute from the exact views above every 5 minutes.
--
-- Why refreshable and not incremental (insert-triggered) MVs: an insert-triggered MV sees
-- each inserted block, before ReplacingMergeTree has removed duplicates, so a record the
-- sink consumed twice would be summed twice for ever. A refresh recomputes from FINAL and
-- atomically replaces the rollup, so a rollup is exact as of its last refresh (at most
-- 5 minutes old). `nova report` and the v_* views never read rollups. `SYSTEM REFRESH VIEW`
-- forces one (replay does, once it has landed everything).

CREATE TABLE IF NOT EXISTS {db}.rollup_cost_daily
(
    day         Date,
    identity_id LowCardinality(String),
    sphere_id   LowCardinality(Nullable(String)),
    provider    LowCardinality(String),
    model       LowCardinality(String),
    calls       UInt64,
    errors      UInt64,
    requests    UInt64,
    tokens_in   UInt64,
    tokens_out  UInt64,
    cost_usd    Float64
)
ENGINE = MergeTree
ORDER BY (day, provider, model, identity_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_cost_daily
REFRESH EVERY 5 MINUTE TO {db}.rollup_cost_daily AS
SELECT day, identity_id, sphere_id, provider, model, calls, errors, requests, tokens_in,
       tokens_out, cost_usd
FROM {db}.v_cost_daily;

-- Latency per hour for lanes (kind 'lane', subject A..G) and providers (kind 'provider',
-- subject = provider, successful calls only), as t-digest states: merge any range of hours
-- with quantilesTDigestMerge(0.5, 0.95, 0.99)(q).
CREATE TABLE IF NOT EXISTS {db}.rollup_latency_hourly
(
    hour    DateTime('UTC'),
    kind    LowCardinality(String),
    subject LowCardinality(String),
    events  SimpleAggregateFunction(sum, UInt64),
    errors  SimpleAggregateFunction(sum, UInt64),
    q       AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
ORDER BY (kind, subject, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_latency_hourly
REFRESH EVERY 5 MINUTE TO {db}.rollup_latency_hourly AS
SELECT
    toStartOfHour(toDateTime(started_at, 'UTC'))          AS hour,
    'lane'                                                AS kind,
    toString(lane)                                        AS subject,
    count()                                               AS events,
    countIf(status = 'error')                             AS errors,
    quantilesTDigestState(0.5, 0.95, 0.99)(duration_ms)   AS q
FROM {db}.lane_events FINAL
GROUP BY hour, subject
UNION ALL
SELECT
    toStartOfHour(toDateTime(ts, 'UTC'))                  AS hour,
    'provider'                                            AS kind,
    toString(provider)                                    AS subject,
    count()                                               AS events,
    countIf(status != 'ok')                               AS errors,
    quantilesTDigestStateIf(0.5, 0.95, 0.99)(latency_ms, status = 'ok') AS q
FROM {db}.llm_calls FINAL
GROUP BY hour, subject;
