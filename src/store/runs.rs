//! Import runs: their record (status, timings, counts, message), their rejected lines, and
//! the lookups of the pipeline (the published and held extracts, interrupted runs). The
//! JSON form of `RunSummary` is the stable `--json` output documented in the README.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

use super::{RunId, RunStatus};

/// What an operator sees of a run.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct RunSummary {
    pub id: RunId,
    pub status: RunStatus,
    pub source: String,
    pub extract_ts: Option<DateTime<Utc>>,
    pub checksum: Option<String>,
    pub forced: bool,
    pub base_run_id: Option<RunId>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
    /// Milliseconds per phase.
    pub phases: serde_json::Value,
    pub files: serde_json::Value,
    pub lines_read: i64,
    pub rejected: i64,
    pub professionals: Option<i64>,
    pub mailboxes: Option<i64>,
    pub added: Option<i64>,
    pub changed: Option<i64>,
    pub removed: Option<i64>,
    pub gate: Option<serde_json::Value>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct RejectedLine {
    pub file: String,
    pub line: i64,
    pub reason: String,
    pub content: String,
}

/// How many rejected lines of one run are kept for `imports show`.
pub const KEPT_REJECTS: usize = 1000;

/// The columns of `RunSummary`, as a literal so that queries stay static strings.
macro_rules! summary_columns {
    () => {
        "id, status, source, extract_ts, checksum, forced, base_run_id, started_at, finished_at, \
         published_at, phases, files, lines_read, rejected, professionals, mailboxes, added, \
         changed, removed, gate, message"
    };
}

pub async fn create(db: impl PgExecutor<'_>, source: &str) -> Result<RunId, sqlx::Error> {
    sqlx::query_scalar("INSERT INTO import_run (source) VALUES ($1) RETURNING id")
        .bind(source)
        .fetch_one(db)
        .await
}

pub async fn get(db: impl PgExecutor<'_>, id: RunId) -> Result<Option<RunSummary>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", summary_columns!(), " FROM import_run WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn list(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<RunSummary>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        summary_columns!(),
        " FROM import_run ORDER BY id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn rejects(db: impl PgExecutor<'_>, id: RunId) -> Result<Vec<RejectedLine>, sqlx::Error> {
    sqlx::query_as("SELECT file, line, reason, content FROM import_reject WHERE run_id = $1 ORDER BY file, line")
        .bind(id)
        .fetch_all(db)
        .await
}

/// Text as Postgres takes it: it refuses NUL in `text`, and one NUL in one kept reject would
/// fail the whole insert (and the run), so it becomes U+FFFD.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Records the rejected lines kept for a run, set-wise.
pub async fn insert_rejects(db: impl PgExecutor<'_>, id: RunId, rejects: &[RejectedLine]) -> Result<(), sqlx::Error> {
    let files: Vec<Cow<str>> = rejects.iter().map(|r| text(&r.file)).collect();
    let lines: Vec<i64> = rejects.iter().map(|r| r.line).collect();
    let reasons: Vec<Cow<str>> = rejects.iter().map(|r| text(&r.reason)).collect();
    let contents: Vec<Cow<str>> = rejects.iter().map(|r| text(&r.content)).collect();
    sqlx::query(
        "INSERT INTO import_reject (run_id, file, line, reason, content)
         SELECT $1, * FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(files)
    .bind(lines)
    .bind(reasons)
    .bind(contents)
    .execute(db)
    .await?;
    Ok(())
}

/// The facts learned about a run as it goes; written together when it ends.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    pub source: Option<String>,
    pub extract_ts: Option<DateTime<Utc>>,
    pub checksum: Option<String>,
    pub forced: bool,
    pub base_run_id: Option<RunId>,
    pub has_directory: bool,
    pub has_mailboxes: bool,
    pub phases: serde_json::Map<String, serde_json::Value>,
    pub files: Vec<serde_json::Value>,
    pub lines_read: i64,
    pub rejected: i64,
    pub professionals: Option<i64>,
    pub mailboxes: Option<i64>,
    pub added: Option<i64>,
    pub changed: Option<i64>,
    pub removed: Option<i64>,
    pub gate: Option<serde_json::Value>,
}

