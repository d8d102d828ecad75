//! One run of a job: take the job's lock (one run at a time across every replica sharing
//! the database), skip an unchanged extract after a `HEAD`, download it (official source
//! first, mirrors after), import it with the job's thresholds, record the outcome, and tell
//! the job's webhook when it failed or was held. The import runs niced on its own thread
//! and database connections, so that it never slows the claims path of the same process.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

use super::definition::{JobDefinition, JobKind};
use crate::download::{DownloadError, Downloader, Fetched};
use crate::extract::source::timestamp_in_name;
use crate::import::{self, FailedImport, ImportError, ImportOptions};
use crate::priority;
use crate::store::lock::AdvisoryLock;
use crate::store::runs::RunSummary;

/// Connections of an in-process import's own pool: the import lock, the two ends of the
/// build's COPY, and one for the queries in between.
const IMPORT_CONNECTIONS: u32 = 4;
/// Webhooks are small POSTs: a receiver slower than this is treated as down.
const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
    Api,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Api => "api",
        }
    }
}

/// What every run shares: where downloads go, the process's HTTP client (for downloads,
/// with the job's retry policy, and webhooks), and the niceness of imports.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    pub download_dir: PathBuf,
    pub downloader: Downloader,
    /// CPU niceness (0 to 19) of the import's thread (ANNUAIRE_IMPORT_NICE).
    pub nice: i32,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        RunnerSettings {
            download_dir: std::env::temp_dir(),
            downloader: Downloader::default(),
            nice: 10,
        }
    }
}

/// A job run as recorded.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    pub trigger: String,
    pub status: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub source_url: Option<String>,
    pub bytes: Option<i64>,
    pub import_run_id: Option<i64>,
    pub timings: serde_json::Value,
    pub message: Option<String>,
}

/// The advisory lock key of a job: its name hashed into the lock space (xxh3: stable
/// across builds and replicas).
fn lock_key(job: &str) -> i64 {
    xxhash_rust::xxh3::xxh3_64(format!("annuaire job {job}").as_bytes()) as i64
}

/// Runs `job` now. `source` replaces the job's sources for a one-off run.
pub async fn run(
    pool: &PgPool,
    job: &JobDefinition,
    trigger: Trigger,
    source: Option<&str>,
    settings: &RunnerSettings,
    cancel: &CancellationToken,
) -> Result<JobRun, sqlx::Error> {
    let Some(lock) = AdvisoryLock::try_acquire(pool, lock_key(&job.name)).await? else {
        let skipped = record_start(pool, job, trigger, "skipped").await?;
        let message = format!(
            "another run of {} is in progress (on this or another replica)",
            job.name
        );
        return finish(
            pool,
            skipped,
            "skipped",
            &Outcome {
                message: Some(message),
                ..Outcome::default()
            },
        )
        .await;
    };
    // Every outcome of the locked part, early errors included, comes back here to release.
    let recorded = run_locked(pool, job, trigger, source, settings, cancel).await;
    lock.release().await;
    let recorded = recorded?;
    tracing::info!(job = %job.name, run_id = recorded.id, status = %recorded.status, message = recorded.message.as_deref().unwrap_or(""), "job run ended");
    if matches!(recorded.status.as_str(), "failed" | "held")
        && let Some(url) = &job.notify_url
    {
        notify(&settings.downloader, url, &recorded).await;
    }
    Ok(recorded)
}

async fn run_locked(
    pool: &PgPool,
    job: &JobDefinition,
    trigger: Trigger,
    source: Option<&str>,
    settings: &RunnerSettings,
    cancel: &CancellationToken,
) -> Result<JobRun, sqlx::Error> {
    let run_id = record_start(pool, job, trigger, "running").await?;
    tracing::info!(job = %job.name, run_id, trigger = trigger.as_str(), "job run started");
    let outcome = attempt(pool, job, source, settings, cancel).await;
    finish(pool, run_id, outcome.status, &outcome).await
}

#[derive(Debug, Default)]
struct Outcome {
    status: &'static str,
    source_url: Option<String>,
    bytes: Option<i64>,
    import_run_id: Option<i64>,
    timings: serde_json::Map<String, serde_json::Value>,
    message: Option<String>,
}

