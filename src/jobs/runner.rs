//! One run of a job: take the job's lock (one run at a time across every replica sharing
//! the database), skip an unchanged extract after a `HEAD`, download it (official source
//! first, mirrors after), import it with the job's thresholds, record the outcome, and tell
//! the job's webhook when it failed or was held. The import runs niced on its own thread
//! and database connections, so that it never slows the claims path of the same process.

use std::path::PathBuf;
use std::time::Instant;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::definition::{JobDefinition, JobKind};
use crate::download::{DownloadError, Downloader, Fetched};
use crate::extract::source::timestamp_in_name;
use crate::import::{self, FailedImport, ImportError, ImportOptions};
use crate::priority;
use crate::store::job_runs::{self, JobRunFacts};
pub use crate::store::job_runs::{JobRun, recent};
use crate::store::lock::AdvisoryLock;
use crate::store::runs::{self, RunSummary};
use crate::store::{JobRunStatus, RunStatus};
use crate::store::{batch, retention};

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

/// What every run shares: where downloads and work files go, the process's HTTP clients
/// (built once at start: the download client, with the job's retry policy, and the plain
/// one for webhooks), and the niceness of imports.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    pub work_dir: PathBuf,
    pub downloader: Downloader,
    /// CPU niceness (0 to 19) of the import's thread (ANNUAIRE_IMPORT_NICE).
    pub nice: i32,
}

impl RunnerSettings {
    /// The process's clients; work files in the system's temporary directory, imports at
    /// niceness 10.
    pub fn new(downloader: Downloader) -> RunnerSettings {
        RunnerSettings {
            work_dir: std::env::temp_dir(),
            downloader,
            nice: 10,
        }
    }
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
        let skipped = job_runs::start(pool, &job.name, trigger.as_str(), JobRunStatus::Skipped).await?;
        let message = match holder(pool, &job.name).await? {
            Some(id) => format!(
                "another run of {} is in progress (run {id}, on this or another replica)",
                job.name
            ),
            None => format!(
                "another run of {} is in progress (on this or another replica)",
                job.name
            ),
        };
        let facts = JobRunFacts {
            message: Some(message),
            ..JobRunFacts::default()
        };
        return job_runs::finish(pool, skipped, JobRunStatus::Skipped, &facts).await;
    };
    // Every outcome of the locked part, early errors included, comes back here to release.
    let recorded = run_locked(pool, job, trigger, source, settings, cancel).await;
    lock.release().await;
    let recorded = recorded?;
    tracing::info!(job = %job.name, run_id = recorded.id, status = %recorded.status, message = recorded.message.as_deref().unwrap_or(""), "job run ended");
    if matches!(recorded.status, JobRunStatus::Failed | JobRunStatus::Held)
        && let Some(url) = &job.notify_url
    {
        notify(&settings.downloader, url, &recorded).await;
    }
    Ok(recorded)
}

