//! Building a snapshot from Postgres: the whole published generation at start-up (one
//! binary `COPY` of the compressed documents), then only what each new generation changed,
//! sharing the rest with the previous snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{PgConnection, PgPool};

use super::{Entry, NO_DICTIONARY, Snapshot};
use crate::national_id::PackedId;
use crate::store::RunId;
use crate::store::published::{self, CurrentRecord, Extras, ReadError};

/// Documents are appended to segments of this size: few allocations, and a new generation
/// shares every untouched segment with the previous snapshot.
const SEGMENT_BYTES: usize = 64 << 20;
/// Past this share of dead bytes, an update rebuilds the snapshot instead of appending.
const MAX_GARBAGE_SHARE: f64 = 0.3;
/// Niceness of the thread that copies the previous map (below the claims path's workers).
pub const HOUSEKEEPING_NICE: i32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("unexpected row in the snapshot data: {0}")]
    Row(&'static str),
    #[error("cannot copy the previous snapshot: {0}")]
    Copy(#[from] crate::priority::NicedError),
}

impl From<sqlx::Error> for LoadError {
    fn from(e: sqlx::Error) -> Self {
        LoadError::Read(ReadError::Database(e))
    }
}

/// The whole published generation.
pub async fn load_full(pool: &PgPool) -> Result<Snapshot, LoadError> {
    // One consistent view: the publication and the documents it points at.
    let mut tx = published::consistent_read(pool).await?;
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
pub async fn load_changes(pool: &PgPool, previous: &Arc<Snapshot>) -> Result<Snapshot, LoadError> {
    let Some(since) = previous.generation else {
        return load_full(pool).await;
    };
    // Copying 1.7 M entries takes tens of milliseconds, and growing the copy as much again:
    // both on a thread of their own, never on a worker that requests wait for. The room
    // reserved (a busy day's additions, under 1 %) makes them fit without a rehash on the
    // worker; more would double the map ahead of need.
    let shared = Arc::clone(previous);
    let entries = crate::priority::on_niced_thread(HOUSEKEEPING_NICE, "annuaire-snapshot", move || {
        let mut entries = shared.entries.clone();
        entries.reserve(entries.len() / 128);
        entries
    })
    .await?;
    let mut tx = published::consistent_read(pool).await?;
    let mut snapshot = Snapshot {
        entries,
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
    let publication = published::publication(conn).await?;
    snapshot.generation = publication.generation;
    snapshot.extract_ts = publication.extract_ts;
    snapshot.published_at = publication.published_at;
    snapshot.last_modified = snapshot.extract_ts.or(snapshot.published_at).and_then(super::http_date);
    Ok(())
}

async fn read_dictionaries(conn: &mut PgConnection, snapshot: &mut Snapshot) -> Result<(), LoadError> {
    let known: Vec<RunId> = snapshot.dictionaries.iter().map(|(id, _)| *id).collect();
    let rows = published::dictionaries(conn, &known).await?;
    snapshot
        .dictionaries
        .extend(rows.into_iter().map(|(id, d)| (id, Arc::new(d))));
    Ok(())
}

async fn stream_documents(
    conn: &mut PgConnection,
    since: Option<RunId>,
    appender: &mut Appender<'_>,
) -> Result<(), LoadError> {
    let mut records = published::current_records(conn, since, Extras::default()).await?;
    while let Some(record) = records.next().await? {
        appender.add(record)?;
    }
    Ok(())
}

/// Appends documents to the snapshot's segments and points its entries at them.
struct Appender<'s> {
    snapshot: &'s mut Snapshot,
    current: Vec<u8>,
    dictionary_index: HashMap<RunId, u32>,
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

    fn add(&mut self, record: CurrentRecord) -> Result<(), LoadError> {
        let claims = &record.claims_zst;
        if self.current.len() + claims.len() > SEGMENT_BYTES {
            self.seal();
        }
        let dictionary = match record.dictionary {
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
            removed_at: record.removed_at.unwrap_or(0),
            etag: record.content_hash,
        };
        self.current.extend_from_slice(claims);
        if let Some(old) = self.snapshot.entries.insert(PackedId::of(&record.national_id), entry) {
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
