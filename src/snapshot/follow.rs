//! Following the store: every server process listens for `annuaire_publication` (and
//! `annuaire_keys`), swaps in the new snapshot when a generation is published, and checks
//! every few seconds that Postgres answers, so that a missed notification or an outage is
//! caught up by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::{Snapshot, load_changes, load_full};
use crate::keys::KeyRing;

/// How often the store is checked (and the publication compared) without a notification.
const POLL: Duration = Duration::from_secs(2);
/// A store that does not answer within this is unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the server knows of the store, for `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub struct StoreStatus {
    reachable: AtomicBool,
    loaded: AtomicBool,
    /// Unix seconds of the last successful contact.
    last_contact: AtomicI64,
    last_import_status: std::sync::Mutex<Option<String>>,
}

impl StoreStatus {
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// A published generation is loaded and claims can be answered.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }

    pub fn last_import_status(&self) -> Option<String> {
        self.last_import_status.lock().map(|s| s.clone()).unwrap_or(None)
    }

    fn contact(&self, ok: bool) {
        if ok != self.reachable.swap(ok, Ordering::Relaxed) {
            if ok {
                tracing::info!("store reachable");
            } else {
                tracing::warn!("store unreachable: serving the last loaded snapshot");
            }
        }
        if ok {
            self.last_contact
                .store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
        }
    }
}

/// Keeps the shared snapshot and key ring in step with the store.
pub struct Follower {
    pub pool: PgPool,
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub keys: Arc<ArcSwap<KeyRing>>,
    pub status: Arc<StoreStatus>,
}

impl Follower {
    /// Runs until `shutdown`: never returns an error, it keeps trying.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut listener: Option<PgListener> = None;
        let mut ticker = tokio::time::interval(POLL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let notified = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => None,
                n = next_notification(&mut listener) => n,
            };
            if listener.is_none() {
                listener = tokio::time::timeout(PROBE_TIMEOUT, self.listen()).await.ok().flatten();
            }
            let keys_changed = notified.as_deref() == Some("annuaire_keys");
            self.refresh(keys_changed || notified.is_none()).await;
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener
            .listen_all(["annuaire_publication", "annuaire_keys"])
            .await
            .ok()?;
        Some(listener)
    }

    /// Probes the store, reloads the keys when asked, and the snapshot when the published
    /// generation differs from the loaded one.
    async fn refresh(&self, reload_keys: bool) {
        let probe = tokio::time::timeout(
            PROBE_TIMEOUT,
            sqlx::query_as::<_, (Option<i64>, Option<String>)>(
                "SELECT (SELECT run_id FROM publication),
                        (SELECT status FROM import_run WHERE status <> 'running' ORDER BY id DESC LIMIT 1)",
            )
            .fetch_one(&self.pool),
        )
        .await;
        let (published, last_status) = match probe {
            Ok(Ok(row)) => row,
            _ => {
                self.status.contact(false);
                return;
            }
        };
        self.status.contact(true);
        if let Ok(mut slot) = self.status.last_import_status.lock() {
            *slot = last_status;
        }
        if reload_keys || !self.status.loaded() {
            match KeyRing::load(&self.pool).await {
                Ok(ring) => self.keys.store(Arc::new(ring)),
                Err(error) => tracing::warn!(%error, "cannot reload the API keys"),
            }
        }
        let current = self.snapshot.load();
        if self.status.loaded() && published == current.generation {
            return;
        }
        let started = Instant::now();
        let loaded = if self.status.loaded() {
            load_changes(&self.pool, &current).await
        } else {
            load_full(&self.pool).await
        };
        match loaded {
            Ok(next) => {
                tracing::info!(
                    generation = next.generation,
                    professionals = next.len(),
                    memory_mb = next.memory_bytes() >> 20,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "claims snapshot loaded"
                );
                let has_generation = next.generation.is_some();
                self.snapshot.store(Arc::new(next));
                self.status.loaded.store(has_generation, Ordering::Relaxed);
            }
            Err(error) => tracing::warn!(%error, "cannot load the claims snapshot; will retry"),
        }
    }
}

/// The next notification's channel, or pending forever without a listener.
async fn next_notification(listener: &mut Option<PgListener>) -> Option<String> {
    let Some(active) = listener.as_mut() else {
        return std::future::pending().await;
    };
    match active.try_recv().await {
        Ok(Some(notification)) => Some(notification.channel().to_owned()),
        // The connection was lost: drop it; the poll reconnects and catches up.
        Ok(None) | Err(_) => {
            *listener = None;
            None
        }
    }
}
