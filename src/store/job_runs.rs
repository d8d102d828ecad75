//! Job runs: one row per run of a scheduled job (who started it, how it ended, what it
//! downloaded, which import run it made), and the lookups the runner needs.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;

use super::{JobRunStatus, RunId};

/// A job run as recorded.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    pub trigger: String,
    pub status: JobRunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub source_url: Option<String>,
    pub bytes: Option<i64>,
    pub import_run_id: Option<RunId>,
    pub timings: serde_json::Value,
    pub message: Option<String>,
}

/// What a run learned, written when it ends.
#[derive(Debug, Clone, Default)]
pub struct JobRunFacts {
    pub source_url: Option<String>,
    pub bytes: Option<i64>,
    pub import_run_id: Option<RunId>,
    /// Milliseconds per step (probe, download, import).
    pub timings: serde_json::Map<String, serde_json::Value>,
    pub message: Option<String>,
}

macro_rules! job_run_columns {
    () => {
        "id, job, trigger, status, started_at, finished_at, source_url, bytes, import_run_id, timings, message"
    };
}

/// Records the start of a run; returns its id.
pub async fn start(
    db: impl PgExecutor<'_>,
    job: &str,
    trigger: &str,
    status: JobRunStatus,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("INSERT INTO job_run (job, trigger, status) VALUES ($1, $2, $3) RETURNING id")
        .bind(job)
        .bind(trigger)
        .bind(status)
        .fetch_one(db)
        .await
}

/// Records the end of a run and returns it.
pub async fn finish(
    db: impl PgExecutor<'_>,
    id: i64,
    status: JobRunStatus,
    facts: &JobRunFacts,
) -> Result<JobRun, sqlx::Error> {
    sqlx::query_as(concat!(
        "UPDATE job_run SET status = $2, finished_at = now(), source_url = $3, bytes = $4, import_run_id = $5,
                timings = $6, message = $7
         WHERE id = $1
         RETURNING ",
        job_run_columns!()
    ))
    .bind(id)
    .bind(status)
    .bind(&facts.source_url)
    .bind(facts.bytes)
    .bind(facts.import_run_id)
    .bind(serde_json::Value::Object(facts.timings.clone()))
    .bind(&facts.message)
    .fetch_one(db)
    .await
}

/// The latest runs, newest first.
pub async fn recent(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<JobRun>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        job_run_columns!(),
        " FROM job_run ORDER BY id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The latest finished run of each job that has one.
pub async fn latest_finished(db: impl PgExecutor<'_>) -> Result<Vec<JobRun>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT DISTINCT ON (job) ",
        job_run_columns!(),
        " FROM job_run WHERE status <> 'running' ORDER BY job, id DESC"
    ))
    .fetch_all(db)
    .await
}

/// The size of the last download this job published, if any.
pub async fn last_published_bytes(db: impl PgExecutor<'_>, job: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT bytes FROM job_run WHERE job = $1 AND status = 'published' AND bytes IS NOT NULL ORDER BY id DESC LIMIT 1",
    )
    .bind(job)
    .fetch_optional(db)
    .await
}

/// The latest run of `job` still marked running: the one holding the job's lock when that
/// lock is taken (a crashed replica's leftover row is older, and its lock died with it).
pub async fn in_progress(db: impl PgExecutor<'_>, job: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM job_run WHERE job = $1 AND status = 'running' ORDER BY id DESC LIMIT 1")
        .bind(job)
        .fetch_optional(db)
        .await
}
