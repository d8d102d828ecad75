//! One import run as its stages, each a function with a typed result: open the source,
//! skip it if it is known, read and stage it, diff it and judge it by the safety gate,
//! build the records, decide, publish. The facts learned on the way go into the run record.

use std::sync::Arc;
use std::time::Instant;

use sqlx::PgPool;

use super::build::{self, workers::Dictionary, workers::RejectedDocuments};
use super::diff::{self, Plan};
use super::freshness::{self, Freshness};
use super::gate::{self, DiffCounts};
use super::stage::{self, StageReport};
use super::{ImportError, ImportOptions, publish};
use crate::download::{self, LocalSource};
use crate::extract::{ExtractError, FileKind, Source};
use crate::progress::Progress;
use crate::store::publication;
use crate::store::runs::{self, RunContents, RunFacts};
use crate::store::{RunId, RunStatus, codec, mailboxes};

/// How a run that did not fail ended: published, held or skipped, and why.
#[derive(Debug)]
pub struct Ended {
    pub status: RunStatus,
    pub message: Option<String>,
}

/// An extract ready to read: its files, its checksum, and the download it lives in (kept
/// until the run ends).
struct Opened {
    source: Arc<Source>,
    checksum: String,
    /// When the reading began (after the download): the `read_stage` phase's start.
    started: Instant,
    _local: LocalSource,
}

/// What the diff found, for the build.
struct Diffed {
    plan: Plan,
    counts: DiffCounts,
    dictionary: Dictionary,
}

/// What the gate needs to know once the records and the mailbox set are built.
#[derive(Default)]
struct Judged {
    /// Why the safety gate holds the run's directory part, if it does.
    hold_reason: Option<String>,
    /// Why the safety gate holds the run's mailbox set, if it does.
    mailbox_hold_reason: Option<String>,
    /// The professionals refused for the size of their documents, as a sentence.
    document_note: Option<String>,
}

/// Runs the stages of the import of `location` as run `run_id`.
pub(super) async fn run(
    pool: &PgPool,
    run_id: RunId,
    location: &str,
    options: &ImportOptions,
    facts: &mut RunFacts,
) -> Result<Ended, ImportError> {
    let opened = open_source(location, options, facts).await?;
    let freshness = match skip_if_known(pool, &opened.checksum, facts).await? {
        Ok(freshness) => freshness,
        Err(skipped) => return Ok(skipped),
    };
    checkpoint(options)?;
    // The published hashes the diff compares with load while the extract is read: the
    // import lock keeps the published generation as it is until this run ends.
    let has_directory = facts.has_directory;
    let (staged, published) = tokio::join!(read_and_stage(pool, run_id, &opened, options, facts), async {
        if has_directory {
            Some(build::load_published(pool).await)
        } else {
            None
        }
    });
    let staged = staged?;
    checkpoint(options)?;
    let mut judged = if let Some(published) = published {
        let diffed = diff_and_gate(pool, run_id, &staged.hashes, published?, facts).await?;
        build(pool, run_id, &opened, diffed, staged, facts, options).await?
    } else {
        Judged::default()
    };
    if facts.has_mailboxes {
        judged.mailbox_hold_reason = build_mailboxes(pool, run_id, facts, options).await?;
    }
    let note = match decide(run_id, freshness, &judged, options) {
        Err(held) => return Ok(held),
        Ok(note) => note,
    };
    checkpoint(options)?;
    publish_run(pool, run_id, facts, note, judged.document_note).await
}

/// Downloads the extract if it is remote, opens it, and learns what it holds.
async fn open_source(location: &str, options: &ImportOptions, facts: &mut RunFacts) -> Result<Opened, ImportError> {
    let started = Instant::now();
    let local = download::fetch_if_remote(location, &options.work_dir, options.downloader.as_ref()).await?;
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
    // A download was hashed as it arrived: reading the zip again would only cost time.
    let known = local.sha256().or(options.known_sha256.as_deref()).map(str::to_owned);
    let checksum = match known {
        Some(checksum) => checksum,
        None => {
            let for_checksum = Arc::clone(&source);
            tokio::task::spawn_blocking(move || for_checksum.checksum()).await??
        }
    };
    facts.checksum = Some(checksum.clone());
    Ok(Opened {
        source,
        checksum,
        started,
        _local: local,
    })
}

