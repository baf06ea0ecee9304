-- Named views for analysts (`nova sql`, `nova report`). Each reads its base tables with FINAL,
-- so it is exact even when the sink consumed a record twice: duplicates never reach a sum.
-- Cost and provider views date a call by when it ran (ts); request views by submission
-- (request_ts). Filter with WHERE on day/hour: the predicate is pushed into the view.

-- Q: what did we spend per day, by identity, sphere, provider and model?
CREATE VIEW IF NOT EXISTS {db}.v_cost_daily AS
SELECT
    toDate(ts)              AS day,
    identity_id,
    sphere_id,
    provider,
    model,
    count()                 AS calls,
    countIf(status != 'ok') AS errors,
    uniqExact(request_id)   AS requests,
    sum(tokens_in)          AS tokens_in,
    sum(tokens_out)         AS tokens_out,
    sum(cost_usd)           AS cost_usd
FROM {db}.llm_calls FINAL
GROUP BY day, identity_id, sphere_id, provider, model;

-- Q: who spent the most between two instants? (parameterised:
--    SELECT * FROM v_top_spenders(since='2025-01-01 00:00:00', until='2025-01-08 00:00:00'))
CREATE VIEW IF NOT EXISTS {db}.v_top_spenders AS
SELECT
    identity_id,
    anyLast(sphere_id)    AS sphere_id,
    sum(cost_usd)         AS cost_usd,
    count()               AS calls,
    uniqExact(request_id) AS requests,
    sum(tokens_in)        AS tokens_in,
    sum(tokens_out)       AS tokens_out
FROM {db}.llm_calls FINAL
WHERE ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')}
GROUP BY identity_id
ORDER BY cost_usd DESC, identity_id;

-- Q: what does a request cost, by task type (all LLM attempts of the request, failed ones too)?
CREATE VIEW IF NOT EXISTS {db}.v_cost_per_request_by_task AS
SELECT
    toDate(r.request_ts)           AS day,
    ifNull(r.task_type, 'unknown') AS task_type,
    count()                        AS requests,
    countIf(r.status = 'completed') AS completed,
    sum(c.cost)                    AS cost_usd,
    avg(c.cost)                    AS avg_cost_per_request_usd,
    max(c.cost)                    AS max_cost_per_request_usd
FROM {db}.requests AS r FINAL
LEFT JOIN
(
    SELECT request_id, sum(cost_usd) AS cost FROM {db}.llm_calls FINAL GROUP BY request_id
) AS c ON c.request_id = r.request_id
GROUP BY day, task_type;

-- Q: how long does each lane take, hour by hour (exact p50/p95/p99 in milliseconds)?
CREATE VIEW IF NOT EXISTS {db}.v_lane_latency_hourly AS
SELECT
    hour, lane, events, errors,
    q[1] AS p50_ms, q[2] AS p95_ms, q[3] AS p99_ms
FROM
(
    SELECT
        toStartOfHour(toDateTime(started_at, 'UTC')) AS hour,
        lane,
        count()                                       AS events,
        countIf(status = 'error')                     AS errors,
        quantilesExact(0.5, 0.95, 0.99)(duration_ms)  AS q
    FROM {db}.lane_events FINAL
    GROUP BY hour, lane
);

-- Q: how fast does each provider/model answer, hour by hour (successful calls only)?
CREATE VIEW IF NOT EXISTS {db}.v_provider_latency_hourly AS
SELECT
    hour, provider, model, calls, ok_calls,
    q[1] AS p50_ms, q[2] AS p95_ms, q[3] AS p99_ms
FROM
(
    SELECT
        toStartOfHour(toDateTime(ts, 'UTC'))                              AS hour,
        provider,
        model,
        count()                                                           AS calls,
        countIf(status = 'ok')                                            AS ok_calls,
        quantilesExactIf(0.5, 0.95, 0.99)(latency_ms, status = 'ok')      AS q
    FROM {db}.llm_calls FINAL
    GROUP BY hour, provider, model
);

-- Q: how often does a provider fail, and how often do we fall back away from it?
-- error_rate = failed calls / calls; fallback_rate = calls that fell back *from* this provider
-- to another / calls of this provider; served_as_fallback = calls it took over from another.
CREATE VIEW IF NOT EXISTS {db}.v_provider_health_daily AS
SELECT
    day,
    provider,
    sum(calls)                          AS calls,
    sum(errors)                         AS errors,
    sum(fallbacks_away)                 AS fallbacks_away,
    sum(served)                         AS served_as_fallback,
    if(calls > 0, errors / calls, 0)    AS error_rate,
    if(calls > 0, fallbacks_away / calls, 0) AS fallback_rate
FROM
(
    SELECT toDate(ts) AS day, toString(provider) AS provider, count() AS calls,
           countIf(status != 'ok') AS errors, toUInt64(0) AS fallbacks_away,
           countIf(fallback_from IS NOT NULL) AS served
    FROM {db}.llm_calls FINAL
    GROUP BY day, provider
    UNION ALL
    SELECT toDate(ts) AS day, toString(assumeNotNull(fallback_from)) AS provider, toUInt64(0),
           toUInt64(0), count(), toUInt64(0)
    FROM {db}.llm_calls FINAL
    WHERE fallback_from IS NOT NULL
    GROUP BY day, provider
)
GROUP BY day, provider;

-- Q: how many held requests are approved, rejected or left to expire, and how long do
-- people take to decide? (time_to_decision over decided checkpoints only)
CREATE VIEW IF NOT EXISTS {db}.v_checkpoint_decisions_daily AS
SELECT
    day, reason, checkpoints, approved, rejected, expired, pending,
    if(approved + rejected + expired > 0, approved / (approved + rejected + expired), NULL)
        AS approval_rate,
    q[1] AS median_decision_s, q[2] AS p95_decision_s
FROM
(
    SELECT
        toDate(ifNull(created_at, decided_at)) AS day,
        ifNull(reason, 'unknown')              AS reason,
        count()                                AS checkpoints,
        countIf(status = 'approved')           AS approved,
        countIf(status = 'rejected')           AS rejected,
        countIf(status = 'expired')            AS expired,
        countIf(status = 'pending')            AS pending,
        quantilesExactIf(0.5, 0.95)(
            dateDiff('millisecond', assumeNotNull(created_at), assumeNotNull(decided_at)) / 1000,
            created_at IS NOT NULL AND decided_at IS NOT NULL
        )                                      AS q
    FROM {db}.checkpoints FINAL
    GROUP BY day, reason
);

-- Q: which governance rules deny requests, and for how many identities?
CREATE VIEW IF NOT EXISTS {db}.v_governance_denials_daily AS
SELECT
    toDate(request_ts)    AS day,
    rule,
    count()               AS denials,
    uniqExact(identity_id) AS identities
FROM {db}.requests FINAL
ARRAY JOIN if(empty(fired_rules), ['(no rule recorded)'], fired_rules) AS rule
WHERE governance = 'deny' OR status = 'denied'
GROUP BY day, rule;