async fn attempt(
    pool: &PgPool,
    job: &JobDefinition,
    source: Option<&str>,
    settings: &RunnerSettings,
    cancel: &CancellationToken,
) -> Outcome {
    let mut outcome = Outcome {
        status: "failed",
        ..Outcome::default()
    };
    let sources: Vec<String> = source.map_or_else(|| job.sources.clone(), |s| vec![s.to_owned()]);
    let downloader = settings.downloader.with_retry(job.retry);
    let (published_ts, last_bytes) = match published_facts(pool, job).await {
        Ok(facts) => facts,
        Err(e) => {
            outcome.message = Some(format!("database error: {e}"));
            return outcome;
        }
    };
    let min_bytes = (last_bytes as f64 * job.min_size_ratio) as u64;
    let mut errors = Vec::new();
    let mut fetched: Option<Fetched> = None;
    for url in &sources {
        outcome.source_url = Some(url.clone());
        let started = Instant::now();
        if let Ok(probe) = downloader.probe(url).await {
            let offered = probe.file_name.as_deref().and_then(timestamp_in_name);
            outcome.timings.insert("probe".into(), ms(started));
            if offered.is_some() && offered == published_ts {
                outcome.status = "skipped";
                outcome.message = Some(format!(
                    "unchanged: {} is the published extract",
                    probe.file_name.unwrap_or_default()
                ));
                return outcome;
            }
        }
        let started = Instant::now();
        match downloader.fetch(url, &settings.download_dir, min_bytes, cancel).await {
            Ok(f) => {
                outcome.timings.insert("download".into(), ms(started));
                outcome.bytes = Some(f.bytes as i64);
                fetched = Some(f);
                break;
            }
            Err(DownloadError::Cancelled) => {
                outcome.status = "cancelled";
                outcome.message = Some("stopped by shutdown during the download".to_owned());
                return outcome;
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let Some(fetched) = fetched else {
        outcome.message = Some(errors.join("; "));
        return outcome;
    };
    let options = ImportOptions {
        gate: job.gate,
        max_reject_pct: job.max_reject_pct,
        download_dir: settings.download_dir.clone(),
        source_label: outcome.source_url.clone(),
        cancel: cancel.clone(),
        downloader: Some(settings.downloader.clone()),
        ..ImportOptions::default()
    };
    let started = Instant::now();
    let location = fetched.path.to_string_lossy().into_owned();
    let imported = import_niced(pool, location, options, settings.nice).await;
    outcome.timings.insert("import".into(), ms(started));
    let imported = imported.map_err(|failed| {
        outcome.import_run_id = failed.run_id;
        failed.error
    });
    match imported {
        Ok(run) => {
            outcome.import_run_id = Some(run.id);
            outcome.status = match run.status.as_str() {
                "published" => "published",
                "held" => "held",
                _ => "skipped",
            };
            outcome.message = run.message;
        }
        Err(ImportError::Cancelled) => {
            outcome.status = "cancelled";
            outcome.message = Some("stopped by shutdown at a safe point of the import".to_owned());
        }
        Err(e) => outcome.message = Some(e.to_string()),
    }
    outcome
}

/// The import on its own niced thread and runtime, with its own small pool: connections
/// belong to the runtime that opened them, and the serving path's pool stays untouched.
async fn import_niced(
    pool: &PgPool,
    location: String,
    options: ImportOptions,
    nice: i32,
) -> Result<RunSummary, FailedImport> {
    let connect = pool.connect_options();
    let niced = priority::run_niced(nice, "annuaire-import", move || async move {
        let pool = PgPoolOptions::new()
            .max_connections(IMPORT_CONNECTIONS)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .connect_lazy_with((*connect).clone());
        let result = import::import_tracked(&pool, &location, &options).await;
        pool.close().await;
        result
    });
    niced.await.unwrap_or_else(|error| {
        Err(FailedImport {
            run_id: None,
            error: ImportError::internal(error),
        })
    })
}

fn ms(started: Instant) -> serde_json::Value {
    serde_json::json!(started.elapsed().as_millis() as u64)
}

/// The published extract's timestamp for this kind of job, and the size of the last
/// download this job published (0 when none).
async fn published_facts(
    pool: &PgPool,
    job: &JobDefinition,
) -> Result<(Option<chrono::DateTime<chrono::Utc>>, u64), sqlx::Error> {
    let column = match job.kind {
        JobKind::PsLibreacces => "SELECT r.extract_ts FROM publication p JOIN import_run r ON r.id = p.run_id",
        JobKind::Mssante => "SELECT r.extract_ts FROM publication p JOIN import_run r ON r.id = p.mailbox_run_id",
    };
    let ts: Option<Option<chrono::DateTime<chrono::Utc>>> = sqlx::query_scalar(column).fetch_optional(pool).await?;
    let bytes: Option<i64> = sqlx::query_scalar(
        "SELECT bytes FROM job_run WHERE job = $1 AND status = 'published' AND bytes IS NOT NULL ORDER BY id DESC LIMIT 1",
    )
    .bind(&job.name)
    .fetch_optional(pool)
    .await?;
    Ok((ts.flatten(), bytes.unwrap_or(0).max(0) as u64))
}

async fn record_start(pool: &PgPool, job: &JobDefinition, trigger: Trigger, status: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("INSERT INTO job_run (job, trigger, status) VALUES ($1, $2, $3) RETURNING id")
        .bind(&job.name)
        .bind(trigger.as_str())
        .bind(status)
        .fetch_one(pool)
        .await
}

async fn finish(pool: &PgPool, id: i64, status: &str, outcome: &Outcome) -> Result<JobRun, sqlx::Error> {
    sqlx::query_as(
        "UPDATE job_run SET status = $2, finished_at = now(), source_url = $3, bytes = $4, import_run_id = $5,
                timings = $6, message = $7
         WHERE id = $1
         RETURNING id, job, trigger, status, started_at, finished_at, source_url, bytes, import_run_id, timings, message",
    )
    .bind(id)
    .bind(status)
    .bind(&outcome.source_url)
    .bind(outcome.bytes)
    .bind(outcome.import_run_id)
    .bind(serde_json::Value::Object(outcome.timings.clone()))
    .bind(&outcome.message)
    .fetch_one(pool)
    .await
}

/// Best effort: a webhook that is down must not fail the run (it is logged).
async fn notify(downloader: &Downloader, url: &str, run: &JobRun) {
    let request = downloader.client().post(url).timeout(WEBHOOK_TIMEOUT).json(run);
    match request.send().await {
        Ok(response) if response.status().is_success() => tracing::info!(job = %run.job, "webhook notified"),
        Ok(response) => {
            tracing::warn!(job = %run.job, status = response.status().as_u16(), "webhook refused the notification")
        }
        Err(error) => tracing::warn!(job = %run.job, %error, "webhook unreachable"),
    }
}

/// The latest runs, newest first.
pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<JobRun>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, job, trigger, status, started_at, finished_at, source_url, bytes, import_run_id, timings, message
         FROM job_run ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}