/// `Err` with the skipped run's ending when this very extract is published or held;
/// otherwise how it compares with the published one.
async fn skip_if_known(
    pool: &PgPool,
    checksum: &str,
    facts: &RunFacts,
) -> Result<Result<Freshness, Ended>, ImportError> {
    let skipped = |message: String| {
        Err(Ended {
            status: RunStatus::Skipped,
            message: Some(message),
        })
    };
    if let Some(published) = runs::published_with_checksum(pool, checksum).await? {
        return Ok(skipped(format!(
            "same extract as published run {published} (checksum {checksum})"
        )));
    }
    if let Some(held) = runs::held_with_checksum(pool, checksum).await? {
        return Ok(skipped(format!(
            "same extract as held run {held}: approve it with `annuaire imports approve {held}`"
        )));
    }
    let published = runs::published_extract(pool, !facts.has_directory).await?;
    Ok(Ok(freshness::judge(facts.extract_ts, checksum, published.as_ref())))
}

/// Checks the headers, then reads every file into the staging table; fails the run when
/// too many lines are rejected.
async fn read_and_stage(
    pool: &PgPool,
    run_id: RunId,
    opened: &Opened,
    options: &ImportOptions,
    facts: &mut RunFacts,
) -> Result<StageReport, ImportError> {
    let source = &opened.source;
    stage::check_headers(Arc::clone(source), options.max_line_bytes).await?;
    let progress = Progress::default();
    let report_guard = progress.report("reading", source.total_size());
    let mut staged = stage::stage(
        pool,
        Arc::clone(source),
        options.max_line_bytes,
        &options.work_dir,
        progress,
    )
    .await?;
    drop(report_guard);
    facts.files = std::mem::take(&mut staged.files);
    facts.lines_read = staged.lines;
    facts.rejected = staged.rejected;
    runs::insert_rejects(pool, run_id, &staged.kept_rejects).await?;
    elapsed_ms(facts, "read_stage", opened.started);
    check_rejects(facts, options)?;
    Ok(staged)
}

/// Compares the staged extract with the published generation and records its removals.
async fn diff_and_gate(
    pool: &PgPool,
    run_id: RunId,
    hashes: &diff::StagedHashes,
    published: build::Published,
    facts: &mut RunFacts,
) -> Result<Diffed, ImportError> {
    let started = Instant::now();
    facts.base_run_id = runs::current_generation(pool).await?;
    let plan = diff::plan(hashes, published.hashes, published.counts);
    publication::record_removals(&mut *pool.acquire().await?, run_id, &plan.removed).await?;
    let counts = plan.counts;
    facts.professionals = Some(plan.professionals);
    facts.added = Some(counts.total(|c| c.added));
    facts.changed = Some(counts.total(|c| c.changed));
    facts.removed = Some(counts.total(|c| c.removed));
    facts.gate = Some(serde_json::to_value(counts).map_err(ImportError::internal)?);
    if plan.orphans > 0 {
        tracing::warn!(
            %run_id,
            professionals = plan.orphans,
            "savoir-faire or diploma lines without a Personne_activite line ignored"
        );
    }
    elapsed_ms(facts, "diff", started);
    Ok(Diffed {
        plan,
        counts,
        dictionary: published.dictionary,
    })
}

/// Builds the records of the added and changed professionals, then judges the counts by
/// the reject limit and the safety gate (oversized documents are known only now).
async fn build(
    pool: &PgPool,
    run_id: RunId,
    opened: &Opened,
    diffed: Diffed,
    staged: StageReport,
    facts: &mut RunFacts,
    options: &ImportOptions,
) -> Result<Judged, ImportError> {
    let started = Instant::now();
    let Diffed {
        plan,
        mut counts,
        dictionary,
    } = diffed;
    let StageReport {
        hashes,
        spilled,
        samples,
        ..
    } = staged;
    let spilled = spilled.ok_or_else(|| ImportError::internal("directory lines read but not kept"))?;
    let dictionary = build::dictionary(pool, run_id, dictionary, samples).await?;
    let pa_file = opened.source.file(FileKind::PersonneActivite).map(|f| f.name.clone());
    let input = build::Input { plan, hashes, spilled };
    let built = build::build(pool, run_id, input, dictionary, pa_file.unwrap_or_default()).await?;
    tracing::info!(%run_id, records = built.records, "records built");
    elapsed_ms(facts, "build", started);
    let document_note = account_rejected(pool, run_id, facts, &mut counts, built.rejected).await?;
    check_rejects(facts, options)?;
    Ok(Judged {
        hold_reason: gate::evaluate(&counts, options.gate),
        document_note,
        ..Judged::default()
    })
}

