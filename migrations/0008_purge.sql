-- Retention: professionals removed longer ago than the retention period are purged with
-- their history (records, removals); each purge is recorded here. A change-feed cursor
-- from before `horizon_run_id` can no longer be continued without a gap (410).
CREATE TABLE purge_run (
    id             bigserial   CONSTRAINT purge_run_pk PRIMARY KEY,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    retention_days integer     NOT NULL,
    cutoff         timestamptz NOT NULL,
    professionals  bigint      NOT NULL DEFAULT 0,
    records        bigint      NOT NULL DEFAULT 0,
    removals       bigint      NOT NULL DEFAULT 0,
    -- The newest run whose removals were purged.
    horizon_run_id bigint
);
