//! The read-and-stage stage: every file of the source is streamed through the reader on a
//! blocking thread. Directory lines go to the import's work file (`spill`), where the build
//! reads back only those of the professionals it builds; MSSanté lines are `COPY`-ed into
//! `stage_line`, where the mailbox set is built from. Memory holds about one chunk of
//! lines and, per line, its professional's slot and its offset (16 bytes), whatever the
//! file size. Each professional's content hash is summed up on the way (for the diff);
//! rejected lines are counted, and the first ones kept.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::ImportError;
use super::diff::{StagedHashes, line_hash};
use super::slots::SlotKeeper;
use super::spill::{Spill, SpillError, SpillWriter};
use crate::extract::read_ahead::read_ahead;
use crate::extract::reader::{self, Reject, RowSink};
use crate::extract::{ExtractError, FileKind, HeaderMap, Source};
use crate::national_id::PackedId;
use crate::progress::Progress;
use crate::store::codec;
use crate::store::copy::CopyEncoder;
use crate::store::runs::{KEPT_REJECTS, RejectedLine};
use crate::store::staging;

const CHUNK_BYTES: usize = 1 << 20;
/// Chunks in flight between the reader thread and the COPY: enough to keep both busy.
const CHANNEL_CHUNKS: usize = 8;

/// What staging learned of each file.
#[derive(Debug, Default)]
pub struct StageReport {
    pub files: Vec<serde_json::Value>,
    pub lines: i64,
    pub rejected: i64,
    pub kept_rejects: Vec<RejectedLine>,
    pub hashes: StagedHashes,
    /// The directory lines read (not MSSanté), and where each is: its professional's slot
    /// in `hashes` and its offset in their partition of the spill, in reading order.
    pub spilled: Option<SpilledLines>,
    /// The first Personne_activite lines (national id, line), to train a compression
    /// dictionary on when the store has none.
    pub samples: Vec<(String, String)>,
}

/// The directory lines, kept for the build.
pub struct SpilledLines {
    pub spill: Spill,
    pub lines: Vec<(u32, u64)>,
}

impl std::fmt::Debug for SpilledLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SpilledLines({} lines)", self.lines.len())
    }
}

/// Checks every file's header before anything is written, so that a missing column fails
/// the run with nothing staged.
pub async fn check_headers(source: Arc<Source>, max_line_bytes: usize) -> Result<Vec<HeaderMap>, ImportError> {
    tokio::task::spawn_blocking(move || {
        source
            .files
            .iter()
            .map(|file| source.with_reader(file, |r| reader::read_header(file.kind, &file.name, r, max_line_bytes)))
            .collect::<Result<Vec<_>, ExtractError>>()
    })
    .await?
    .map_err(ImportError::from)
}

/// Stages every file, the directory lines into a work file in `work_dir`; lines longer
/// than `max_line_bytes` are rejected, never held whole.
pub async fn stage(
    pool: &PgPool,
    source: Arc<Source>,
    max_line_bytes: usize,
    work_dir: &Path,
    progress: Progress,
) -> Result<StageReport, ImportError> {
    staging::clear(pool).await?;
    let spill = SpillWriter::create(work_dir, source.total_size())?;
    let mut conn = pool.acquire().await?;
    let mut copy = staging::copy_lines(&mut conn).await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let reading = tokio::task::spawn_blocking(move || read_all(&source, max_line_bytes, spill, tx, &progress));
    let mut send_error = None;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = copy.send(chunk).await {
            send_error = Some(e);
            break;
        }
    }
    // Dropping the receiver makes the reader stop at its next chunk.
    drop(rx);
    let read_result = reading.await?;
    match (send_error, read_result) {
        (None, Ok(report)) => {
            copy.finish().await?;
            Ok(report)
        }
        (Some(db_error), _) => {
            let _ = copy.abort("staging failed").await;
            Err(db_error.into())
        }
        (None, Err(read_error)) => {
            let _ = copy.abort("extract unreadable").await;
            Err(read_error)
        }
    }
}

