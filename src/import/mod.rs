//! The import pipeline: source → read and stage (COPY) → build and diff → safety gate →
//! atomic publish, recorded as a run. One import at a time per database (an advisory
//! lock); whatever fails, the published generation stays exactly as it was.

pub mod build;
pub mod builder;
pub mod diff;
pub mod freshness;
pub mod gate;
pub mod publish;
pub mod record;
pub mod stage;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::download::{self, Downloader};
use crate::extract::{ExtractError, FileKind, Source};
use crate::progress::Progress;
use crate::store::copy::CopyFormatError;
use crate::store::lock::AdvisoryLock;
use crate::store::runs::{self, RunFacts, RunSummary};
pub use gate::GateThresholds;

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
    /// Where downloads of URL sources go while they are imported.
    pub download_dir: PathBuf,
    /// What the run record names as its source (a job's URL), instead of the path read.
    pub source_label: Option<String>,
    /// Stops the import at its next safe point (between phases); it is recorded cancelled.
    pub cancel: CancellationToken,
    /// The process's download client (its CA bundle, timeouts) for URL sources; `None`
    /// builds one with the default settings for this import.
    pub downloader: Option<Downloader>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            force: false,
            gate: GateThresholds::default(),
            max_reject_pct: 0.1,
            max_line_bytes: crate::extract::DEFAULT_MAX_LINE_BYTES,
            download_dir: std::env::temp_dir(),
            source_label: None,
            cancel: CancellationToken::new(),
            downloader: None,
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
    NoSuchRun(i64),
    #[error("run {run} is {status}, only a held run can be approved")]
    NotHeld { run: i64, status: String },
    #[error(
        "run {run} was compared with generation {base}, but generation {current} is published now; import the extract again"
    )]
    StaleApproval { run: i64, base: String, current: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    CopyFormat(#[from] CopyFormatError),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("cancelled by shutdown; the published generation is unchanged")]
    Cancelled,
}

impl ImportError {
    /// A failure of the program itself (a bug, a dead worker thread), not of the input.
    pub fn internal(e: impl std::fmt::Display) -> ImportError {
        ImportError::Internal(e.to_string())
    }
}

impl From<tokio::task::JoinError> for ImportError {
    fn from(e: tokio::task::JoinError) -> Self {
        ImportError::Internal(format!("worker thread failed: {e}"))
    }
}

/// An arbitrary fixed key: the advisory lock that makes imports exclusive per database.
const IMPORT_LOCK_KEY: i64 = 0x616e_6e75_6169_7265; // "annuaire"

/// Runs found `running` while we hold the lock were interrupted (killed process, lost
/// database): mark them failed and drop their data.
async fn recover_interrupted(pool: &PgPool) -> Result<(), sqlx::Error> {
    let interrupted = sqlx::query(
        "UPDATE import_run SET status = 'failed', finished_at = now(),
             message = 'interrupted: the importing process stopped before the run ended'
         WHERE status = 'running'",
    )
    .execute(pool)
    .await?;
    if interrupted.rows_affected() > 0 {
        tracing::warn!(runs = interrupted.rows_affected(), "marked interrupted runs as failed");
    }
    publish::discard_unpublished_data(pool).await
}

/// An import that failed, with the run that recorded the failure (`None` when it failed
/// before a run existed: another import holds the lock, the database is unreachable).
#[derive(Debug)]
pub struct FailedImport {
    pub run_id: Option<i64>,
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
    created: &mut Option<i64>,
) -> Result<RunSummary, ImportError> {
    recover_interrupted(pool).await?;
    let run_id = runs::create(pool, options.source_label.as_deref().unwrap_or(location)).await?;
    *created = Some(run_id);
    tracing::info!(run_id, source = location, "import started");
    let mut facts = RunFacts {
        forced: options.force,
        ..RunFacts::default()
    };
    let outcome = run(pool, run_id, location, options, &mut facts).await;
    let result = match outcome {
        Ok((status, message)) => {
            if status != "published" {
                runs::record(pool, run_id, status, &facts, message.as_deref()).await?;
            }
            tracing::info!(
                run_id,
                status,
                message = message.as_deref().unwrap_or(""),
                "import ended"
            );
            Ok(())
        }
        Err(error) => {
            tracing::error!(run_id, %error, "import failed");
            let status = if matches!(error, ImportError::Cancelled) {
                "cancelled"
            } else {
                "failed"
            };
            runs::record(pool, run_id, status, &facts, Some(&error.to_string())).await?;
            publish::discard_unpublished_data(pool).await?;
            Err(error)
        }
    };
    // Staged lines are only needed while the run works; keep the space free in between.
    let truncated = sqlx::query("TRUNCATE stage_line, stage_build").execute(pool).await;
    result?;
    truncated?;
    runs::get(pool, run_id).await?.ok_or(ImportError::NoSuchRun(run_id))
}

fn elapsed_ms(facts: &mut RunFacts, phase: &str, started: Instant) {
    facts.phases.insert(
        phase.to_owned(),
        serde_json::json!(started.elapsed().as_millis() as u64),
    );
}

async fn run(
    pool: &PgPool,
    run_id: i64,
    location: &str,
    options: &ImportOptions,
    facts: &mut RunFacts,
) -> Result<(&'static str, Option<String>), ImportError> {
    let started = Instant::now();
    let local = download::fetch_if_remote(location, &options.download_dir, options.downloader.as_ref()).await?;
    elapsed_ms(facts, "download", started);

    let started = Instant::now();
    let path = local.path().to_owned();
    let source = Arc::new(tokio::task::spawn_blocking(move || Source::open(&path)).await??);
    facts.source = Some(options.source_label.clone().unwrap_or_else(|| location.to_owned()));
    facts.extract_ts = source.extract_timestamp();
    facts.has_directory = source.file(FileKind::PersonneActivite).is_some();
    facts.has_mailboxes = source.file(FileKind::MsSante).is_some();
    if !facts.has_directory
        && (source.file(FileKind::SavoirFaire).is_some() || source.file(FileKind::DiplAutExerc).is_some())
    {
        return Err(ExtractError::Source {
            path: location.to_owned(),
            reason: "has SavoirFaire or Dipl_AutExerc files but no Personne_activite file".to_owned(),
        }
        .into());
    }
    let for_checksum = Arc::clone(&source);
    let checksum = tokio::task::spawn_blocking(move || for_checksum.checksum()).await??;
    facts.checksum = Some(checksum.clone());
    if let Some(published) = runs::published_with_checksum(pool, &checksum).await? {
        return Ok((
            "skipped",
            Some(format!(
                "same extract as published run {published} (checksum {checksum})"
            )),
        ));
    }
    if let Some(held) = runs::held_with_checksum(pool, &checksum).await? {
        return Ok((
            "skipped",
            Some(format!(
                "same extract as held run {held}: approve it with `annuaire imports approve {held}`"
            )),
        ));
    }
    let published = runs::published_extract(pool, !facts.has_directory).await?;
    let freshness = freshness::judge(facts.extract_ts, &checksum, published.as_ref());
    checkpoint(options)?;
    stage::check_headers(Arc::clone(&source), options.max_line_bytes).await?;
    let progress = Progress::default();
    let report_guard = progress.report("reading", source.total_size());
    let mut staged = stage::stage(pool, Arc::clone(&source), options.max_line_bytes, progress).await?;
    drop(report_guard);
    facts.files = std::mem::take(&mut staged.files);
    facts.lines_read = staged.lines;
    facts.rejected = staged.rejected;
    runs::insert_rejects(pool, run_id, &staged.kept_rejects).await?;
    elapsed_ms(facts, "read_stage", started);
    check_rejects(facts, options)?;

    checkpoint(options)?;
    let mut hold_reason = None;
    let mut document_note = None;
    if facts.has_directory {
        let started = Instant::now();
        facts.base_run_id = runs::current_generation(pool).await?;
        let published = build::load_published(pool).await?;
        let plan = diff::plan(staged.hashes, published.hashes, published.counts);
        publish::record_removals(pool, run_id, &plan.removed).await?;
        let mut counts = plan.counts;
        facts.professionals = Some(plan.professionals);
        facts.added = Some(counts.total(|c| c.added));
        facts.changed = Some(counts.total(|c| c.changed));
        facts.removed = Some(counts.total(|c| c.removed));
        facts.gate = Some(serde_json::to_value(counts).map_err(ImportError::internal)?);
        if plan.orphans > 0 {
            tracing::warn!(
                run_id,
                professionals = plan.orphans,
                "savoir-faire or diploma lines without a Personne_activite line ignored"
            );
        }
        elapsed_ms(facts, "diff", started);
        let started = Instant::now();
        let samples = std::mem::take(&mut staged.samples);
        let dictionary = build::dictionary(pool, run_id, published.dictionary, samples).await?;
        let pa_file = source.file(FileKind::PersonneActivite).map(|f| f.name.clone());
        let built = build::build(pool, run_id, plan, dictionary, pa_file.unwrap_or_default()).await?;
        tracing::info!(run_id, records = built.records, "records built");
        elapsed_ms(facts, "build", started);
        // Oversized documents are known only now: the gate and the reject limit judge the
        // counts without them.
        document_note = build::account_rejected(pool, run_id, facts, &mut counts, built.rejected).await?;
        check_rejects(facts, options)?;
        hold_reason = gate::evaluate(&counts, options.gate);
    }
    if facts.has_mailboxes {
        facts.mailboxes = Some(publish::build_mailboxes(pool, run_id).await?);
    }
    let mut holds = Vec::new();
    let mut note = None;
    match freshness {
        freshness::Freshness::Fresh => {}
        freshness::Freshness::Unguarded(text) => note = Some(text),
        freshness::Freshness::Stale(reason) => holds.push(reason),
    }
    if let Some(reason) = hold_reason {
        holds.push(format!("held by the safety gate: {reason}"));
    }
    if !holds.is_empty() {
        let reasons = holds.join("; ");
        if !options.force {
            // The run is complete (records built, counts kept): approving it publishes it.
            return Ok((
                "held",
                Some(format!(
                    "{reasons}; publish it with `annuaire imports approve {run_id}` or import with --force{}",
                    document_note.map(|n| format!("; {n}")).unwrap_or_default()
                )),
            ));
        }
        tracing::warn!(run_id, %reasons, "freshness guard or safety gate overridden by --force");
        note = Some(format!("published with --force despite: {reasons}"));
    }
    checkpoint(options)?;
    let started = Instant::now();
    // The facts are written first so that the published run is complete the moment it
    // becomes visible.
    runs::record(pool, run_id, "running", facts, document_note.as_deref()).await?;
    let changed_at = facts.extract_ts.unwrap_or_else(chrono::Utc::now);
    publish::publish(pool, run_id, facts.has_directory, facts.has_mailboxes, changed_at).await?;
    elapsed_ms(facts, "publish", started);
    // The freshness or force note and the rejected-documents note, when there are.
    let note = match (note, document_note) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    };
    runs::record(pool, run_id, "published", facts, note.as_deref()).await?;
    Ok(("published", note))
}

