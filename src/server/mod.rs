//! The `annuaire serve` process, composed in one place: the publication follower (claims
//! snapshot and keys, on the serving path's own connections), the search follower, the
//! scheduler and the HTTP server, under one shutdown. The claims path comes first: it is
//! ready as soon as the snapshot is loaded, and every other task is supervised (restarted
//! with back-off, reported by `/readyz` and `/metrics`) so that none can take it down.

pub mod follower;
mod search_follower;
pub mod tasks;
pub mod webhooks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use follower::{Follower, StoreStatus};

use crate::http::hooks::HookSettings;
use crate::http::{AppState, ConnectionLimits, Routes};
use crate::jobs::scheduler::Scheduler;
use crate::jobs::{JobDefinition, RunnerSettings};
use search_follower::SearchFollower;
use tasks::Supervisor;

/// Connections of the serving path (the publication follower's listener and queries, the
/// key ring): few, and apart from the pool that imports, jobs and admin routes use.
pub const SERVING_CONNECTIONS: u32 = 3;
/// The serving path never waits long for a connection: a busy or down store means the
/// snapshot keeps answering and the next poll tries again.
const SERVING_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// How a server runs: which routes, hook settings, jobs and whether this replica schedules
/// them, where the search index lives.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub routes: Routes,
    pub hooks: HookSettings,
    pub jobs: Vec<JobDefinition>,
    /// Run the scheduler in this replica (several may: the job locks keep one run per job).
    pub scheduler: bool,
    pub runner: RunnerSettings,
    /// Where the search index lives; `None` serves no search.
    pub search_dir: Option<PathBuf>,
    /// How the search index's directories are opened: on disk, but in tests.
    pub search_storage: crate::search::IndexStorage,
    /// Connection cap, header read and idle timeouts of the accept loop.
    pub connections: ConnectionLimits,
    /// Publication webhooks to send from this process (one sender per database runs).
    pub webhooks: Option<webhooks::WebhookSettings>,
    /// Signed claims (`Accept: application/jwt`) and the JWKS; off without an issuer.
    pub signing: Option<crate::signing::SigningSettings>,
    /// Bounds of the reads of the past (`?at=`, histories).
    pub past: crate::http::PastLimits,
    /// An export whose client takes nothing for this long ends, with its transaction.
    pub export_stall: Duration,
}

impl ServerConfig {
    /// Every route, hooks as given; no jobs, no scheduler, no search index; HTTP clients
    /// with the default settings (no extra CA bundle), built here once for this server.
    pub fn new(hooks: HookSettings) -> Result<ServerConfig, crate::download::DownloadError> {
        let downloader = crate::download::Downloader::new(crate::download::DownloadSettings::default())?;
        Ok(ServerConfig {
            routes: Routes::All,
            hooks,
            jobs: Vec::new(),
            scheduler: false,
            runner: RunnerSettings::new(downloader),
            search_dir: None,
            search_storage: crate::search::IndexStorage::default(),
            connections: ConnectionLimits::default(),
            webhooks: None,
            signing: None,
            past: crate::http::PastLimits::default(),
            export_stall: crate::export::DEFAULT_STALL,
        })
    }
}

/// Serves on `listener` until `shutdown`. `pool` is for imports, jobs, search and admin
/// routes; the serving path opens its own few connections to the same database.
pub async fn run(
    pool: PgPool,
    listener: TcpListener,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let search_dir = config.search_dir.clone().filter(|_| config.routes.serves_admin());
    let state = AppState::new(pool.clone(), &config, search_dir.is_some(), shutdown.clone());
    let supervisor = Supervisor::new(Arc::clone(&state.tasks), shutdown.clone());
    let (published, announced) = watch::channel(None);

    let follower = Arc::new(Follower {
        pool: serving_pool(&pool),
        snapshot: Arc::clone(&state.snapshot),
        keys: Arc::clone(&state.keys),
        signer: state.signer.clone(),
        status: Arc::clone(&state.status),
        load_snapshot: config.routes.serves_claims(),
        published,
        purge_seen: std::sync::atomic::AtomicI64::new(0),
        ops_age: std::sync::atomic::AtomicU32::new(0),
    });
    let stop = shutdown.clone();
    supervisor.spawn("publication", move || {
        let (follower, stop) = (Arc::clone(&follower), stop.clone());
        async move {
            follower.run(stop).await;
            Ok(())
        }
    });

    // Entra's keys fetched now, so that the first callout does not wait for them; retried
    // with back-off while none is held (a start-up during a network blip).
    if let Some(entra) = state.entra.clone().filter(|_| config.routes.serves_claims()) {
        let stop = shutdown.clone();
        supervisor.spawn("entra-keys", move || {
            let (entra, stop) = (Arc::clone(&entra), stop.clone());
            async move {
                entra.keep_keys(stop).await;
                Ok(())
            }
        });
    }

    if let Some(dir) = search_dir {
        let search = Arc::new(SearchFollower {
            pool: pool.clone(),
            dir,
            index: Arc::clone(&state.search),
            published: announced,
            storage: config.search_storage.clone(),
            health: Arc::clone(&state.search_health),
        });
        let stop = shutdown.clone();
        supervisor.spawn("search", move || {
            let (search, stop) = (Arc::clone(&search), stop.clone());
            async move { search.run(stop).await }
        });
    }

    if config.scheduler {
        tracing::info!(jobs = config.jobs.len(), "scheduler on");
        let scheduler = Scheduler {
            pool: pool.clone(),
            jobs: Arc::clone(&state.jobs),
            settings: config.runner.clone(),
        };
        let stop = shutdown.clone();
        supervisor.spawn("scheduler", move || {
            let (scheduler, stop) = (scheduler.clone(), stop.clone());
            async move {
                scheduler.run(stop).await;
                Ok(())
            }
        });
    }

    if let Some(settings) = config.webhooks.clone().filter(|w| !w.urls.is_empty()) {
        let sender = Arc::new(webhooks::Sender {
            pool: pool.clone(),
            // The plain client: the extra CA bundle is for downloads only.
            client: config.runner.downloader.plain_client().clone(),
            settings,
        });
        let stop = shutdown.clone();
        supervisor.spawn("webhooks", move || {
            let (sender, stop) = (Arc::clone(&sender), stop.clone());
            async move { sender.run(stop).await }
        });
    }

    tracing::info!(address = %listener.local_addr()?, routes = ?config.routes, "serving");
    let job_runs = state.job_runs.clone();
    let connections = Arc::clone(&state.connections);
    let admin = crate::http::listener::admin_runtime()?;
    let served = crate::http::listener::serve(
        listener,
        crate::http::router(state),
        config.connections,
        connections,
        admin.handle().clone(),
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    supervisor.wait().await;
    // Runs started through the API stop at their next safe point, like scheduled ones.
    job_runs.close();
    job_runs.wait().await;
    // Last: what ran on the admin lane is over (dropping it here would block this worker).
    admin.shutdown_background();
    served
}

/// A small pool of the serving path's own, to the same database as `pool`: connections are
/// opened on demand, so a server whose store is down still starts and serves its snapshot.
fn serving_pool(pool: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(SERVING_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(SERVING_ACQUIRE_TIMEOUT)
        .connect_lazy_with(pool.connect_options().as_ref().clone())
}