pub async fn record(
    db: impl PgExecutor<'_>,
    id: RunId,
    status: RunStatus,
    facts: &RunFacts,
    message: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE import_run SET status = $2, source = coalesce($3, source), extract_ts = $4,
            checksum = $5, forced = $6, base_run_id = $7, has_directory = $8, has_mailboxes = $9,
            phases = $10, files = $11, lines_read = $12, rejected = $13, professionals = $14,
            mailboxes = $15, added = $16, changed = $17, removed = $18, gate = $19, message = $20,
            finished_at = CASE WHEN $2 = 'running' THEN NULL ELSE now() END
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(&facts.source)
    .bind(facts.extract_ts)
    .bind(&facts.checksum)
    .bind(facts.forced)
    .bind(facts.base_run_id)
    .bind(facts.has_directory)
    .bind(facts.has_mailboxes)
    .bind(serde_json::Value::Object(facts.phases.clone()))
    .bind(serde_json::Value::Array(facts.files.clone()))
    .bind(facts.lines_read)
    .bind(facts.rejected)
    .bind(facts.professionals)
    .bind(facts.mailboxes)
    .bind(facts.added)
    .bind(facts.changed)
    .bind(facts.removed)
    .bind(&facts.gate)
    .bind(message)
    .execute(db)
    .await?;
    Ok(())
}

/// The published directory generation (its run id), if any.
pub async fn current_generation(db: impl PgExecutor<'_>) -> Result<Option<RunId>, sqlx::Error> {
    let row: Option<Option<RunId>> = sqlx::query_scalar("SELECT run_id FROM publication")
        .fetch_optional(db)
        .await?;
    Ok(row.flatten())
}

/// The published run (directory or mailboxes) that read this very extract, if any.
pub async fn published_with_checksum(db: impl PgExecutor<'_>, checksum: &str) -> Result<Option<RunId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT r.id FROM publication p JOIN import_run r ON r.id IN (p.run_id, p.mailbox_run_id)
         WHERE r.checksum = $1 ORDER BY r.id DESC LIMIT 1",
    )
    .bind(checksum)
    .fetch_optional(db)
    .await
}

/// A held run of the same extract, if one waits for approval.
pub async fn held_with_checksum(db: impl PgExecutor<'_>, checksum: &str) -> Result<Option<RunId>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM import_run WHERE status = 'held' AND checksum = $1 ORDER BY id DESC LIMIT 1")
        .bind(checksum)
        .fetch_optional(db)
        .await
}

/// What the freshness guard compares a new extract with: the published run, its extract's
/// timestamp and checksum.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PublishedExtract {
    pub run_id: RunId,
    pub extract_ts: Option<DateTime<Utc>>,
    pub checksum: Option<String>,
}

/// The published directory extract, or with `mailboxes` the published MSSanté extract.
pub async fn published_extract(
    db: impl PgExecutor<'_>,
    mailboxes: bool,
) -> Result<Option<PublishedExtract>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id AS run_id, r.extract_ts, r.checksum
         FROM publication p JOIN import_run r ON r.id = CASE WHEN $1 THEN p.mailbox_run_id ELSE p.run_id END",
    )
    .bind(mailboxes)
    .fetch_optional(db)
    .await
}

/// Runs found `running` while the import lock is held were interrupted (a killed process,
/// a lost database): they become failed. Returns how many there were.
pub async fn fail_interrupted(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let interrupted = sqlx::query(
        "UPDATE import_run SET status = 'failed', finished_at = now(),
             message = 'interrupted: the importing process stopped before the run ended'
         WHERE status = 'running'",
    )
    .execute(db)
    .await?;
    Ok(interrupted.rows_affected())
}

/// What a run read: a directory extract, a mailbox extract, or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromRow)]
pub struct RunContents {
    pub has_directory: bool,
    pub has_mailboxes: bool,
}

pub async fn contents(db: impl PgExecutor<'_>, id: RunId) -> Result<RunContents, sqlx::Error> {
    sqlx::query_as("SELECT has_directory, has_mailboxes FROM import_run WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
}

/// Marks a held run's message as approved (it is published by then).
pub async fn note_approved(db: impl PgExecutor<'_>, id: RunId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE import_run SET message = coalesce(message, '') || ' (approved)' WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// What a server shows of the store: the published generation, the status of the latest
/// run that has ended (for `/metrics`), and the latest purge that took anyone (a server
/// reloads its snapshot after one: `store::retention`).
pub async fn generation_and_last_status(
    db: impl PgExecutor<'_>,
) -> Result<(Option<RunId>, Option<RunStatus>, Option<i64>), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT run_id FROM publication),
                (SELECT status FROM import_run WHERE status <> 'running' ORDER BY id DESC LIMIT 1),
                (SELECT max(id) FROM purge_run WHERE professionals > 0)",
    )
    .fetch_one(db)
    .await
}
