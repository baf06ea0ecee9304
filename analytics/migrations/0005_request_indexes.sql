-- Per-request lookups (a request's trail, its status rebuilt after a gateway restart) filter
-- on request_id alone, but request_id is not a prefix of either table's ORDER BY: without a
-- skip index such a lookup reads every granule, which at tens of millions of rows is a full
-- scan. A bloom filter per 4 granules lets ClickHouse skip the granules that cannot hold the
-- id: the same index `requests` (0001) and `audit_events` (0002) were created with.
--
-- ADD INDEX builds the index for parts written from now on; MATERIALIZE INDEX builds it for
-- the parts already there, as a background mutation (the migration does not wait for it).
-- Both are safe to run again.
ALTER TABLE {db}.lane_events ADD INDEX IF NOT EXISTS idx_request_id request_id TYPE bloom_filter GRANULARITY 4;
ALTER TABLE {db}.llm_calls ADD INDEX IF NOT EXISTS idx_request_id request_id TYPE bloom_filter GRANULARITY 4;
ALTER TABLE {db}.lane_events MATERIALIZE INDEX idx_request_id;
ALTER TABLE {db}.llm_calls MATERIALIZE INDEX idx_request_id
