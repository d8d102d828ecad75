//! The HTTP layer (axum): the claims API and IdP hooks, open operational routes, access
//! control, metrics, and the server's life: it follows the store (snapshot, keys) while it
//! serves, and stops on one shutdown signal.

mod admin;
mod auth;
mod claims;
mod error;
mod extract;
mod headers;
pub mod hooks;
mod limits;
pub mod listener;
mod metrics;
mod openapi;
mod ops;
mod page;
mod search;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::{ApiError, Problem};
pub use hooks::{HookSettings, SubjectMapping, UnknownSubject};
pub use listener::ConnectionLimits;

use crate::jobs::scheduler::Scheduler;
use crate::jobs::{JobDefinition, RunnerSettings};
use crate::keys::{KeyRing, Scope};
use crate::snapshot::{Follower, Snapshot, StoreStatus};

/// Far above any IdP's budget: a request still running then is stuck.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How a server runs: hook settings, jobs and whether this replica schedules them.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub hooks: HookSettings,
    pub jobs: Vec<JobDefinition>,
    /// Run the scheduler in this replica (several may: the job locks keep one run per job).
    pub scheduler: bool,
    pub runner: RunnerSettings,
    /// Where the search index lives; `None` serves no search.
    pub search_dir: Option<std::path::PathBuf>,
}

impl ServerConfig {
    /// Hooks only: no jobs, no scheduler.
    pub fn new(hooks: HookSettings) -> ServerConfig {
        ServerConfig {
            hooks,
            jobs: Vec::new(),
            scheduler: false,
            runner: RunnerSettings {
                download_dir: std::env::temp_dir(),
                download: crate::download::DownloadSettings::default(),
            },
            search_dir: None,
        }
    }
}

/// Everything a handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub keys: Arc<ArcSwap<KeyRing>>,
    pub status: Arc<StoreStatus>,
    pub metrics: Arc<metrics::Metrics>,
    pub hooks: Arc<HookSettings>,
    pub jobs: Arc<Vec<JobDefinition>>,
    pub runner: RunnerSettings,
    pub shutdown: CancellationToken,
    /// The search index, once built.
    pub search: Arc<arc_swap::ArcSwapOption<crate::search::SearchIndex>>,
    /// The bounds of every search and the slots its work runs in.
    pub search_guard: Arc<crate::search::SearchGuard>,
}

impl AppState {
    pub fn new(pool: PgPool, config: ServerConfig, shutdown: CancellationToken) -> AppState {
        AppState {
            pool,
            snapshot: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            keys: Arc::new(ArcSwap::from_pointee(KeyRing::default())),
            status: Arc::new(StoreStatus::default()),
            metrics: Arc::new(metrics::Metrics::default()),
            hooks: Arc::new(config.hooks),
            jobs: Arc::new(config.jobs),
            runner: config.runner,
            shutdown,
            search: Arc::new(arc_swap::ArcSwapOption::empty()),
            search_guard: Arc::new(crate::search::SearchGuard::default()),
        }
    }
}

pub fn router(state: AppState) -> Router {
    let claims = Router::new()
        .route("/v1/claims/{id}", get(claims::get_claims))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), &[Scope::Claims][..]),
            auth::require,
        ))
        .route_layer(RequestBodyLimitLayer::new(limits::SMALL_BODY_BYTES));
    let claims = headers::cache_control(claims, headers::CLAIMS_CACHE);
    let hooks = Router::new()
        .route("/v1/hooks/hydra/token", post(hooks::hydra_token))
        .route("/v1/hooks/okta/token", post(hooks::okta_token))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), &[Scope::Claims][..]),
            auth::require,
        ))
        .route_layer(RequestBodyLimitLayer::new(limits::HOOK_BODY_BYTES));
    let search = Router::new()
        .route("/v1/professionals", get(search::search))
        .route("/v1/professionals/{id}", get(search::record))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), &[Scope::Search, Scope::Admin][..]),
            auth::require,
        ))
        .route_layer(RequestBodyLimitLayer::new(limits::SMALL_BODY_BYTES));
    let admin = Router::new()
        .route("/v1/jobs", get(admin::list_jobs))
        .route("/v1/jobs/{name}/run", post(admin::run_job))
        .route("/v1/imports", get(admin::list_imports))
        .route("/v1/imports/{id}/approve", post(admin::approve_import))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), &[Scope::Admin][..]),
            auth::require,
        ))
        .route_layer(RequestBodyLimitLayer::new(limits::SMALL_BODY_BYTES));
    let open = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        // The admin page: static, offline (no external resource); its data calls carry the
        // key. Script and style are files of their own, so the page's CSP allows no inline.
        .route("/", get(page::page))
        .route("/page.js", get(page::script))
        .route("/page.css", get(page::style))
        .route_layer(RequestBodyLimitLayer::new(limits::SMALL_BODY_BYTES));
    let routes = Router::new()
        .merge(claims)
        .merge(hooks)
        .merge(admin)
        .merge(search)
        .merge(open)
        .route_layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(DefaultBodyLimit::max(limits::HOOK_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(middleware::from_fn(limits::request_size))
        .layer(middleware::map_response(error::problem_for_bare_errors))
        .with_state(state);
    headers::secure(routes)
}

/// Serves on `listener` until `shutdown`, following the store through `pool` meanwhile, and
/// running the scheduler when the configuration asks.
pub async fn run(
    pool: PgPool,
    listener: TcpListener,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let scheduler = config.scheduler.then(|| Scheduler {
        pool: pool.clone(),
        jobs: Arc::new(config.jobs.clone()),
        settings: config.runner.clone(),
    });
    let search_dir = config.search_dir.clone();
    let state = AppState::new(pool.clone(), config, shutdown.clone());
    let searching = search_dir.map(|dir| {
        tokio::spawn(follow_search(
            pool.clone(),
            dir,
            Arc::clone(&state.search),
            shutdown.clone(),
        ))
    });
    let scheduling = scheduler.map(|s| tokio::spawn(s.run(shutdown.clone())));
    let follower = Follower {
        pool,
        snapshot: Arc::clone(&state.snapshot),
        keys: Arc::clone(&state.keys),
        status: Arc::clone(&state.status),
    };
    let following = tokio::spawn(follower.run(shutdown.clone()));
    tracing::info!(address = %listener.local_addr()?, "serving");
    let served = listener::serve(listener, router(state), ConnectionLimits::default(), shutdown.clone()).await;
    shutdown.cancel();
    let _ = following.await;
    if let Some(scheduling) = scheduling {
        let _ = scheduling.await;
    }
    if let Some(searching) = searching {
        let _ = searching.await;
    }
    served
}

/// Keeps the search index at the published generation: opened (or built) at start, then
/// updated from each new generation's changes.
async fn follow_search(
    pool: PgPool,
    dir: std::path::PathBuf,
    search: Arc<arc_swap::ArcSwapOption<crate::search::SearchIndex>>,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let refreshed = match search.load_full() {
            Some(index) => crate::search::update(&pool, index, &dir).await,
            None => crate::search::open_or_rebuild(&pool, &dir).await,
        };
        match refreshed {
            Ok(index) => {
                let changed = search
                    .load()
                    .as_ref()
                    .is_none_or(|current| !Arc::ptr_eq(current, &index));
                if changed {
                    search.store(Some(index));
                }
            }
            Err(error) => tracing::warn!(%error, "cannot bring the search index up to date; will retry"),
        }
    }
}
