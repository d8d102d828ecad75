-- The change feed (`GET /v1/changes`) has a scope of its own, for systems downstream that
-- must not read claims one by one nor administer anything.
ALTER TABLE api_key DROP CONSTRAINT api_key_scopes_ck;
ALTER TABLE api_key ADD CONSTRAINT api_key_scopes_ck
    CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['claims', 'search', 'admin', 'feed']);
-- The feed reads a run's records in national-id order, from a cursor: the run index
-- gains the national id (the first import re-creates it so, see store/records.rs).
DROP INDEX professional_record_run_ix;
CREATE INDEX professional_record_run_ix ON professional_record (run_id, national_id);