/// How long a run that found the job's lock taken waits for the holder's row, which the
/// holder writes right after taking the lock: a few milliseconds on a sound database.
const HOLDER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The id of the run holding the job's lock, so that a skipped run names it; `None` when the
/// holder has not recorded itself within `HOLDER_WAIT`.
async fn holder(pool: &PgPool, job: &str) -> Result<Option<i64>, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + HOLDER_WAIT;
    loop {
        let found = job_runs::in_progress(pool, job).await?;
        if found.is_some() || tokio::time::Instant::now() >= deadline {
            return Ok(found);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn run_locked(
    pool: &PgPool,
    job: &JobDefinition,
    trigger: Trigger,
    source: Option<&str>,
    settings: &RunnerSettings,
    cancel: &CancellationToken,
) -> Result<JobRun, sqlx::Error> {
    let run_id = job_runs::start(pool, &job.name, trigger.as_str(), JobRunStatus::Running).await?;
    tracing::info!(job = %job.name, run_id, trigger = trigger.as_str(), "job run started");
    let mut facts = JobRunFacts::default();
    let status = attempt(pool, job, source, settings, cancel, &mut facts).await;
    job_runs::finish(pool, run_id, status, &facts).await
}

/// One attempt: fetch the extract (`None` when the attempt ends there), then import it.
/// Returns the run's status; what it learned goes into `facts`.
async fn attempt(
    pool: &PgPool,
    job: &JobDefinition,
    source: Option<&str>,
    settings: &RunnerSettings,
    cancel: &CancellationToken,
    facts: &mut JobRunFacts,
) -> JobRunStatus {
    if job.kind == JobKind::Purge {
        return purge(pool, job, facts).await;
    }
    match fetch(pool, job, source, settings, cancel, facts).await {
        Ok(fetched) => import_fetched(pool, job, fetched, settings, cancel, facts).await,
        Err(status) => status,
    }
}

/// Retention's set-based purge (recorded in `purge_run` too): `published` when it took
/// someone (servers reload, as after a publication), `skipped` when nobody was due.
async fn purge(pool: &PgPool, job: &JobDefinition, facts: &mut JobRunFacts) -> JobRunStatus {
    let started = Instant::now();
    let purged = retention::purge(pool, job.retention_days).await;
    facts.timings.insert("purge".into(), ms(started));
    match purged {
        Ok(report) => {
            facts.message = Some(format!(
                "purge {}: {} professionals removed before {} purged ({} record versions)",
                report.id,
                report.professionals,
                report.cutoff.format("%Y-%m-%d %H:%M UTC"),
                report.records
            ));
            if report.professionals > 0 {
                JobRunStatus::Published
            } else {
                JobRunStatus::Skipped
            }
        }
        Err(e) => {
            facts.message = Some(format!("purge failed, nothing purged: {e}"));
            JobRunStatus::Failed
        }
    }
}

/// Downloads the extract from the first source that serves it, unless a `HEAD` shows
/// it is the published one. `Err` with the run's status when the run ends here.
async fn fetch(
    pool: &PgPool,
    job: &JobDefinition,
    source: Option<&str>,
    settings: &RunnerSettings,
    cancel: &CancellationToken,
    facts: &mut JobRunFacts,
) -> Result<Fetched, JobRunStatus> {
    let sources: Vec<String> = source.map_or_else(|| job.sources.clone(), |s| vec![s.to_owned()]);
    let downloader = settings.downloader.with_retry(job.retry);
    let (published_ts, last_bytes) = match published_facts(pool, job).await {
        Ok(known) => known,
        Err(e) => {
            facts.message = Some(format!("database error: {e}"));
            return Err(JobRunStatus::Failed);
        }
    };
    let min_bytes = (last_bytes as f64 * job.min_size_ratio) as u64;
    let mut errors = Vec::new();
    for url in &sources {
        facts.source_url = Some(url.clone());
        let started = Instant::now();
        if let Ok(probe) = downloader.probe(url).await {
            let offered = probe.file_name.as_deref().and_then(timestamp_in_name);
            facts.timings.insert("probe".into(), ms(started));
            if offered.is_some() && offered == published_ts {
                facts.message = Some(format!(
                    "unchanged: {} is the published extract",
                    probe.file_name.unwrap_or_default()
                ));
                return Err(JobRunStatus::Skipped);
            }
        }
        let started = Instant::now();
        match downloader.fetch(url, &settings.work_dir, min_bytes, cancel).await {
            Ok(fetched) => {
                facts.timings.insert("download".into(), ms(started));
                facts.bytes = Some(fetched.bytes as i64);
                return Ok(fetched);
            }
            Err(DownloadError::Cancelled) => {
                facts.message = Some("stopped by shutdown during the download".to_owned());
                return Err(JobRunStatus::Cancelled);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    facts.message = Some(errors.join("; "));
    Err(JobRunStatus::Failed)
}

/// Imports the downloaded extract with the job's thresholds; the import run's id is kept
/// whatever the outcome.
async fn import_fetched(
    pool: &PgPool,
    job: &JobDefinition,
    fetched: Fetched,
    settings: &RunnerSettings,
    cancel: &CancellationToken,
    facts: &mut JobRunFacts,
) -> JobRunStatus {
    let options = ImportOptions {
        gate: job.gate,
        max_reject_pct: job.max_reject_pct,
        work_dir: settings.work_dir.clone(),
        source_label: facts.source_url.clone(),
        cancel: cancel.clone(),
        downloader: Some(settings.downloader.clone()),
        known_sha256: Some(fetched.sha256.clone()),
        ..ImportOptions::default()
    };
    let started = Instant::now();
    let location = fetched.path.to_string_lossy().into_owned();
    let imported = import_niced(pool, location, options, settings.nice).await;
    facts.timings.insert("import".into(), ms(started));
    match imported {
        Ok(run) => {
            facts.import_run_id = Some(run.id);
            facts.message = run.message;
            match run.status {
                RunStatus::Published => JobRunStatus::Published,
                RunStatus::Held => JobRunStatus::Held,
                _ => JobRunStatus::Skipped,
            }
        }
        Err(FailedImport { run_id, error }) => {
            facts.import_run_id = run_id;
            if let ImportError::Cancelled = error {
                facts.message = Some("stopped by shutdown at a safe point of the import".to_owned());
                JobRunStatus::Cancelled
            } else {
                facts.message = Some(error.record_message());
                JobRunStatus::Failed
            }
        }
    }
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
        let pool = batch::pool(&connect, nice);
        let result = import::import_tracked(&pool, &location, &options).await;
        pool.close().await;
        result
    });
    niced.await.unwrap_or_else(|error| {
        Err(FailedImport {
            run_id: None,
            error: ImportError::internal_from("the import's thread failed", error),
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
    let mailboxes = matches!(job.kind, JobKind::Mssante);
    let published = runs::published_extract(pool, mailboxes).await?;
    let bytes = job_runs::last_published_bytes(pool, &job.name).await?;
    Ok((published.and_then(|p| p.extract_ts), bytes.unwrap_or(0).max(0) as u64))
}

/// Best effort: a webhook that is down must not fail the run (it is logged). On the plain
/// client: the extra CA bundle is for downloads only.
async fn notify(downloader: &Downloader, url: &str, run: &JobRun) {
    let request = downloader.plain_client().post(url).timeout(WEBHOOK_TIMEOUT).json(run);
    match request.send().await {
        Ok(response) if response.status().is_success() => tracing::info!(job = %run.job, "webhook notified"),
        Ok(response) => {
            tracing::warn!(job = %run.job, status = response.status().as_u16(), "webhook refused the notification")
        }
        Err(error) => tracing::warn!(job = %run.job, %error, "webhook unreachable"),
    }
}
