//! The one publication follower of a server process: it listens for `annuaire_publication`
//! (and `annuaire_keys`), swaps in the new claims snapshot when a generation is published,
//! then tells the search follower which generation is published (a watch channel, so an
//! index update never delays the snapshot swap). It checks every few seconds that Postgres
//! answers, so that a missed notification or an outage is caught up by itself. It runs on
//! the serving path's own connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::keys::KeyRing;
use crate::snapshot::{HOUSEKEEPING_NICE, Snapshot, load_changes, load_full};
use crate::store::RunId;
use crate::store::channels;
use crate::store::runs;

/// How often the store is checked (and the publication compared) without a notification.
const POLL: Duration = Duration::from_secs(2);
/// A store that does not answer within this is unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the server knows of the store, for `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub struct StoreStatus {
    reachable: AtomicBool,
    loaded: AtomicBool,
    keys_loaded: AtomicBool,
    /// Unix seconds of the last successful contact.
    last_contact: AtomicI64,
    last_import_status: std::sync::Mutex<Option<String>>,
    /// What operators watch besides: job runs and the last import, read every
    /// `OPS_EVERY` polls.
    ops: std::sync::Mutex<OpsFacts>,
}

/// The latest run of each job, and the last finished import's phases and counts: gauges of
/// the last run, not one series per run.
#[derive(Debug, Default, Clone)]
pub struct OpsFacts {
    /// Job name → the status of its latest finished run.
    pub job_status: std::collections::BTreeMap<String, String>,
    /// Phase → seconds, of the last finished import.
    pub import_phases: Vec<(String, f64)>,
    /// `added`, `changed`, `removed` of the last finished import.
    pub import_changes: Vec<(&'static str, i64)>,
}

/// Polls between two reads of the operations facts (2 s each: every 30 s).
const OPS_EVERY: u32 = 15;

impl StoreStatus {
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// The API keys have been read at least once: requests can be authenticated.
    pub fn keys_loaded(&self) -> bool {
        self.keys_loaded.load(Ordering::Relaxed)
    }

    /// A published generation is loaded and claims can be answered.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }

    pub fn last_import_status(&self) -> Option<String> {
        self.last_import_status.lock().map(|s| s.clone()).unwrap_or(None)
    }

    pub fn ops(&self) -> OpsFacts {
        self.ops.lock().map(|o| o.clone()).unwrap_or_default()
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

/// What the follower tells the search follower: the published generation, once known
/// (`Some(None)` for a store where nothing is published yet).
pub type Published = Option<Announced>;

/// A published generation (`None`: nothing published yet) and the latest purge that took
/// anyone (0: none), which the search index must also drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announced {
    pub generation: Option<RunId>,
    pub purge: i64,
}

/// Keeps the shared snapshot and key ring in step with the store.
pub struct Follower {
    /// The serving path's own pool: imports and admin work cannot exhaust it.
    pub pool: PgPool,
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub keys: Arc<ArcSwap<KeyRing>>,
    /// The claims signing keys, followed with the API keys (`annuaire_keys`).
    pub signer: Option<Arc<crate::signing::Signer>>,
    pub status: Arc<StoreStatus>,
    /// Load the claims snapshot (off on admin-only replicas, which serve no claims).
    pub load_snapshot: bool,
    pub published: watch::Sender<Published>,
    /// The latest purge the loaded snapshot reflects (0: none): a newer one reloads it.
    pub purge_seen: std::sync::atomic::AtomicI64,
    /// Polls since the operations facts were last read.
    pub ops_age: std::sync::atomic::AtomicU32,
}

impl Follower {
    /// Runs until `shutdown`: store errors are retried at the next poll; only a panic ends
    /// it early (and its supervisor restarts it, picking up from the shared snapshot).
    pub async fn run(&self, shutdown: CancellationToken) {
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
            let keys_changed = notified.as_deref() == Some(channels::KEYS);
            self.refresh(keys_changed || notified.is_none()).await;
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener
            .listen_all([channels::PUBLICATION, channels::KEYS])
            .await
            .ok()?;
        Some(listener)
    }

