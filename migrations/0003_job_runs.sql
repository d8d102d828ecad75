-- Runs of scheduled jobs: what the scheduler (or an operator) started, and how it ended.
-- The import a run caused has its own record in import_run.
CREATE TABLE job_run (
    id            bigserial   CONSTRAINT job_run_pk PRIMARY KEY,
    job           text        NOT NULL,
    trigger       text        NOT NULL CONSTRAINT job_run_trigger_ck CHECK (trigger IN ('schedule', 'manual', 'api')),
    status        text        NOT NULL DEFAULT 'running' CONSTRAINT job_run_status_ck
        CHECK (status IN ('running', 'published', 'held', 'skipped', 'failed', 'cancelled')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    source_url    text,
    bytes         bigint,
    -- No foreign key: a failed run may end before its import has a record.
    import_run_id bigint,
    -- Milliseconds per phase: probe, download, import.
    timings       jsonb       NOT NULL DEFAULT '{}',
    message       text
);

CREATE INDEX job_run_job_ix ON job_run (job, id);
