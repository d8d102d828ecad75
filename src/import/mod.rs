//! The import pipeline: source → read and stage (a work file) → diff → build → safety gate →
//! atomic publish, recorded as a run (`pipeline` holds the stages). One import at a time
//! per database (an advisory lock); whatever fails, the published generation stays exactly
//! as it was, and the caller learns which run recorded the failure.

pub mod build;
pub mod diff;
pub mod freshness;
pub mod gate;
mod pipeline;
pub mod publish;
pub mod review;
mod slots;
mod spill;
pub mod stage;

use std::path::PathBuf;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::download::{self, Downloader};
use crate::extract::ExtractError;
use crate::store::copy::CopyFormatError;
use crate::store::lock::AdvisoryLock;
use crate::store::publication;
use crate::store::runs::{self, RunFacts, RunSummary};
use crate::store::{RunId, RunStatus, staging};
pub use gate::GateThresholds;
pub use pipeline::Ended;

/// Settings of one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Publish even when the safety gate would hold the run.
    pub force: bool,
    pub gate: GateThresholds,
    /// Share of rejected lines (percent of all lines read) above which the run fails.
    pub max_reject_pct: f64,
    /// Longest line read; longer ones are rejected (and never held whole in memory).
    pub max_line_bytes: usize,
    /// Where downloads of URL sources and the import's work file (the lines read, about
    /// the extract's uncompressed size) go while it runs.
    pub work_dir: PathBuf,
    /// What the run record names as its source (a job's URL), instead of the path read.
    pub source_label: Option<String>,
    /// Stops the import at its next safe point (between phases); it is recorded cancelled.
    pub cancel: CancellationToken,
    /// The process's download client (its CA bundle, timeouts) for URL sources; `None`
    /// builds one with the default settings for this import.
    pub downloader: Option<Downloader>,
    /// The SHA-256 (hex) of the file at the location, when the caller already has it (a
    /// download it made hashed the bytes as they arrived): recorded as the run's checksum
    /// instead of reading a multi-gigabyte zip a second time. Only for a single file (a zip
    /// or a `.txt`): a directory's checksum is computed from its files.
    pub known_sha256: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            force: false,
            gate: GateThresholds::default(),
            max_reject_pct: 0.1,
            max_line_bytes: crate::extract::DEFAULT_MAX_LINE_BYTES,
            work_dir: std::env::temp_dir(),
            source_label: None,
            cancel: CancellationToken::new(),
            downloader: None,
            known_sha256: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error("download failed: {0}")]
    Download(#[from] download::DownloadError),
    #[error("{rejected} of {lines} lines rejected ({pct:.3} % > {max} %); see `annuaire imports show`")]
    TooManyRejects {
        rejected: i64,
        lines: i64,
        pct: f64,
        max: f64,
    },
    #[error("another import is running on this database; try again when it has finished")]
    Busy,
    #[error("run {0} does not exist")]
    NoSuchRun(RunId),
    #[error("run {run} is {status}, only a held run can be approved")]
    NotHeld { run: RunId, status: RunStatus },
    #[error(
        "run {run} was compared with generation {base}, but generation {current} is published now; import the extract again"
    )]
    StaleApproval { run: RunId, base: String, current: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    CopyFormat(#[from] CopyFormatError),
    #[error(transparent)]
    Spill(#[from] spill::SpillError),
    /// A failure of the program itself; `source` is what failed under it, when there is one
    /// (a worker thread's panic), kept for the log's cause chain.
    #[error("internal error: {what}")]
    Internal {
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("cancelled by shutdown; the published generation is unchanged")]
    Cancelled,
}

impl ImportError {
    /// A failure of the program itself (a bug, a dead worker thread), not of the input.
    pub fn internal(e: impl std::fmt::Display) -> ImportError {
        ImportError::Internal {
            what: e.to_string(),
            source: None,
        }
    }

    /// An internal failure that keeps the error under it as its source.
    pub fn internal_from(what: &str, source: impl std::error::Error + Send + Sync + 'static) -> ImportError {
        ImportError::Internal {
            what: what.to_owned(),
            source: Some(Box::new(source)),
        }
    }

    /// The sentence a run record keeps: the error and, for an internal one, the failure
    /// under it (the other variants already say their cause).
    pub fn record_message(&self) -> String {
        match self {
            ImportError::Internal {
                what,
                source: Some(source),
            } => format!("internal error: {what}: {source}"),
            other => other.to_string(),
        }
    }
}

impl From<tokio::task::JoinError> for ImportError {
    fn from(e: tokio::task::JoinError) -> Self {
        ImportError::internal_from("worker thread failed", e)
    }
}

/// An arbitrary fixed key: the advisory lock that makes imports exclusive per database.
const IMPORT_LOCK_KEY: i64 = 0x616e_6e75_6169_7265; // "annuaire"

/// Runs found `running` while we hold the lock were interrupted (killed process, lost
/// database): mark them failed and drop their data.
async fn recover_interrupted(pool: &PgPool) -> Result<(), sqlx::Error> {
    let interrupted = runs::fail_interrupted(pool).await?;
    if interrupted > 0 {
        tracing::warn!(runs = interrupted, "marked interrupted runs as failed");
    }
    publication::discard_unpublished_data(pool).await
}

/// An import that failed, with the run that recorded the failure (`None` when it failed
/// before a run existed: another import holds the lock, the database is unreachable).
#[derive(Debug)]
pub struct FailedImport {
    pub run_id: Option<RunId>,
    pub error: ImportError,
}

/// Imports `location` (a path or an http(s) URL). Returns the run record whatever the
/// outcome (published, held, skipped); `Err` only for a failed run, which is recorded too.
pub async fn import(pool: &PgPool, location: &str, options: &ImportOptions) -> Result<RunSummary, ImportError> {
    import_tracked(pool, location, options)
        .await
        .map_err(|failed| failed.error)
}

/// [`import`], telling which run recorded a failure.
pub async fn import_tracked(
    pool: &PgPool,
    location: &str,
    options: &ImportOptions,
) -> Result<RunSummary, FailedImport> {
    let untracked = |error: ImportError| FailedImport { run_id: None, error };
    let lock = AdvisoryLock::try_acquire(pool, IMPORT_LOCK_KEY)
        .await
        .map_err(|e| untracked(e.into()))?
        .ok_or_else(|| untracked(ImportError::Busy))?;
    let mut run_id = None;
    // Every outcome of the locked part, early errors included, comes back here to release.
    let result = import_locked(pool, location, options, &mut run_id).await;
    lock.release().await;
    result.map_err(|error| FailedImport { run_id, error })
}

async fn import_locked(
    pool: &PgPool,
    location: &str,
    options: &ImportOptions,
    created: &mut Option<RunId>,
) -> Result<RunSummary, ImportError> {
    recover_interrupted(pool).await?;
    let run_id = runs::create(pool, options.source_label.as_deref().unwrap_or(location)).await?;
    *created = Some(run_id);
    tracing::info!(%run_id, source = location, "import started");
    let mut facts = RunFacts {
        forced: options.force,
        ..RunFacts::default()
    };
    let result = match pipeline::run(pool, run_id, location, options, &mut facts).await {
        Ok(Ended { status, message }) => {
            if status != RunStatus::Published {
                runs::record(pool, run_id, status, &facts, message.as_deref()).await?;
            }
            tracing::info!(
                %run_id,
                %status,
                message = message.as_deref().unwrap_or(""),
                "import ended"
            );
            Ok(())
        }
        Err(error) => {
            tracing::error!(%run_id, %error, "import failed");
            let status = if matches!(error, ImportError::Cancelled) {
                RunStatus::Cancelled
            } else {
                RunStatus::Failed
            };
            runs::record(pool, run_id, status, &facts, Some(&error.record_message())).await?;
            publication::discard_unpublished_data(pool).await?;
            Err(error)
        }
    };
    // Staged lines are only needed while the run works; keep the space free in between.
    let cleared = staging::clear(pool).await;
    result?;
    cleared?;
    runs::get(pool, run_id).await?.ok_or(ImportError::NoSuchRun(run_id))
}

/// Publishes a held run, if the generation it was compared with is still the published one.
pub async fn approve(pool: &PgPool, run_id: RunId) -> Result<RunSummary, ImportError> {
    let lock = AdvisoryLock::try_acquire(pool, IMPORT_LOCK_KEY)
        .await?
        .ok_or(ImportError::Busy)?;
    let result = approve_locked(pool, run_id).await;
    lock.release().await;
    result
}

async fn approve_locked(pool: &PgPool, run_id: RunId) -> Result<RunSummary, ImportError> {
    let run = runs::get(pool, run_id).await?.ok_or(ImportError::NoSuchRun(run_id))?;
    if run.status != RunStatus::Held {
        return Err(ImportError::NotHeld {
            run: run_id,
            status: run.status,
        });
    }
    let contents = runs::contents(pool, run_id).await?;
    let current = runs::current_generation(pool).await?;
    // A held mailbox set whose compared set was replaced since was discarded by that
    // publication (`store::publication`): only a directory run's base is checked here.
    if contents.has_directory && current != run.base_run_id {
        let name = |id: Option<RunId>| id.map_or("none".to_owned(), |i| i.to_string());
        return Err(ImportError::StaleApproval {
            run: run_id,
            base: name(run.base_run_id),
            current: name(current),
        });
    }
    let changed_at = run.extract_ts.unwrap_or_else(chrono::Utc::now);
    publish::publish(pool, run_id, contents, changed_at).await?;
    runs::note_approved(pool, run_id).await?;
    tracing::info!(%run_id, "held run approved and published");
    runs::get(pool, run_id).await?.ok_or(ImportError::NoSuchRun(run_id))
}

#[cfg(test)]
mod tests {
    use super::ImportError;

    #[tokio::test]
    async fn a_failed_worker_is_an_internal_error_that_keeps_its_join_error() {
        let joined = tokio::task::spawn_blocking(|| panic!("the worker's own words")).await;
        let error = ImportError::from(joined.expect_err("the task panicked"));
        assert_eq!(error.to_string(), "internal error: worker thread failed");
        let source = std::error::Error::source(&error).expect("the cause is kept");
        let join = source
            .downcast_ref::<tokio::task::JoinError>()
            .expect("the JoinError itself");
        assert!(join.is_panic());
        assert!(
            error.record_message().contains("panicked"),
            "{}",
            error.record_message()
        );
    }
}
