-- The report's event vocabulary (PipelineEventType) as one view over what the sink records.
--
-- Nova writes no record per event type: a start event per lane would cost a Kafka record per
-- lane and request, which is what the lanes event of v2 removed. Every start time is carried
-- by the record of the thing that ended (a lane's started_at and duration, a call's ts and
-- latency, a checkpoint's created_at), so each event of the report is derived here instead,
-- with the instant it happened:
--
--   PIPELINE_START          the first lane's start
--   PIPELINE_COMPLETE       the request ended: completed, or a checkpoint rejected or let expire
--   PIPELINE_ERROR          the request failed, or a budget stopped it
--   PIPELINE_BLOCKED        governance stopped it: held at a checkpoint (at the hold) or denied
--   LANE_START              a lane started working on the request
--   LANE_COMPLETE           a lane ended (ok, skipped, held, approved, …: `detail` says which)
--   LANE_ERROR              a lane failed on the request
--   LLM_CALL_START          a provider call started (ts - latency)
--   LLM_CALL_COMPLETE       a provider call answered
--   LLM_CALL_ERROR          a provider call failed
--   CHECKPOINT_CREATED      a request was held for a person
--   CHECKPOINT_APPROVED / CHECKPOINT_REJECTED / CHECKPOINT_EXPIRED   its decision
--   BUDGET_WARNING          a soft budget limit was crossed
--   BUDGET_EXCEEDED         a hard budget limit stopped a request
--   RATE_LIMIT_HIT          a provider answered 429 (Nova waited, or fell back)
--   RATE_LIMIT_EXCEEDED     Nova's own rate limit passed a provider over (no call was made)
--
-- `seq` orders events of the same millisecond (a pipeline starts before its first lane, a
-- lane starts before its call, the call ends before the lane, the pipeline ends last): read
-- with ORDER BY ts, seq. `detail` holds a status or a reason code, never private content (answers and error texts of
-- requests live in request_content, which no view reads). A lane rewritten by a later record
-- (lane E held, then approved) keeps its last status in lane_events; the hold itself is the
-- checkpoint's CHECKPOINT_CREATED and PIPELINE_BLOCKED.

-- Q: what happened to each request, in the report's event types, and when?
CREATE VIEW IF NOT EXISTS {db}.v_pipeline_events AS
SELECT event_type, request_id, identity_id, lane, ts, seq, detail
FROM
(
    SELECT 'PIPELINE_START' AS event_type, request_id, any(toString(identity_id)) AS identity_id,
           CAST(NULL, 'Nullable(String)') AS lane, min(started_at) AS ts, toUInt8(0) AS seq,
           '' AS detail
    FROM {db}.lane_events FINAL
    GROUP BY request_id

    UNION ALL
    SELECT multiIf(status IN ('failed', 'budget_exceeded'), 'PIPELINE_ERROR',
                   status = 'denied', 'PIPELINE_BLOCKED', 'PIPELINE_COMPLETE'),
           request_id, toString(identity_id), CAST(NULL, 'Nullable(String)'), completed_at,
           toUInt8(9), toString(status)
    FROM {db}.requests FINAL

    UNION ALL
    SELECT 'LANE_START', request_id, toString(identity_id), toString(lane), started_at,
           toUInt8(1), toString(status)
    FROM {db}.lane_events FINAL

    UNION ALL
    SELECT if(status = 'error', 'LANE_ERROR', 'LANE_COMPLETE'), request_id,
           toString(identity_id), toString(lane),
           started_at + toIntervalMillisecond(toInt64(duration_ms)), toUInt8(5),
           toString(status)
    FROM {db}.lane_events FINAL

    UNION ALL
    SELECT 'LLM_CALL_START', request_id, toString(identity_id), 'F',
           ts - toIntervalMillisecond(toInt64(latency_ms)), toUInt8(2),
           concat(toString(provider), '/', toString(model))
    FROM {db}.llm_calls FINAL
    WHERE status != 'skipped'

    UNION ALL
    SELECT if(status = 'ok', 'LLM_CALL_COMPLETE', 'LLM_CALL_ERROR'), request_id,
           toString(identity_id), 'F', ts, toUInt8(3),
           concat(toString(provider), '/', toString(model))
    FROM {db}.llm_calls FINAL
    WHERE status != 'skipped'

    UNION ALL
    SELECT if(status = 'skipped', 'RATE_LIMIT_EXCEEDED', 'RATE_LIMIT_HIT'), request_id,
           toString(identity_id), 'F', ts, toUInt8(4),
           concat(toString(provider), '/', toString(model))
    FROM {db}.llm_calls FINAL
    WHERE (status = 'error' AND match(ifNull(error, ''), '\\b429\\b'))
       OR (status = 'skipped' AND startsWith(ifNull(error, ''), 'rate limit'))

    UNION ALL
    SELECT 'CHECKPOINT_CREATED', request_id, toString(identity_id), 'E',
           assumeNotNull(created_at), toUInt8(6), checkpoint_id
    FROM {db}.checkpoints FINAL
    WHERE created_at IS NOT NULL

    UNION ALL
    SELECT 'PIPELINE_BLOCKED', request_id, toString(identity_id), 'E',
           assumeNotNull(created_at), toUInt8(7), concat('held: ', ifNull(reason, 'checkpoint'))
    FROM {db}.checkpoints FINAL
    WHERE created_at IS NOT NULL

    UNION ALL
    SELECT concat('CHECKPOINT_', upper(ifNull(decided_status, ''))), request_id,
           toString(identity_id), 'E', assumeNotNull(decided_at), toUInt8(8), checkpoint_id
    FROM {db}.checkpoints FINAL
    WHERE decided_at IS NOT NULL AND decided_status IN ('approved', 'rejected', 'expired')

    UNION ALL
    SELECT if(alert_type = 'BUDGET_EXCEEDED', 'BUDGET_EXCEEDED', 'BUDGET_WARNING'), request_id,
           toString(identity_id), CAST(NULL, 'Nullable(String)'), ts, toUInt8(4), subject
    FROM {db}.alerts FINAL
    WHERE alert_type IN ('BUDGET_SOFT_LIMIT', 'BUDGET_EXCEEDED')
);
