//! The full export: the published generation as NDJSON, one professional a line
//! (`{"national_id", "removed_at", "claims"}`, the claims document as served, removed
//! professionals with their last one), optionally gzip-compressed. For systems downstream:
//! one export, then the change feed from the export's cursor, leaves no gap.
//!
//! The work (reading one consistent generation, decompressing, formatting, compressing)
//! runs on a niced thread of its own with its own connection (`priority::run_niced`), never
//! on a server's workers; its output comes in chunks over a bounded channel, so memory is
//! a few chunks whatever the size, and a reader that goes away stops it. So does one that
//! stays but takes nothing for a while (`stall`): the export's transaction would pin
//! Postgres's xmin horizon, and its slot every other export, for as long as it stayed.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use crate::store::codec::Decompressors;
use crate::store::feed::Position;
use crate::store::published::{self, Extras};
use crate::store::{RunId, professionals::LookupError};

/// Uncompressed bytes per chunk sent.
const CHUNK_BYTES: usize = 256 << 10;
/// Chunks in flight between the export's thread and its reader.
const CHUNKS_IN_FLIGHT: usize = 8;
/// Below the claims path, as the imports are.
const EXPORT_NICE: i32 = 10;
/// How long an export waits for its reader to take a chunk before it ends.
pub const DEFAULT_STALL: Duration = Duration::from_secs(30);

