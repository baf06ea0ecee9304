-- The content columns leave `requests` once 0006 has copied them into request_content: from
-- now on `requests` holds metrics only, whatever an analyst's statement looks like. Both
-- statements are safe to run again.
ALTER TABLE {db}.requests DROP COLUMN IF EXISTS result;
ALTER TABLE {db}.requests DROP COLUMN IF EXISTS error