    /// Probes the store, reloads the keys when asked, and the snapshot when the published
    /// generation differs from the loaded one.
    async fn refresh(&self, reload_keys: bool) {
        let probe = tokio::time::timeout(PROBE_TIMEOUT, runs::generation_and_last_status(&self.pool)).await;
        let (published, last_status, purge) = match probe {
            Ok(Ok(row)) => row,
            _ => {
                self.status.contact(false);
                return;
            }
        };
        self.status.contact(true);
        let purge = purge.unwrap_or(0);
        if let Ok(mut slot) = self.status.last_import_status.lock() {
            *slot = last_status.map(|s| s.to_string());
        }
        if self.ops_age.fetch_add(1, Ordering::Relaxed).is_multiple_of(OPS_EVERY) {
            match read_ops(&self.pool).await {
                Ok(ops) => {
                    if let Ok(mut slot) = self.status.ops.lock() {
                        *slot = ops;
                    }
                }
                Err(error) => tracing::debug!(%error, "cannot read the job and import facts"),
            }
        }
        if reload_keys || !self.status.keys_loaded.load(Ordering::Relaxed) {
            match KeyRing::load(&self.pool).await {
                Ok(ring) => {
                    self.keys.store(Arc::new(ring));
                    self.status.keys_loaded.store(true, Ordering::Relaxed);
                }
                Err(error) => tracing::warn!(%error, "cannot reload the API keys"),
            }
            if let Some(signer) = &self.signer
                && let Err(error) = signer.reload(&self.pool).await
            {
                tracing::warn!(%error, "cannot load the claims signing keys");
            }
        }
        if !self.load_snapshot {
            let announced = Announced {
                generation: published,
                purge,
            };
            self.published.send_if_modified(|seen| replace(seen, Some(announced)));
            return;
        }
        let current = self.snapshot.load_full();
        let purged = purge != self.purge_seen.load(Ordering::Relaxed);
        if self.status.loaded() && published == current.generation && !purged {
            return;
        }
        if published.is_none() {
            // Nothing published yet: nothing to load, but the search index may be built (empty).
            let announced = Announced {
                generation: None,
                purge,
            };
            self.published.send_if_modified(|seen| replace(seen, Some(announced)));
            return;
        }
        let started = Instant::now();
        // After a purge, everything: the purged professionals must go from the snapshot.
        let loaded = if self.status.loaded() && !purged {
            load_changes(&self.pool, &current).await
        } else {
            load_full(&self.pool).await
        };
        match loaded {
            Ok(next) => {
                tracing::info!(
                    generation = next.generation.map(|g| g.0),
                    professionals = next.len(),
                    memory_mb = next.memory_bytes() >> 20,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "claims snapshot loaded"
                );
                let generation = next.generation;
                self.purge_seen.store(purge, Ordering::Relaxed);
                let retired = self.snapshot.swap(Arc::new(next));
                self.status.loaded.store(generation.is_some(), Ordering::Relaxed);
                let announced = Announced { generation, purge };
                self.published.send_if_modified(|seen| replace(seen, Some(announced)));
                // Freeing the previous map (about 100 MB at national scale) is for a niced
                // thread too, not for whichever worker drops the last reference.
                drop(current);
                let _ =
                    crate::priority::on_niced_thread(HOUSEKEEPING_NICE, "annuaire-retire", move || drop(retired)).await;
            }
            Err(error) => tracing::warn!(%error, "cannot load the claims snapshot; will retry"),
        }
    }
}

/// Stores `next` in `seen`; true when that changed it (a watch sends only real changes).
fn replace(seen: &mut Published, next: Published) -> bool {
    let changed = *seen != next;
    *seen = next;
    changed
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

/// The latest finished run of each job, and the last finished import's phases and counts.
async fn read_ops(pool: &sqlx::PgPool) -> Result<OpsFacts, sqlx::Error> {
    let jobs = crate::store::job_runs::latest_finished(pool).await?;
    type Import = (serde_json::Value, Option<i64>, Option<i64>, Option<i64>);
    let import: Option<Import> = sqlx::query_as(
        "SELECT phases, added, changed, removed FROM import_run WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let mut ops = OpsFacts {
        job_status: jobs.into_iter().map(|run| (run.job, run.status.to_string())).collect(),
        ..OpsFacts::default()
    };
    if let Some((phases, added, changed, removed)) = import {
        if let Some(phases) = phases.as_object() {
            ops.import_phases = phases
                .iter()
                .filter_map(|(phase, ms)| Some((phase.clone(), ms.as_f64()? / 1000.0)))
                .collect();
        }
        ops.import_changes = vec![
            ("added", added.unwrap_or(0)),
            ("changed", changed.unwrap_or(0)),
            ("removed", removed.unwrap_or(0)),
        ];
    }
    Ok(ops)
}
