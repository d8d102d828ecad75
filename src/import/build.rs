//! Build and diff in one pass: the staged lines come back sorted by professional (a server
//! side sort, so memory stays bounded whatever the file order), each professional's record
//! is hashed and compared with the published one, and only added or changed records are
//! written. Memory holds the published hashes (about 40 bytes a professional) and one
//! professional's lines.

use std::collections::HashMap;

use bytes::Bytes;
use futures::StreamExt;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::ImportError;
use super::gate::DiffCounts;
use super::record::{self, ContentHash, Lines};
use crate::extract::FileKind;
use crate::store::copy::{CopyDecoder, CopyEncoder};

const CHUNK_BYTES: usize = 1 << 20;
const CHANNEL_CHUNKS: usize = 8;
/// zstd level: 3 is its default, a fair trade of speed for size on small JSON documents.
const ZSTD_LEVEL: i32 = 3;

/// National ids are at most 12 ASCII bytes: packed into an integer they make a compact key.
fn key(national_id: &[u8]) -> u128 {
    national_id.iter().take(16).enumerate().fold(0u128, |k, (i, b)| k | (u128::from(*b) << (8 * (15 - i))))
}

fn unkey(key: u128) -> String {
    key.to_be_bytes().iter().take_while(|b| **b != 0).map(|b| char::from(*b)).collect()
}

/// The hashes of the published professionals (not removed), and how many of each type.
#[derive(Default)]
pub struct Published {
    hashes: HashMap<u128, ContentHash>,
    pub counts: DiffCounts,
}

pub async fn load_published(pool: &PgPool) -> Result<Published, ImportError> {
    let mut conn = pool.acquire().await?;
    let mut stream = conn
        .copy_out_raw(
            "COPY (SELECT national_id, content_hash FROM professional WHERE removed_at IS NULL) TO STDOUT (FORMAT binary)",
        )
        .await?;
    let mut decoder = CopyDecoder::default();
    let mut published = Published::default();
    while let Some(chunk) = stream.next().await {
        decoder.push(&chunk?);
        while let Some(row) = decoder.next_row()? {
            let (Some(id), Some(hash)) = (&row[0], &row[1]) else { continue };
            let mut content = ContentHash::default();
            content.copy_from_slice(&hash[..16.min(hash.len())]);
            published.hashes.insert(key(id), content);
            published.counts.of_type(id.first().copied().unwrap_or(b'8')).published += 1;
        }
    }
    Ok(published)
}

/// What the pass found.
#[derive(Debug, Default)]
pub struct BuildOutcome {
    pub counts: DiffCounts,
    pub professionals: i64,
    /// Professionals with savoir-faire or diploma lines but no Personne_activite line.
    pub orphans: i64,
    pub removed: Vec<String>,
}