/// What the export is of, known before its first line.
#[derive(Debug, Clone, Serialize)]
pub struct ExportHead {
    pub generation: RunId,
    pub extract_ts: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
    /// Where the data come from and how fresh: "RPPS (ANS), extrait du 2026-11-26".
    pub source: String,
    /// The change feed's cursor after this generation: `GET /v1/changes?since=` it.
    pub changes_cursor: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("nothing is published yet")]
    NothingPublished,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Read(#[from] published::ReadError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("the export's thread: {0}")]
    Thread(#[from] crate::priority::NicedError),
    #[error("compressing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("the export's reader took nothing for {0:?}")]
    Stalled(Duration),
}

/// An export under way: its head, then its chunks (`Err` once, if it fails midway), then
/// `done` with the number of professionals written. Chunks that end without `done` are an
/// export cut short (its thread died): never a complete one.
pub struct Export {
    pub head: ExportHead,
    pub chunks: mpsc::Receiver<Result<Bytes, ExportError>>,
    pub done: oneshot::Receiver<u64>,
}

/// Starts an export of the published generation of the database `options` reach. It ends
/// when its reader takes no chunk for `stall`; `slot` is held until its work ends (its
/// transaction with it), whatever its reader does afterwards.
pub async fn start(
    options: PgConnectOptions,
    gzip: bool,
    stall: Duration,
    slot: Option<OwnedSemaphorePermit>,
) -> Result<Export, ExportError> {
    let (head_tx, head_rx) = oneshot::channel();
    let (chunk_tx, chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (done_tx, done) = oneshot::channel();
    let work = crate::priority::run_niced(EXPORT_NICE, "annuaire-export", move || async move {
        let result = produce(options, gzip, stall, head_tx, &chunk_tx, done_tx).await;
        // The connection is closed: the slot goes now, not when a stuck reader lets go of
        // its end of the channel (a socket that is never read may stay open for hours).
        drop(slot);
        match result {
            Ok(()) => {}
            // Its channel is full and nobody reads it: the reader, if it ever reads again,
            // finds the chunks end without `done`, a cut export.
            Err(e @ ExportError::Stalled(_)) => tracing::warn!(error = %e, "export ended"),
            // The head was sent or not: the reader learns of the failure either way, if it
            // reads.
            Err(e) => {
                let _ = tokio::time::timeout(stall, chunk_tx.send(Err(e))).await;
            }
        }
    });
    tokio::spawn(async move {
        if let Err(e) = work.await {
            tracing::error!(error = %e, "the export's thread failed");
        }
    });
    match head_rx.await {
        Ok(head) => Ok(Export { head, chunks, done }),
        // No head: the failure is the first (and only) chunk.
        Err(_) => {
            let mut chunks = chunks;
            Err(match chunks.recv().await {
                Some(Err(e)) => e,
                _ => ExportError::Thread(crate::priority::NicedError::Lost),
            })
        }
    }
}

async fn produce(
    options: PgConnectOptions,
    gzip: bool,
    stall: Duration,
    head_tx: oneshot::Sender<ExportHead>,
    chunk_tx: &mpsc::Sender<Result<Bytes, ExportError>>,
    done: oneshot::Sender<u64>,
) -> Result<(), ExportError> {
    let mut conn = PgConnection::connect_with(&options).await?;
    let mut tx = conn.begin().await?;
    // One generation throughout: the head, the cursor and every line.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let publication = published::publication(&mut *tx).await?;
    let generation = publication.generation.ok_or(ExportError::NothingPublished)?;
    let last = crate::store::feed::last_change(&mut *tx, generation).await?;
    let head = ExportHead {
        generation,
        extract_ts: publication.extract_ts,
        published_at: publication.published_at,
        source: source_line(publication.extract_ts),
        changes_cursor: last.map(|p: Position| p.cursor()).unwrap_or_default(),
    };
    let dictionaries: HashMap<RunId, Vec<u8>> = published::dictionaries(&mut *tx, &[]).await?.into_iter().collect();
    if head_tx.send(head).is_err() {
        return Ok(());
    }
    let mut records = published::current_records(&mut tx, None, Extras::default()).await?;
    let mut decompressors = Decompressors::default();
    let mut out = Output::new(gzip);
    let mut written = 0u64;
    while let Some(record) = records.next().await? {
        let national_id = String::from_utf8_lossy(&record.national_id);
        let dictionary = record
            .dictionary
            .and_then(|run| dictionaries.get(&run).map(|d| (run, d.as_slice())));
        let claims = decompressors
            .decompress(&record.claims_zst, dictionary)
            .map_err(|e| LookupError::Corrupt(national_id.to_string(), e))?;
        out.line(&national_id, record.removed_at, &claims)?;
        written += 1;
        if out.pending() >= CHUNK_BYTES && !hand(chunk_tx, out.take()?, stall).await? {
            // The reader went away: nothing more to do.
            return Ok(());
        }
    }
    let last = out.finish()?;
    if !last.is_empty() && !hand(chunk_tx, last, stall).await? {
        return Ok(());
    }
    let _ = done.send(written);
    Ok(())
}

/// Hands a chunk to the reader: `false` when it went away, `Stalled` when it took nothing
/// for `stall` (the wait is here, where the export blocks, since a reader stuck on a full
/// socket is never polled and cannot notice anything itself).
async fn hand(
    chunk_tx: &mpsc::Sender<Result<Bytes, ExportError>>,
    chunk: Bytes,
    stall: Duration,
) -> Result<bool, ExportError> {
    match tokio::time::timeout(stall, chunk_tx.send(Ok(chunk))).await {
        Ok(sent) => Ok(sent.is_ok()),
        Err(_) => Err(ExportError::Stalled(stall)),
    }
}

/// "RPPS (ANS), extrait du 2026-11-26" (the extract's date in Paris time).
pub fn source_line(extract_ts: Option<DateTime<Utc>>) -> String {
    match extract_ts {
        Some(ts) => format!(
            "RPPS (ANS), extrait du {}",
            ts.with_timezone(&chrono_tz::Europe::Paris).format("%Y-%m-%d")
        ),
        None => "RPPS (ANS), date d'extrait inconnue".to_owned(),
    }
}

/// Lines, gzip-compressed or not, handed out a chunk at a time.
struct Output {
    plain: Vec<u8>,
    gzip: Option<GzEncoder<Vec<u8>>>,
}

impl Output {
    fn new(gzip: bool) -> Output {
        Output {
            plain: Vec::with_capacity(CHUNK_BYTES + (64 << 10)),
            // Fast: the export is read once and moved over a network.
            gzip: gzip.then(|| GzEncoder::new(Vec::with_capacity(CHUNK_BYTES), Compression::fast())),
        }
    }

    fn line(&mut self, national_id: &str, removed_at: Option<i64>, claims: &[u8]) -> std::io::Result<()> {
        // The id is digits and the claims are stored JSON: written as they are.
        self.plain.extend_from_slice(b"{\"national_id\":");
        serde_json::to_writer(&mut self.plain, national_id)?;
        self.plain.extend_from_slice(b",\"removed_at\":");
        match removed_at.and_then(|s| DateTime::from_timestamp(s, 0)) {
            Some(at) => serde_json::to_writer(&mut self.plain, &at)?,
            None => self.plain.extend_from_slice(b"null"),
        }
        self.plain.extend_from_slice(b",\"claims\":");
        self.plain.extend_from_slice(claims);
        self.plain.extend_from_slice(b"}\n");
        Ok(())
    }

    fn pending(&self) -> usize {
        self.plain.len()
    }

    fn take(&mut self) -> std::io::Result<Bytes> {
        let plain = std::mem::take(&mut self.plain);
        self.plain.reserve(CHUNK_BYTES + (64 << 10));
        match &mut self.gzip {
            None => Ok(Bytes::from(plain)),
            Some(encoder) => {
                encoder.write_all(&plain)?;
                Ok(Bytes::from(std::mem::take(encoder.get_mut())))
            }
        }
    }

    fn finish(mut self) -> std::io::Result<Bytes> {
        let rest = self.take()?;
        match self.gzip {
            None => Ok(rest),
            Some(encoder) => {
                let mut tail = rest.to_vec();
                tail.extend_from_slice(&encoder.finish()?);
                Ok(Bytes::from(tail))
            }
        }
    }
}