/// Builds the run's mailbox set and judges it against the published one: the removal
/// threshold applies to distinct addresses. Its figures join the run's gate figures.
async fn build_mailboxes(
    pool: &PgPool,
    run_id: RunId,
    facts: &mut RunFacts,
    options: &ImportOptions,
) -> Result<Option<String>, ImportError> {
    facts.mailboxes = Some(mailboxes::build(pool, run_id).await?);
    let counts = mailboxes::compare(pool, run_id).await?;
    let figures = serde_json::to_value(counts).map_err(ImportError::internal)?;
    match facts.gate.get_or_insert_with(|| serde_json::json!({})) {
        serde_json::Value::Object(gate) => {
            gate.insert("mailboxes".to_owned(), figures);
        }
        other => {
            return Err(ImportError::internal(format!(
                "gate figures are not an object: {other}"
            )));
        }
    }
    Ok(gate::evaluate_mailboxes(&counts, options.gate))
}

/// Accounts for the professionals whose document was over the size limit: out of the
/// diff's added and changed, counted apart in the gate and in the run's rejected lines,
/// their rejects kept. Returns the sentence the run record carries, if any were.
async fn account_rejected(
    pool: &PgPool,
    run_id: RunId,
    facts: &mut RunFacts,
    counts: &mut DiffCounts,
    rejected: RejectedDocuments,
) -> Result<Option<String>, ImportError> {
    let total = rejected.total();
    if total == 0 {
        return Ok(None);
    }
    counts.exclude_rejected(&rejected.counts);
    facts.added = Some(counts.total(|c| c.added));
    facts.changed = Some(counts.total(|c| c.changed));
    facts.gate = Some(serde_json::to_value(*counts).map_err(ImportError::internal)?);
    facts.rejected += total;
    runs::insert_rejects(pool, run_id, &rejected.kept).await?;
    tracing::warn!(%run_id, professionals = total, "documents over the size limit rejected");
    Ok(Some(format!(
        "{total} professionals not published: their document would be over the {}-byte limit \
         (those already published keep their previous version; new ones are not added)",
        codec::MAX_DOCUMENT_BYTES
    )))
}

/// Publish or hold: `Err` with the held run's ending, else the note the published run
/// carries (the freshness guard's, or the forced publication's).
fn decide(
    run_id: RunId,
    freshness: Freshness,
    judged: &Judged,
    options: &ImportOptions,
) -> Result<Option<String>, Ended> {
    let mut holds = Vec::new();
    let mut note = None;
    match freshness {
        Freshness::Fresh => {}
        Freshness::Unguarded(text) => note = Some(text),
        Freshness::Stale(reason) => holds.push(reason),
    }
    let gate_reasons: Vec<&str> = [&judged.hold_reason, &judged.mailbox_hold_reason]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if !gate_reasons.is_empty() {
        holds.push(format!("held by the safety gate: {}", gate_reasons.join("; ")));
    }
    if holds.is_empty() {
        return Ok(note);
    }
    let reasons = holds.join("; ");
    if !options.force {
        // The run is complete (records built, counts kept): approving it publishes it.
        return Err(Ended {
            status: RunStatus::Held,
            message: Some(format!(
                "{reasons}; publish it with `annuaire imports approve {run_id}` or import with --force{}",
                judged
                    .document_note
                    .as_ref()
                    .map(|n| format!("; {n}"))
                    .unwrap_or_default()
            )),
        });
    }
    tracing::warn!(%run_id, %reasons, "freshness guard or safety gate overridden by --force");
    Ok(Some(format!("published with --force despite: {reasons}")))
}

/// Publishes the run and records it published with its notes.
async fn publish_run(
    pool: &PgPool,
    run_id: RunId,
    facts: &mut RunFacts,
    note: Option<String>,
    document_note: Option<String>,
) -> Result<Ended, ImportError> {
    let started = Instant::now();
    // The facts are written first so that the published run is complete the moment it
    // becomes visible.
    runs::record(pool, run_id, RunStatus::Running, facts, document_note.as_deref()).await?;
    let changed_at = facts.extract_ts.unwrap_or_else(chrono::Utc::now);
    let contents = RunContents {
        has_directory: facts.has_directory,
        has_mailboxes: facts.has_mailboxes,
    };
    publish::publish(pool, run_id, contents, changed_at).await?;
    elapsed_ms(facts, "publish", started);
    // The freshness or force note and the rejected-documents note, when there are.
    let note = match (note, document_note) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    };
    runs::record(pool, run_id, RunStatus::Published, facts, note.as_deref()).await?;
    Ok(Ended {
        status: RunStatus::Published,
        message: note,
    })
}

fn elapsed_ms(facts: &mut RunFacts, phase: &str, started: Instant) {
    facts.phases.insert(
        phase.to_owned(),
        serde_json::json!(started.elapsed().as_millis() as u64),
    );
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
