//! Keeps the search index at the published generation, in the background: it waits until
//! the publication follower has loaded the claims snapshot (claims come first), then opens
//! the index on disk or builds one aside, and brings it up to each generation the follower
//! announces. Until an index is in place the search routes answer 503 ("index building").

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::follower::Published;
use crate::search::{self, SearchIndex};

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

    async fn catch_up(&self, purge: i64) -> Result<(), String> {
        // A purge deletes professionals, which an update (what changed since a generation)
        // cannot see: the index is rebuilt once after it, and says so in a marker file.
        let refreshed = if purge > purge_reflected(&self.dir) {
            tracing::info!(purge, "rebuilding the search index after a purge");
            let rebuilt = search::rebuild(&self.pool, &self.dir).await;
            if rebuilt.is_ok() {
                std::fs::write(self.dir.join(PURGE_MARKER), purge.to_string())
                    .map_err(|e| format!("cannot write {}: {e}", self.dir.join(PURGE_MARKER).display()))?;
            }
            rebuilt
        } else {
            match self.index.load_full() {
                Some(index) => search::update(&self.pool, index, &self.dir).await,
                None => {
                    tracing::info!(dir = %self.dir.display(), "opening the search index (built aside if missing)");
                    search::open_or_rebuild(&self.pool, &self.dir).await
                }
            }
        }
        .map_err(|e| format!("cannot bring the search index up to date: {e}"))?;
        let changed = self
            .index
            .load()
            .as_ref()
            .is_none_or(|current| !Arc::ptr_eq(current, &refreshed));
        if changed {
            tracing::info!(generation = refreshed.generation().map(|g| g.0), "search index ready");
            self.index.store(Some(refreshed));
        }
        Ok(())
    }
}