/// Fails the run when too large a share of the lines read was rejected.
fn check_rejects(facts: &RunFacts, options: &ImportOptions) -> Result<(), ImportError> {
    let (rejected, lines) = (facts.rejected, facts.lines_read);
    let pct = if lines == 0 {
        0.0
    } else {
        rejected as f64 * 100.0 / lines as f64
    };
    if pct > options.max_reject_pct {
        return Err(ImportError::TooManyRejects {
            rejected,
            lines,
            pct,
            max: options.max_reject_pct,
        });
    }
    Ok(())
}

/// A safe point: nothing is published yet, so stopping here changes nothing readers see.
fn checkpoint(options: &ImportOptions) -> Result<(), ImportError> {
    if options.cancel.is_cancelled() {
        Err(ImportError::Cancelled)
    } else {
        Ok(())
    }
}

/// Publishes a held run, if the generation it was compared with is still the published one.
pub async fn approve(pool: &PgPool, run_id: i64) -> Result<RunSummary, ImportError> {
    let lock = AdvisoryLock::try_acquire(pool, IMPORT_LOCK_KEY)
        .await?
        .ok_or(ImportError::Busy)?;
    let result = approve_locked(pool, run_id).await;
    lock.release().await;
    result
}

async fn approve_locked(pool: &PgPool, run_id: i64) -> Result<RunSummary, ImportError> {
    let run = runs::get(pool, run_id).await?.ok_or(ImportError::NoSuchRun(run_id))?;
    if run.status != "held" {
        return Err(ImportError::NotHeld {
            run: run_id,
            status: run.status,
        });
    }
    let flags: (bool, bool) = sqlx::query_as("SELECT has_directory, has_mailboxes FROM import_run WHERE id = $1")
        .bind(run_id)
        .fetch_one(pool)
        .await?;
    let current = runs::current_generation(pool).await?;
    // A mailbox set replaces the published one whole (no diff): only a directory run
    // depends on the generation it was compared with.
    if flags.0 && current != run.base_run_id {
        let name = |id: Option<i64>| id.map_or("none".to_owned(), |i| i.to_string());
        return Err(ImportError::StaleApproval {
            run: run_id,
            base: name(run.base_run_id),
            current: name(current),
        });
    }
    let changed_at = run.extract_ts.unwrap_or_else(chrono::Utc::now);
    publish::publish(pool, run_id, flags.0, flags.1, changed_at).await?;
    sqlx::query("UPDATE import_run SET message = coalesce(message, '') || ' (approved)' WHERE id = $1")
        .bind(run_id)
        .execute(pool)
        .await?;
    tracing::info!(run_id, "held run approved and published");
    runs::get(pool, run_id).await?.ok_or(ImportError::NoSuchRun(run_id))
}
