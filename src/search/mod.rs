//! Search for admins: a tantivy index derived from the published generation (Postgres
//! stays the truth). Built in full into a fresh directory and swapped in when missing, of
//! another schema or too far behind; otherwise updated from each generation's changes.

pub mod bounds;
mod decode;
mod dirs;
pub mod document;
mod facets;
pub mod filters;
mod health;
pub mod index;
pub mod labels;
pub mod query;
pub mod schema;
mod storage;
mod workers;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::mpsc;

pub use bounds::{BoundError, Refused, SearchGuard, SearchLimits};
pub use dirs::remove_superseded;
pub use health::{STALE_AFTER, SearchHealth};
pub use index::SearchIndex;
pub use query::{SearchRequest, SearchResponse};
pub use storage::{IndexStorage, is_storage_full};
pub use workers::Workers;

use crate::store::RunId;
use crate::store::published::{self, CurrentRecord, Extras};
use labels::Collected;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Index(#[from] index::IndexError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored record cannot be read: {0}")]
    Record(String),
    /// Writing the index in `path` failed (what an operator must look at: a full disk).
    #[error("search index in {path}: {source}")]
    Written { path: PathBuf, source: index::IndexError },
}

impl SearchError {
    /// The index directory a write failed in, if that is what failed.
    pub fn path(&self) -> Option<&Path> {
        match self {
            SearchError::Written { path, .. } => Some(path),
            _ => None,
        }
    }

    /// A write failed for want of space.
    pub fn storage_full(&self) -> bool {
        let io = match self {
            SearchError::Written { source, .. } | SearchError::Index(source) => source.io_error(),
            _ => None,
        };
        io.is_some_and(is_storage_full)
    }

    /// Tells which index `path` an index error is about.
    fn at(self, path: &Path) -> SearchError {
        match self {
            SearchError::Index(source) => SearchError::Written {
                path: path.to_owned(),
                source,
            },
            other => other,
        }
    }
}

/// Niceness of the index writer and the threads it starts.
const WRITER_NICE: i32 = 10;

/// Rows are handed to the index writer in batches: bounded memory whatever the generation
/// (a few MB of stored rows in flight, and as many decoded documents at a time).
const BATCH: usize = 5_000;