pub async fn build(pool: &PgPool, run_id: i64, published: Published) -> Result<BuildOutcome, ImportError> {
    let mut out_conn = pool.acquire().await?;
    let mut in_conn = pool.acquire().await?;
    let mut copy_in = in_conn
        .copy_in_raw(
            "COPY professional_record (national_id, run_id, change, content_hash, family_name, given_name, claims_zst, details_zst) FROM STDIN (FORMAT binary)",
        )
        .await?;
    // "C" collation: byte order is all the grouping needs, and much cheaper than a locale.
    let mut staged = out_conn
        .copy_out_raw(
            "COPY (SELECT file, national_id, fields FROM stage_line WHERE file <> 4
                   ORDER BY national_id COLLATE \"C\", file, line_no) TO STDOUT (FORMAT binary)",
        )
        .await?;
    let (raw_tx, raw_rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let (rec_tx, mut rec_rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let builder = tokio::task::spawn_blocking(move || run_builder(run_id, published, raw_rx, rec_tx));

    let feed = async {
        while let Some(chunk) = staged.next().await {
            if raw_tx.send(chunk?).await.is_err() {
                break; // the builder stopped; its error tells why
            }
        }
        drop(raw_tx);
        Ok::<(), ImportError>(())
    };
    let write = async {
        while let Some(chunk) = rec_rx.recv().await {
            copy_in.send(chunk).await?;
        }
        Ok::<(), ImportError>(())
    };
    let (fed, written) = tokio::join!(feed, write);
    drop(staged);
    let built = builder.await?;
    let result = fed.and(written).and(built);
    match result {
        Ok(outcome) => {
            copy_in.finish().await?;
            Ok(outcome)
        }
        Err(e) => {
            let _ = copy_in.abort("build failed").await;
            // The COPY OUT may still be streaming: this connection cannot be reused.
            out_conn.close_on_drop();
            Err(e)
        }
    }
}

fn run_builder(
    run_id: i64,
    published: Published,
    mut raw_rx: mpsc::Receiver<Bytes>,
    rec_tx: mpsc::Sender<Bytes>,
) -> Result<BuildOutcome, ImportError> {
    let mut builder = Builder::new(run_id, published)?;
    let mut decoder = CopyDecoder::default();
    while let Some(chunk) = raw_rx.blocking_recv() {
        decoder.push(&chunk);
        while let Some(row) = decoder.next_row()? {
            let (Some(file), Some(id), Some(fields)) = (&row[0], &row[1], &row[2]) else { continue };
            let kind = FileKind::from_code(i16::from_be_bytes([file[0], file[1]]));
            let fields = String::from_utf8(fields.to_vec()).map_err(|_| ImportError::Internal("staged line is not UTF-8".into()))?;
            builder.push(kind, id, fields)?;
            if let Some(chunk) = builder.encoder.take_full_chunk() {
                rec_tx.blocking_send(chunk).map_err(|_| ImportError::Internal("record writer stopped".into()))?;
            }
        }
    }
    let (last_chunk, outcome) = builder.finish()?;
    rec_tx.blocking_send(last_chunk).map_err(|_| ImportError::Internal("record writer stopped".into()))?;
    Ok(outcome)
}

struct Builder {
    run_id: i64,
    published: Published,
    encoder: CopyEncoder,
    compressor: zstd::bulk::Compressor<'static>,
    current_id: Vec<u8>,
    lines: Lines,
    outcome: BuildOutcome,
}

impl Builder {
    fn new(run_id: i64, published: Published) -> Result<Builder, ImportError> {
        let compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| ImportError::Internal(e.to_string()))?;
        let counts = published.counts;
        Ok(Builder {
            run_id,
            published,
            encoder: CopyEncoder::new(CHUNK_BYTES),
            compressor,
            current_id: Vec::new(),
            lines: Lines::default(),
            outcome: BuildOutcome { counts, ..BuildOutcome::default() },
        })
    }

    fn push(&mut self, kind: Option<FileKind>, national_id: &[u8], fields: String) -> Result<(), ImportError> {
        if national_id != self.current_id.as_slice() {
            self.flush()?;
            self.current_id.clear();
            self.current_id.extend_from_slice(national_id);
        }
        if let Some(kind) = kind {
            self.lines.push(kind, fields);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ImportError> {
        if self.current_id.is_empty() {
            return Ok(());
        }
        let national_id = String::from_utf8_lossy(&self.current_id).into_owned();
        if self.lines.personne_activite.is_empty() {
            // Not a professional of this extract: if published before, they end up removed.
            self.outcome.orphans += 1;
            self.lines.clear();
            return Ok(());
        }
        self.outcome.professionals += 1;
        let hash = record::content_hash(&self.lines);
        let previous = self.published.hashes.remove(&key(&self.current_id));
        let counts = self.outcome.counts.of_type(self.current_id[0]);
        let change = match previous {
            None => {
                counts.added += 1;
                "added"
            }
            Some(old) if old != hash => {
                counts.changed += 1;
                "changed"
            }
            Some(_) => {
                counts.unchanged += 1;
                self.lines.clear();
                return Ok(());
            }
        };
        if let Some(record) = record::build(&national_id, &self.lines) {
            let claims = serde_json::to_vec(&record.claims).map_err(|e| ImportError::Internal(e.to_string()))?;
            let details = serde_json::to_vec(&record.details).map_err(|e| ImportError::Internal(e.to_string()))?;
            let claims_zst = self.compressor.compress(&claims).map_err(|e| ImportError::Internal(e.to_string()))?;
            let details_zst = self.compressor.compress(&details).map_err(|e| ImportError::Internal(e.to_string()))?;
            self.encoder
                .row(8)
                .text(&national_id)
                .int8(self.run_id)
                .text(change)
                .bytes(&hash)
                .text(&record.claims.family_name)
                .text(&record.claims.given_name)
                .bytes(&claims_zst)
                .bytes(&details_zst);
        }
        self.lines.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<(Bytes, BuildOutcome), ImportError> {
        self.flush()?;
        let mut removed: Vec<String> = self.published.hashes.keys().map(|k| unkey(*k)).collect();
        removed.sort_unstable();
        for id in &removed {
            self.outcome.counts.of_type(id.as_bytes()[0]).removed += 1;
        }
        self.outcome.removed = removed;
        Ok((self.encoder.finish(), self.outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_national_ids() {
        for id in ["810001234565", "0012600631", "02A0012345"] {
            assert_eq!(unkey(key(id.as_bytes())), id);
        }
        assert_ne!(key(b"810001234565"), key(b"810001234573"));
    }
}
