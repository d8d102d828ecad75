//! One run of a job: take the job's lock (one run at a time across every replica sharing
//! the database), skip an unchanged extract after a `HEAD`, download it (official source
//! first, mirrors after), import it with the job's thresholds, record the outcome, and tell
//! the job's webhook when it failed or was held.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::definition::{JobDefinition, JobKind};
use crate::download::{DownloadError, DownloadSettings, Downloader, Fetched};
use crate::extract::source::timestamp_in_name;
use crate::import::{self, ImportError, ImportOptions};

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

/// What every run shares: where downloads go, and the download client's settings (the
/// job's retry policy replaces theirs).
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    pub download_dir: PathBuf,
    pub download: DownloadSettings,
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
    let mut lock = pool.acquire().await?;
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(lock_key(&job.name))
        .fetch_one(&mut *lock)
        .await?;
    if !taken {
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
    }
    let run_id = record_start(pool, job, trigger, "running").await?;
    tracing::info!(job = %job.name, run_id, trigger = trigger.as_str(), "job run started");
    let outcome = attempt(pool, job, source, settings, cancel).await;
    let status = outcome.status;
    let recorded = finish(pool, run_id, status, &outcome).await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(lock_key(&job.name))
        .execute(&mut *lock)
        .await;
    let recorded = recorded?;
    tracing::info!(job = %job.name, run_id, status, message = recorded.message.as_deref().unwrap_or(""), "job run ended");
    if matches!(status, "failed" | "held")
        && let Some(url) = &job.notify_url
    {
        notify(url, &recorded).await;
    }
    Ok(recorded)
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
    let download = DownloadSettings {
        retry: job.retry,
        ..settings.download.clone()
    };
    let downloader = match Downloader::new(download) {
        Ok(d) => d,
        Err(e) => {
            outcome.message = Some(e.to_string());
            return outcome;
        }
    };
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
        ..ImportOptions::default()
    };
    let started = Instant::now();
    let location = fetched.path.to_string_lossy().into_owned();
    let imported = import::import(pool, &location, &options).await;
    outcome.timings.insert("import".into(), ms(started));
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
    if outcome.import_run_id.is_none() {
        outcome.import_run_id = sqlx::query_scalar("SELECT max(id) FROM import_run WHERE source = $1")
            .bind(&outcome.source_url)
            .fetch_one(pool)
            .await
            .ok()
            .flatten();
    }
    outcome
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
async fn notify(url: &str, run: &JobRun) {
    crate::install_crypto_provider();
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(error) => return tracing::warn!(%error, "cannot build the webhook client"),
    };
    match client.post(url).json(run).send().await {
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
