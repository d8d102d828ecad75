//! Keeps the search index at the published generation, in the background: it waits until
//! the publication follower has loaded the claims snapshot (claims come first), then opens
//! the index on disk or builds one aside, and brings it up to each generation the follower
//! announces. Until an index is in place the search routes answer 503 ("index building").
//! A failed update (a full disk) is retried by the supervisor with a new index writer;
//! meanwhile the index served is reported stale. Superseded index directories are removed
//! after each swap, the first one at start-up.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::follower::Published;
use crate::search::{self, IndexStorage, SearchError, SearchHealth, SearchIndex};

/// The latest purge the index under the search directory reflects.
const PURGE_MARKER: &str = "purge";

fn purge_reflected(dir: &std::path::Path) -> i64 {
    std::fs::read_to_string(dir.join(PURGE_MARKER))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

pub struct SearchFollower {
    pub pool: PgPool,
    pub dir: PathBuf,
    pub index: Arc<ArcSwapOption<SearchIndex>>,
    pub published: watch::Receiver<Published>,
    /// How index directories are opened (on disk but in tests).
    pub storage: IndexStorage,
    /// Whether the index served is stale, for `/readyz` and `/metrics`.
    pub health: Arc<SearchHealth>,
}

impl SearchFollower {
    /// Runs until `shutdown`. A failure (store down, disk full, an unreadable record) ends
    /// the run with its reason; the supervisor restarts it with back-off, and the index
    /// already in place keeps answering meanwhile.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), String> {
        let mut published = self.published.clone();
        loop {
            let known = *published.borrow_and_update();
            if let Some(announced) = known {
                self.catch_up(announced.purge).await?;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                changed = published.changed() => {
                    if changed.is_err() {
                        // The publication follower is gone: only at shutdown.
                        shutdown.cancelled().await;
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Brings the index up to what is published; a failure is told with its cause and the
    /// directory it hit (the supervisor logs it and retries).
    async fn catch_up(&self, purge: i64) -> Result<(), String> {
        self.health.behind();
        match self.refresh(purge).await {
            Ok(()) => {
                self.health.caught_up();
                Ok(())
            }
            Err(error) => {
                self.health.failed();
                let path = error.path().unwrap_or(self.dir.as_path()).display();
                // The path is said once, here.
                let detail = match &error {
                    SearchError::Written { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                Err(if error.storage_full() {
                    format!("no space left on device for the search index in {path}: {detail}")
                } else {
                    format!("cannot bring the search index in {path} up to date: {detail}")
                })
            }
        }
    }

    async fn refresh(&self, purge: i64) -> Result<(), SearchError> {
        // A purge deletes professionals, which an update (what changed since a generation)
        // cannot see: the index is rebuilt once after it, and says so in a marker file.
        let refreshed = if purge > purge_reflected(&self.dir) {
            tracing::info!(purge, "rebuilding the search index after a purge");
            let rebuilt = search::rebuild_with(&self.pool, &self.dir, &self.storage).await?;
            let marker = self.dir.join(PURGE_MARKER);
            std::fs::write(&marker, purge.to_string())
                .map_err(|source| SearchError::Index(search::index::IndexError::Io { path: marker, source }))?;
            rebuilt
        } else {
            match self.index.load_full() {
                Some(index) => search::update_with(&self.pool, index, &self.dir, &self.storage).await?,
                None => {
                    tracing::info!(dir = %self.dir.display(), "opening the search index (built aside if missing)");
                    search::open_or_rebuild_with(&self.pool, &self.dir, &self.storage).await?
                }
            }
        };
        let changed = self
            .index
            .load()
            .as_ref()
            .is_none_or(|current| !Arc::ptr_eq(current, &refreshed));
        if changed {
            tracing::info!(generation = refreshed.generation().map(|g| g.0), "search index ready");
            let served = refreshed.path.clone();
            self.index.store(Some(refreshed));
            // Once no new search opens the old directory (one under way has its segments
            // mapped, which outlive the files' removal).
            let root = self.dir.clone();
            if let Err(error) = tokio::task::spawn_blocking(move || search::remove_superseded(&root, &served)).await {
                tracing::warn!(%error, "the removal of superseded search indexes stopped");
            }
        }
        Ok(())
    }
}