/// The published generation's professionals, all of them or those changed since
/// `since`, as stored records, in batches. Only bytes are moved here, on the async side:
/// decompressing and parsing them is CPU work for the writer's thread.
async fn stream_records(
    pool: &PgPool,
    since: Option<RunId>,
    batches: mpsc::Sender<Vec<CurrentRecord>>,
) -> Result<(), SearchError> {
    let mut conn = pool.acquire().await?;
    let extras = Extras {
        details: true,
        mailboxes: true,
    };
    let mut records = published::current_records(&mut conn, since, extras).await?;
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(record) = records.next().await.map_err(|e| SearchError::Record(e.to_string()))? {
        batch.push(record);
        if batch.len() >= BATCH && batches.send(std::mem::take(&mut batch)).await.is_err() {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        let _ = batches.send(batch).await;
    }
    Ok(())
}

/// The published generation's run id.
async fn published_generation(pool: &PgPool) -> Result<Option<RunId>, SearchError> {
    Ok(crate::store::runs::current_generation(pool).await?)
}

/// Builds a whole index of the published generation in a new directory under `root`,
/// points `root/current` at it, and returns it; the caller swaps it in.
pub async fn rebuild(pool: &PgPool, root: &Path) -> Result<Arc<SearchIndex>, SearchError> {
    rebuild_with(pool, root, &IndexStorage::default()).await
}

/// [`rebuild`] on `storage`. A build that fails leaves nothing behind: its directory is
/// removed (on a full disk, the next attempt needs the space).
pub async fn rebuild_with(pool: &PgPool, root: &Path, storage: &IndexStorage) -> Result<Arc<SearchIndex>, SearchError> {
    let generation = published_generation(pool).await?.unwrap_or(RunId(0));
    let dir = dirs::new_build(root, generation.0);
    // Held until `current` points at the directory: no clean-up removes it meanwhile.
    let building = dirs::Building::start(&dir).map_err(|e| SearchError::Index(e).at(&dir))?;
    let built = match build(pool, &dir, storage, generation).await {
        Ok(index) => dirs::point_current(root, &dir)
            .map(|()| index)
            .map_err(SearchError::from),
        Err(error) => Err(error),
    };
    let index = match built {
        Ok(index) => index,
        Err(error) => {
            let doomed = dir.clone();
            // After the build's own threads are done (`build` waited for them).
            let _ = tokio::task::spawn_blocking(move || dirs::discard(&doomed)).await;
            return Err(error.at(&dir));
        }
    };
    drop(building);
    tracing::info!(generation = generation.0, dir = %dir.display(), "search index built");
    Ok(index)
}

async fn build(
    pool: &PgPool,
    dir: &Path,
    storage: &IndexStorage,
    generation: RunId,
) -> Result<Arc<SearchIndex>, SearchError> {
    let created = {
        let (dir, storage) = (dir.to_owned(), storage.clone());
        tokio::task::spawn_blocking(move || SearchIndex::create_with(&dir, &storage))
    };
    let index = Arc::new(created.await.map_err(|e| SearchError::Record(e.to_string()))??);
    fill(pool, &index, None, generation).await?;
    Ok(index)
}

/// Brings `index` to the published generation: its changes in one commit, or a rebuild
/// when the index is of no generation the store can diff from.
pub async fn update(pool: &PgPool, index: Arc<SearchIndex>, root: &Path) -> Result<Arc<SearchIndex>, SearchError> {
    update_with(pool, index, root, &IndexStorage::default()).await
}

/// [`update`], a rebuild on `storage`.
pub async fn update_with(
    pool: &PgPool,
    index: Arc<SearchIndex>,
    root: &Path,
    storage: &IndexStorage,
) -> Result<Arc<SearchIndex>, SearchError> {
    let Some(published) = published_generation(pool).await? else {
        return Ok(index);
    };
    match index.generation() {
        Some(current) if current == published => Ok(index),
        Some(current) if current < published => {
            fill(pool, &index, Some(current), published)
                .await
                .map_err(|e| e.at(&index.path))?;
            Ok(index)
        }
        _ => rebuild_with(pool, root, storage).await,
    }
}

async fn fill(
    pool: &PgPool,
    index: &Arc<SearchIndex>,
    since: Option<RunId>,
    generation: RunId,
) -> Result<(), SearchError> {
    let dictionaries: HashMap<RunId, Vec<u8>> = published::dictionaries(pool, &[]).await?.into_iter().collect();
    let (tx, rx) = mpsc::channel::<Vec<CurrentRecord>>(2 * decode::DECODERS);
    let target = Arc::clone(index);
    let (done, written) = tokio::sync::oneshot::channel();
    // Its own niced thread, and the decoders it starts: they open the index writer, which
    // starts its indexing and merge threads from them, so that every one inherits the low
    // priority (a full build is a minute of CPU beside a claims path that answers in a
    // millisecond).
    std::thread::Builder::new()
        .name("search-writer".to_owned())
        .spawn(move || {
            crate::priority::lower(WRITER_NICE);
            let started = std::time::Instant::now();
            let batches = std::sync::Mutex::new(rx);
            let result = (|| -> Result<(), SearchError> {
                let labels = std::thread::scope(|scope| {
                    let decoders = (0..decode::DECODERS)
                        .map(|n| {
                            std::thread::Builder::new()
                                .name(format!("search-decode-{n}"))
                                .spawn_scoped(scope, || {
                                    decode::decode(&batches, &dictionaries, &target, since.is_some())
                                })
                        })
                        .collect::<Vec<_>>();
                    // Every decoder is joined (the scope would anyway) before an error is told.
                    let outcomes: Vec<Result<Collected, SearchError>> = decoders
                        .into_iter()
                        .map(|decoder| match decoder {
                            Ok(handle) => handle
                                .join()
                                .unwrap_or_else(|_| Err(SearchError::Record("a search decoder panicked".to_owned()))),
                            Err(e) => Err(SearchError::Record(format!("cannot start a search decoder: {e}"))),
                        })
                        .collect();
                    let mut labels = Collected::default();
                    for outcome in outcomes {
                        labels.absorb(outcome?);
                    }
                    Ok::<_, SearchError>(labels)
                })?;
                tracing::info!(
                    seconds = started.elapsed().as_secs_f64(),
                    "search index documents decoded and indexed"
                );
                target.set_labels(labels, since.is_none())?;
                // One commit at the end: searches see the whole change or none of it.
                target.commit(generation)?;
                if since.is_none() {
                    target.finish_build()?;
                }
                Ok(())
            })();
            if result.is_err() {
                // Nothing of a failed fill may reach the next commit.
                target.discard_writer();
            }
            let _ = done.send(result);
        })
        .map_err(|e| SearchError::Record(format!("cannot start the index writer's thread: {e}")))?;
    let streamed = stream_records(pool, since, tx).await;
    written
        .await
        .map_err(|_| SearchError::Record("the index writer's thread stopped (a panic?)".to_owned()))??;
    streamed
}

/// Opens `root/current` if it is a usable index (else builds one), then brings it up to the
/// published generation.
pub async fn open_or_rebuild(pool: &PgPool, root: &Path) -> Result<Arc<SearchIndex>, SearchError> {
    open_or_rebuild_with(pool, root, &IndexStorage::default()).await
}

/// [`open_or_rebuild`] on `storage`.
pub async fn open_or_rebuild_with(
    pool: &PgPool,
    root: &Path,
    storage: &IndexStorage,
) -> Result<Arc<SearchIndex>, SearchError> {
    std::fs::create_dir_all(root).map_err(|source| {
        SearchError::Index(index::IndexError::Io {
            path: root.to_owned(),
            source,
        })
    })?;
    let current = root.join("current");
    let opened = {
        let storage = storage.clone();
        tokio::task::spawn_blocking(move || SearchIndex::open_with(&current, &storage))
    };
    match opened.await.map_err(|e| SearchError::Record(e.to_string()))? {
        Some(index) => update_with(pool, Arc::new(index), root, storage).await,
        None => rebuild_with(pool, root, storage).await,
    }
}
