//! Search for admins: a tantivy index derived from the published generation (Postgres
//! stays the truth). Built in full into a fresh directory and swapped in when missing, of
//! another schema or too far behind; otherwise updated from each generation's changes.

pub mod bounds;
pub mod document;
pub mod index;
pub mod query;
pub mod schema;
mod workers;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use sqlx::PgPool;
use tokio::sync::mpsc;

pub use bounds::{BoundError, Refused, SearchGuard, SearchLimits};
pub use index::SearchIndex;
pub use query::{SearchRequest, SearchResponse};

use crate::claims::ClaimsDocument;
use crate::import::record::Details;
use crate::store::copy::CopyDecoder;
use document::SearchValues;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Index(#[from] index::IndexError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored record cannot be read: {0}")]
    Record(String),
}

/// Niceness of the index writer and the threads it starts.
const WRITER_NICE: i32 = 10;

/// Rows are handed to the index writer in batches: bounded memory whatever the generation
/// (a few MB of stored rows in flight, and as many decoded documents at a time).
const BATCH: usize = 5_000;

/// One row of the read-back: national id, removed, claims, details, dictionary, mailboxes.
type Row = Vec<Option<bytes::Bytes>>;

/// The published generation's professionals, all of them or those changed since
/// `since`, as stored rows, in batches. Only bytes are moved here, on the async side:
/// decompressing and parsing them is CPU work for the writer's thread.
async fn stream_rows(pool: &PgPool, since: Option<i64>, batches: mpsc::Sender<Vec<Row>>) -> Result<(), SearchError> {
    let filter = since.map_or(String::new(), |g| {
        format!("WHERE p.record_run_id > {g} OR p.removed_run_id > {g}")
    });
    let statement = format!(
        "COPY (SELECT p.national_id, p.removed_at IS NOT NULL, r.claims_zst, r.details_zst, r.dictionary_run_id,
                      (SELECT string_agg(m.address, ' ') FROM mailbox m
                       WHERE m.national_id = p.national_id AND m.run_id = (SELECT mailbox_run_id FROM publication))
               FROM professional p
               JOIN professional_record r ON r.national_id = p.national_id AND r.run_id = p.record_run_id
               {filter}) TO STDOUT (FORMAT binary)"
    );
    let mut conn = pool.acquire().await?;
    let mut stream = conn.copy_out_raw(&statement).await?;
    let mut decoder = CopyDecoder::default();
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(chunk) = stream.next().await {
        decoder.push(&chunk?);
        while let Some(row) = decoder.next_row().map_err(|e| SearchError::Record(e.to_string()))? {
            batch.push(row);
            if batch.len() >= BATCH && batches.send(std::mem::take(&mut batch)).await.is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = batches.send(batch).await;
    }
    Ok(())
}

/// Turns stored rows into search values: the dictionaries and one decompressor for each.
struct RowDecoder {
    dictionaries: HashMap<i64, Vec<u8>>,
    decompressors: HashMap<i64, zstd::bulk::Decompressor<'static>>,
}

impl RowDecoder {
    async fn load(pool: &PgPool) -> Result<RowDecoder, SearchError> {
        let dictionaries = sqlx::query_as::<_, (i64, Vec<u8>)>("SELECT run_id, dictionary FROM compression_dictionary")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
        Ok(RowDecoder {
            dictionaries,
            decompressors: HashMap::new(),
        })
    }

    fn values(&mut self, row: &[Option<bytes::Bytes>]) -> Result<SearchValues, SearchError> {
        row_values(row, &self.dictionaries, &mut self.decompressors)
    }
}

fn row_values(
    row: &[Option<bytes::Bytes>],
    dictionaries: &HashMap<i64, Vec<u8>>,
    decompressors: &mut HashMap<i64, zstd::bulk::Decompressor<'static>>,
) -> Result<SearchValues, SearchError> {
    let bad = |what: &str| SearchError::Record(what.to_owned());
    let [
        Some(_id),
        Some(removed),
        Some(claims),
        Some(details),
        dictionary,
        mailboxes,
    ] = row
    else {
        return Err(bad("unexpected row"));
    };
    let dictionary = match dictionary {
        Some(b) => Some(i64::from_be_bytes(b[..].try_into().map_err(|_| bad("dictionary id"))?)),
        None => None,
    };
    let mut unpack = |data: &[u8]| -> Result<Vec<u8>, SearchError> {
        let size = zstd::bulk::Decompressor::upper_bound(data)
            .unwrap_or(crate::store::codec::MAX_DOCUMENT_BYTES)
            .min(crate::store::codec::MAX_DOCUMENT_BYTES);
        match dictionary {
            Some(id) => {
                let decompressor = match decompressors.entry(id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let bytes = dictionaries.get(&id).ok_or_else(|| bad("unknown dictionary"))?;
                        v.insert(zstd::bulk::Decompressor::with_dictionary(bytes).map_err(|e| bad(&e.to_string()))?)
                    }
                };
                decompressor.decompress(data, size).map_err(|e| bad(&e.to_string()))
            }
            None => crate::store::codec::decompress(data, None).map_err(|e| bad(&e.to_string())),
        }
    };
    let claims: ClaimsDocument = serde_json::from_slice(&unpack(claims)?).map_err(|e| bad(&e.to_string()))?;
    let details: Details = serde_json::from_slice(&unpack(details)?).map_err(|e| bad(&e.to_string()))?;
    let mailboxes: Vec<String> = mailboxes
        .as_ref()
        .map(|m| String::from_utf8_lossy(m).split(' ').map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(document::values(
        &claims,
        &details,
        &mailboxes,
        removed.first() == Some(&1),
    ))
}