fn read_all(
    source: &Source,
    max_line_bytes: usize,
    spill: SpillWriter,
    tx: mpsc::Sender<Bytes>,
    progress: &Progress,
) -> Result<StageReport, ImportError> {
    let mut sink = StageSink {
        encoder: CopyEncoder::new(CHUNK_BYTES),
        spill,
        slots: SlotKeeper::start().map_err(|e| ImportError::internal(format!("cannot start the slot keeper: {e}")))?,
        spill_failure: None,
        tx,
        kind: FileKind::PersonneActivite,
        file_name: String::new(),
        report: StageReport::default(),
    };
    for file in &source.files {
        sink.kind = file.kind;
        sink.file_name = file.name.clone();
        let read = source.with_reader(file, |r| {
            let mut counted = progress.counting(r);
            read_ahead(&mut counted, |r| {
                reader::read_file(file.kind, &file.name, r, max_line_bytes, &mut sink)
            })
        });
        if let Some(failure) = sink.spill_failure.take() {
            return Err(failure.into());
        }
        let stats = read?;
        tracing::info!(file = %file.name, lines = stats.lines, rejected = stats.rejected, columns = stats.columns, "file read");
        if !stats.unknown_columns.is_empty() {
            tracing::warn!(file = %file.name, columns = ?stats.unknown_columns, "unknown columns ignored");
        }
        sink.report.lines += stats.lines as i64;
        sink.report.rejected += stats.rejected as i64;
        sink.report.files.push(serde_json::json!({
            "kind": file.kind.label(),
            "name": file.name,
            "lines": stats.lines,
            "rows": stats.rows,
            "rejected": stats.rejected,
            "columns": stats.columns,
            "unknown_columns": stats.unknown_columns,
        }));
    }
    let StageSink {
        encoder,
        spill,
        slots,
        tx,
        mut report,
        ..
    } = sink;
    tx.blocking_send(encoder.finish()).map_err(|_| stopped())?;
    let tally = slots.finish().map_err(ImportError::internal)?;
    report.hashes = tally.hashes;
    report.spilled = Some(SpilledLines {
        spill: spill.finish()?,
        lines: tally.lines,
    });
    Ok(report)
}

fn slots_stopped(e: super::slots::Stopped) -> ExtractError {
    ExtractError::Stopped(e.to_string())
}

fn stopped() -> ExtractError {
    ExtractError::Stopped("the database stopped accepting staged rows".to_owned())
}

struct StageSink {
    /// MSSanté lines, `COPY`-ed into `stage_line`.
    encoder: CopyEncoder,
    /// Directory lines.
    spill: SpillWriter,
    /// Where each line's hash and place go.
    slots: SlotKeeper,
    /// Why the work file could not be written (the reader only knows it stopped).
    spill_failure: Option<SpillError>,
    tx: mpsc::Sender<Bytes>,
    kind: FileKind,
    file_name: String,
    report: StageReport,
}

impl RowSink for StageSink {
    fn row(&mut self, line: u64, fields: &[&str]) -> Result<(), ExtractError> {
        let national_id = fields[self.kind.national_id_column()];
        if self.kind == FileKind::MsSante {
            self.encoder
                .row(4)
                .int2(self.kind.code())
                .int8(line as i64)
                .text(national_id)
                .joined_text(fields, b'|');
            if let Some(chunk) = self.encoder.take_full_chunk() {
                self.tx.blocking_send(chunk).map_err(|_| stopped())?;
            }
            return Ok(());
        }
        let id = PackedId::of(national_id.as_bytes());
        let (offset, joined) = match self.spill.push(id, self.kind, line, fields) {
            Ok(pushed) => pushed,
            Err(e) => {
                self.spill_failure = Some(e);
                return Err(ExtractError::Stopped("the import's work file failed".to_owned()));
            }
        };
        let hash = line_hash(self.kind, joined);
        self.slots.line(id, self.kind, hash, offset).map_err(slots_stopped)?;
        if self.kind == FileKind::PersonneActivite && self.report.samples.len() < codec::TRAINING_LINES {
            self.report
                .samples
                .push((national_id.to_owned(), String::from_utf8_lossy(joined).into_owned()));
        }
        Ok(())
    }

    fn reject(&mut self, reject: Reject) -> Result<(), ExtractError> {
        tracing::debug!(file = %self.file_name, line = reject.line, reason = %reject.reason, "line rejected");
        if let Some(id) = &reject.national_id
            && self.kind != FileKind::MsSante
        {
            self.slots.taint(PackedId::of(id.as_bytes())).map_err(slots_stopped)?;
        }
        if self.report.kept_rejects.len() < KEPT_REJECTS {
            self.report.kept_rejects.push(RejectedLine {
                file: self.file_name.clone(),
                line: reject.line as i64,
                reason: reject.reason,
                content: reject.content,
            });
        }
        Ok(())
    }
}
