-- The events topic lands through ClickHouse's own Avro decoder (issue 9, the sink target).
--
-- The sink hands ClickHouse the records of the events topic as they are on Kafka, framed as
-- an Avro object container with their writer schema (analytics.avro_load), into events_in:
-- a Null table (it keeps nothing) whose columns are the Event schema's fields. The three
-- materialized views below map each record to its rows, as analytics.rows maps the other
-- topics, so neither the live sink nor replay decodes an event in Python: decoding and
-- mapping in Python cost three times ClickHouse's own insert of the finished rows.
--
-- A section (lane, llm, alert: an Avro union of null and a record) is a Tuple whose elements
-- are all Nullable, and a record without it gets the Tuple's default, every element NULL
-- (input_format_avro_null_as_default, set by the loader): a section is present when one of
-- its required fields is not NULL. (Nullable(Tuple) would say it directly, but it is a beta
-- type that ClickHouse 25.8, docker-compose's server, does not have.)
--
-- A record maps to the rows of exactly one table, by the first of its sections present:
--   lane (v1, one lane) or lanes (v2, every lane of a request)  -> lane_events, one per lane
--   llm                                                         -> llm_calls
--   alert                                                       -> alerts
-- request_ts is the time in the request's UUIDv7 id (the canonical form the gateway writes;
-- nova.ids.uuid7_ms), or the event's ts for any other id: events_in's request_ms, a
-- MATERIALIZED column the views read. version is the event's ts.
-- Source columns are named with their table (events_in.ts) wherever an output alias of the
-- same name (ts, lane) would otherwise shadow them.
--
-- A field added to the Event schema needs its column here in the same change (a unit test
-- compares them); a writer schema without a column's field gives the column's default
-- (input_format_avro_allow_missing_fields, set by the loader).
CREATE TABLE IF NOT EXISTS {db}.events_in
(
    event_id    String,
    kind        String,
    request_id  String,
    identity_id String,
    ts          Int64,
    lane        Tuple(lane Nullable(String), status Nullable(String),
                      started_at Nullable(Int64), duration_ms Nullable(Float64),
                      worker Nullable(String), error Nullable(String)),
    llm         Tuple(provider Nullable(String), model Nullable(String), role Nullable(String),
                      task_type Nullable(String), tokens_in Nullable(Int32),
                      tokens_out Nullable(Int32), cost_usd Nullable(Float64),
                      latency_ms Nullable(Float64), attempt Nullable(Int32),
                      fallback_from Nullable(String), status Nullable(String),
                      error Nullable(String)),
    alert       Tuple(alert_type Nullable(String), subject Nullable(String),
                      message Nullable(String), severity Nullable(String)),
    lanes       Array(Tuple(lane String, status String, started_at Int64, duration_ms Float64,
                            worker String, error Nullable(String))),
    -- Not in the records: computed on insert, once for the views that date rows by it.
    request_ms  Int64 MATERIALIZED if(
        match(request_id,
              '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$'),
        toInt64(reinterpretAsUInt64(reverse(unhex(
            concat('0000', substring(replaceAll(request_id, '-', ''), 1, 12)))))),
        ts)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_events_lane_events TO {db}.lane_events AS
SELECT
    events_in.request_id                                     AS request_id,
    events_in.identity_id                                    AS identity_id,
    CAST(NULL, 'Nullable(String)')                           AS sphere_id,
    l.lane                                                   AS lane,
    l.status                                                 AS status,
    fromUnixTimestamp64Milli(l.started_at, 'UTC')            AS started_at,
    l.duration_ms                                            AS duration_ms,
    l.worker                                                 AS worker,
    l.error                                                  AS error,
    fromUnixTimestamp64Milli(events_in.request_ms, 'UTC')    AS request_ts,
    fromUnixTimestamp64Milli(events_in.ts, 'UTC')            AS ts,
    toUInt64(events_in.ts)                                   AS version
FROM {db}.events_in
ARRAY JOIN if(events_in.lane.lane IS NULL, events_in.lanes, [events_in.lane]) AS l;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_events_llm_calls TO {db}.llm_calls AS
SELECT
    events_in.request_id                                     AS request_id,
    events_in.identity_id                                    AS identity_id,
    CAST(NULL, 'Nullable(String)')                           AS sphere_id,
    events_in.llm.provider                                   AS provider,
    events_in.llm.model                                      AS model,
    events_in.llm.role                                       AS role,
    events_in.llm.task_type                                  AS task_type,
    events_in.llm.tokens_in                                  AS tokens_in,
    events_in.llm.tokens_out                                 AS tokens_out,
    events_in.llm.cost_usd                                   AS cost_usd,
    events_in.llm.latency_ms                                 AS latency_ms,
    events_in.llm.attempt                                    AS attempt,
    events_in.llm.fallback_from                              AS fallback_from,
    events_in.llm.status                                     AS status,
    events_in.llm.error                                      AS error,
    fromUnixTimestamp64Milli(events_in.request_ms, 'UTC')    AS request_ts,
    fromUnixTimestamp64Milli(events_in.ts, 'UTC')            AS ts,
    toUInt64(events_in.ts)                                   AS version
FROM {db}.events_in
WHERE events_in.lane.lane IS NULL AND empty(events_in.lanes)
  AND events_in.llm.provider IS NOT NULL;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_events_alerts TO {db}.alerts AS
SELECT
    events_in.event_id                                       AS event_id,
    events_in.request_id                                     AS request_id,
    events_in.identity_id                                    AS identity_id,
    events_in.alert.alert_type                               AS alert_type,
    events_in.alert.subject                                  AS subject,
    events_in.alert.message                                  AS message,
    events_in.alert.severity                                 AS severity,
    fromUnixTimestamp64Milli(events_in.ts, 'UTC')            AS ts,
    toUInt64(events_in.ts)                                   AS version
FROM {db}.events_in
WHERE events_in.lane.lane IS NULL AND empty(events_in.lanes)
  AND events_in.llm.provider IS NULL AND events_in.alert.alert_type IS NOT NULL