/// The published generation's run id.
async fn published_generation(pool: &PgPool) -> Result<Option<i64>, SearchError> {
    Ok(crate::store::runs::current_generation(pool).await?)
}

/// Builds a whole index of the published generation in a new directory under `root`,
/// points `root/current` at it, and returns it; the caller swaps it in.
pub async fn rebuild(pool: &PgPool, root: &Path) -> Result<Arc<SearchIndex>, SearchError> {
    let generation = published_generation(pool).await?.unwrap_or(0);
    let dir = root.join(format!("index-{generation}-{}", chrono::Utc::now().timestamp_millis()));
    let created = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || SearchIndex::create(&dir))
    };
    let index = Arc::new(created.await.map_err(|e| SearchError::Record(e.to_string()))??);
    fill(pool, &index, None, generation).await?;
    point_current(root, &dir)?;
    tracing::info!(generation, dir = %dir.display(), "search index built");
    Ok(index)
}

/// Brings `index` to the published generation: its changes in one commit, or a rebuild
/// when the index is of no generation the store can diff from.
pub async fn update(pool: &PgPool, index: Arc<SearchIndex>, root: &Path) -> Result<Arc<SearchIndex>, SearchError> {
    let Some(published) = published_generation(pool).await? else {
        return Ok(index);
    };
    match index.generation() {
        Some(current) if current == published => Ok(index),
        Some(current) if current < published => {
            fill(pool, &index, Some(current), published).await?;
            Ok(index)
        }
        _ => rebuild(pool, root).await,
    }
}

async fn fill(pool: &PgPool, index: &Arc<SearchIndex>, since: Option<i64>, generation: i64) -> Result<(), SearchError> {
    let mut rows_of = RowDecoder::load(pool).await?;
    let (tx, mut rx) = mpsc::channel::<Vec<Row>>(2);
    let target = Arc::clone(index);
    let (done, written) = tokio::sync::oneshot::channel();
    // Its own niced thread: decoding, and the index writer opened here, which starts its
    // indexing and merge threads from it, so that they inherit the low priority (a full
    // build is a minute of CPU beside a claims path that answers in a millisecond).
    std::thread::Builder::new()
        .name("search-writer".to_owned())
        .spawn(move || {
            crate::priority::lower(WRITER_NICE);
            let result = (|| -> Result<(), SearchError> {
                while let Some(rows) = rx.blocking_recv() {
                    let values = rows
                        .iter()
                        .map(|row| rows_of.values(row))
                        .collect::<Result<Vec<_>, _>>()?;
                    target.add(&values, since.is_some())?;
                }
                // One commit at the end: searches see the whole change or none of it.
                target.commit(generation)?;
                Ok(())
            })();
            let _ = done.send(result);
        })
        .map_err(|e| SearchError::Record(format!("cannot start the index writer's thread: {e}")))?;
    let streamed = stream_rows(pool, since, tx).await;
    written
        .await
        .map_err(|_| SearchError::Record("the index writer's thread stopped (a panic?)".to_owned()))??;
    streamed
}

/// Points `root/current` at `dir`, atomically (a symlink renamed over the old one).
fn point_current(root: &Path, dir: &Path) -> Result<(), SearchError> {
    let io = |e: std::io::Error| SearchError::Record(format!("cannot swap the index in {}: {e}", root.display()));
    let temporary = root.join(format!("current.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let target = dir.file_name().map(PathBuf::from).unwrap_or_else(|| dir.to_owned());
    std::os::unix::fs::symlink(&target, &temporary).map_err(io)?;
    std::fs::rename(&temporary, root.join("current")).map_err(io)?;
    Ok(())
}

/// Opens `root/current` if it is a usable index (else builds one), then brings it up to the
/// published generation.
pub async fn open_or_rebuild(pool: &PgPool, root: &Path) -> Result<Arc<SearchIndex>, SearchError> {
    std::fs::create_dir_all(root).map_err(|e| SearchError::Record(format!("{}: {e}", root.display())))?;
    let current = root.join("current");
    let opened = tokio::task::spawn_blocking(move || SearchIndex::open(&current))
        .await
        .map_err(|e| SearchError::Record(e.to_string()))?;
    match opened {
        Some(index) => update(pool, Arc::new(index), root).await,
        None => rebuild(pool, root).await,
    }
}
