//! Building a snapshot from Postgres: the whole published generation at start-up (one
//! binary `COPY` of the compressed documents), then only what each new generation changed,
//! sharing the rest with the previous snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};

use super::{Entry, NO_DICTIONARY, Snapshot};
use crate::import::diff::key;
use crate::store::copy::{CopyDecoder, CopyFormatError};

/// Documents are appended to segments of this size: few allocations, and a new generation
/// shares every untouched segment with the previous snapshot.
const SEGMENT_BYTES: usize = 64 << 20;
/// Past this share of dead bytes, an update rebuilds the snapshot instead of appending.
const MAX_GARBAGE_SHARE: f64 = 0.3;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Format(#[from] CopyFormatError),
    #[error("unexpected row in the snapshot data: {0}")]
    Row(&'static str),
}

/// The whole published generation.
pub async fn load_full(pool: &PgPool) -> Result<Snapshot, LoadError> {
    let mut tx = pool.begin().await?;
    // One consistent view: the publication and the documents it points at.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut snapshot = Snapshot::default();
    read_publication(&mut tx, &mut snapshot).await?;
    read_dictionaries(&mut tx, &mut snapshot).await?;
    let mut appender = Appender::new(&mut snapshot);
    stream_documents(&mut tx, None, &mut appender).await?;
    appender.finish();
    tx.commit().await?;
    Ok(snapshot)
}

/// The published generation, built from `previous` plus what changed since it; a full
/// load when nothing can be shared (no previous generation, an older publication, too much
/// garbage).
pub async fn load_changes(pool: &PgPool, previous: &Snapshot) -> Result<Snapshot, LoadError> {
    let Some(since) = previous.generation else {
        return load_full(pool).await;
    };
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut snapshot = Snapshot {
        entries: previous.entries.clone(),
        segments: previous.segments.clone(),
        garbage: previous.garbage,
        dictionaries: previous.dictionaries.clone(),
        ..Snapshot::default()
    };
    read_publication(&mut tx, &mut snapshot).await?;
    if snapshot.generation.is_none_or(|g| g < since) {
        drop(tx);
        return load_full(pool).await;
    }
    read_dictionaries(&mut tx, &mut snapshot).await?;
    let mut appender = Appender::new(&mut snapshot);
    stream_documents(&mut tx, Some(since), &mut appender).await?;
    appender.finish();
    tx.commit().await?;
    let total: usize = snapshot.segments.iter().map(|s| s.len()).sum();
    if total > 0 && snapshot.garbage as f64 / total as f64 > MAX_GARBAGE_SHARE {
        return load_full(pool).await;
    }
    Ok(snapshot)
}

async fn read_publication(conn: &mut PgConnection, snapshot: &mut Snapshot) -> Result<(), LoadError> {
    type Publication = (Option<i64>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let row: Option<Publication> = sqlx::query_as(
        "SELECT p.run_id, r.extract_ts, r.published_at FROM publication p LEFT JOIN import_run r ON r.id = p.run_id",
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((generation, extract_ts, published_at)) = row {
        snapshot.generation = generation;
        snapshot.extract_ts = extract_ts;
        snapshot.published_at = published_at;
    }
    Ok(())
}

async fn read_dictionaries(conn: &mut PgConnection, snapshot: &mut Snapshot) -> Result<(), LoadError> {
    let known: Vec<i64> = snapshot.dictionaries.iter().map(|(id, _)| *id).collect();
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT run_id, dictionary FROM compression_dictionary WHERE NOT (run_id = ANY($1)) ORDER BY run_id",
    )
    .bind(&known)
    .fetch_all(&mut *conn)
    .await?;
    snapshot
        .dictionaries
        .extend(rows.into_iter().map(|(id, d)| (id, Arc::new(d))));
    Ok(())
}

async fn stream_documents(
    conn: &mut PgConnection,
    since: Option<i64>,
    appender: &mut Appender<'_>,
) -> Result<(), LoadError> {
    let filter = match since {
        // Added, changed, revived or removed after the previous generation.
        Some(run) => format!("WHERE p.record_run_id > {run} OR p.removed_run_id > {run}"),
        None => String::new(),
    };
    let statement = format!(
        "COPY (SELECT p.national_id, extract(epoch FROM p.removed_at)::bigint, p.content_hash, r.claims_zst, r.dictionary_run_id
               FROM professional p
               JOIN professional_record r ON r.national_id = p.national_id AND r.run_id = p.record_run_id
               {filter}) TO STDOUT (FORMAT binary)"
    );
    let mut stream = conn.copy_out_raw(&statement).await?;
    let mut decoder = CopyDecoder::default();
    while let Some(chunk) = stream.next().await {
        decoder.push(&chunk?);
        while let Some(row) = decoder.next_row()? {
            appender.add(&row)?;
        }
    }
    Ok(())
}

fn int8(field: &Option<bytes::Bytes>) -> Result<Option<i64>, LoadError> {
    match field {
        None => Ok(None),
        Some(b) => Ok(Some(i64::from_be_bytes(
            b[..].try_into().map_err(|_| LoadError::Row("int8 width"))?,
        ))),
    }
}

/// Appends documents to the snapshot's segments and points its entries at them.
struct Appender<'s> {
    snapshot: &'s mut Snapshot,
    current: Vec<u8>,
    dictionary_index: HashMap<i64, u32>,
}

impl<'s> Appender<'s> {
    fn new(snapshot: &'s mut Snapshot) -> Appender<'s> {
        let dictionary_index = snapshot
            .dictionaries
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i as u32))
            .collect();
        Appender {
            snapshot,
            current: Vec::with_capacity(SEGMENT_BYTES),
            dictionary_index,
        }
    }

    fn add(&mut self, row: &[Option<bytes::Bytes>]) -> Result<(), LoadError> {
        let [Some(id), removed, Some(hash), Some(claims), dictionary] = row else {
            return Err(LoadError::Row("expected 5 fields"));
        };
        if self.current.len() + claims.len() > SEGMENT_BYTES {
            self.seal();
        }
        let etag = u128::from_be_bytes(hash[..].try_into().map_err(|_| LoadError::Row("content hash width"))?);
        let dictionary = match int8(dictionary)? {
            Some(run) => *self
                .dictionary_index
                .get(&run)
                .ok_or(LoadError::Row("unknown dictionary"))?,
            None => NO_DICTIONARY,
        };
        let entry = Entry {
            segment: self.snapshot.segments.len() as u32,
            offset: self.current.len() as u32,
            len: claims.len() as u32,
            dictionary,
            removed_at: int8(removed)?.unwrap_or(0),
            etag,
        };
        self.current.extend_from_slice(claims);
        if let Some(old) = self.snapshot.entries.insert(key(id), entry) {
            self.snapshot.garbage += old.len as usize;
        }
        Ok(())
    }

    fn seal(&mut self) {
        if !self.current.is_empty() {
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(SEGMENT_BYTES));
            self.snapshot.segments.push(Arc::new(full));
        }
    }

    fn finish(mut self) {
        self.current.shrink_to_fit();
        self.seal();
    }
}
