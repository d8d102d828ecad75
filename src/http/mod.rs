//! The HTTP layer (axum): the claims API and IdP hooks, the admin and search routes, open
//! operational routes, access control and metrics. It only routes and answers; the process
//! around it (followers, scheduler, shutdown) is composed in `server`.

mod admin;
mod auth;
mod claims;
pub mod entra;
mod error;
mod export;
mod extract;
mod feed;
mod headers;
mod history;
pub mod hooks;
mod limits;
pub mod listener;
mod metrics;
mod openapi;
mod ops;
mod page;
pub mod request_log;
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
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::{ApiError, Problem, Removal};
pub use history::PastLimits;
pub use hooks::{HookSettings, SubjectMapping, UnknownPlain, UnknownSubject};
pub use listener::ConnectionLimits;

use crate::jobs::{JobDefinition, RunnerSettings};
use crate::keys::{KeyRing, Scope};
use crate::server::tasks::TaskHealth;
use crate::server::{ServerConfig, StoreStatus};
use crate::snapshot::Snapshot;

/// Far above any IdP's budget: a request still running then is stuck.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Which routes a replica serves: operators may split the IdP-facing replicas (claims and
/// hooks) from the admin ones (search, records, imports, jobs, the page). Health, readiness
/// and metrics are on every replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Routes {
    All,
    Claims,
    Admin,
}

impl Routes {
    pub fn serves_claims(self) -> bool {
        matches!(self, Routes::All | Routes::Claims)
    }

    pub fn serves_admin(self) -> bool {
        matches!(self, Routes::All | Routes::Admin)
    }
}

/// Everything a handler may reach. axum clones the state for every request, several times
/// (each middleware with state, then the handler), so it is one `Arc`: one counter to
/// touch per clone instead of a dozen, and no allocation (the runner's settings hold paths).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
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
    /// Whether the index served is stale (its update failed, or is long overdue).
    pub search_health: Arc<crate::search::SearchHealth>,
    pub routes: Routes,
    /// This replica keeps a search index (admin routes and a search directory).
    pub search_enabled: bool,
    /// The supervised background tasks, for `/readyz` and `/metrics`.
    pub tasks: Arc<TaskHealth>,
    /// Job runs started through the API: the server waits for them at shutdown.
    pub job_runs: TaskTracker,
    /// The process's runtime: work that outlives its request (a job run) is spawned on it,
    /// not on the admin lane's, which ends with the listener (`listener::lane`).
    pub runtime: tokio::runtime::Handle,
    /// The bounds of every search and the slots its work runs in.
    pub search_guard: Arc<crate::search::SearchGuard>,
    /// What `?at=` on the claims route reads with, apart from everything else.
    pub past: history::PastReads,
    /// What the listener did with connections, for `/metrics`.
    pub connections: Arc<listener::ConnectionStats>,
    /// Exports running (`/v1/export`): one at a time.
    pub exports: export::Exports,
    /// The Entra route's token validation, when the route is configured.
    pub entra: Option<Arc<entra::EntraAuth>>,
    /// Signs claims for `Accept: application/jwt` and publishes its keys (ANNUAIRE_ISSUER).
    pub signer: Option<Arc<crate::signing::Signer>>,
}

impl AppState {
    pub fn new(pool: PgPool, config: &ServerConfig, search_enabled: bool, shutdown: CancellationToken) -> AppState {
        AppState(Arc::new(Shared {
            snapshot: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            keys: Arc::new(ArcSwap::from_pointee(KeyRing::default())),
            status: Arc::new(StoreStatus::default()),
            metrics: Arc::new(metrics::Metrics::default()),
            hooks: Arc::new(config.hooks.clone()),
            jobs: Arc::new(config.jobs.clone()),
            runner: config.runner.clone(),
            shutdown,
            search: Arc::new(arc_swap::ArcSwapOption::empty()),
            search_health: Arc::default(),
            routes: config.routes,
            search_enabled,
            tasks: Arc::default(),
            job_runs: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
            connections: Arc::default(),
            search_guard: Arc::new(crate::search::SearchGuard::default()),
            past: history::PastReads::beside(&pool, &config.past),
            exports: export::Exports::new(config.export_stall),
            // Its keys are fetched by a supervised task the server starts (`server::run`).
            entra: config.hooks.entra.clone().map(|settings| {
                Arc::new(entra::EntraAuth::new(
                    settings,
                    // Entra's keys through the system roots: the extra CA bundle is for downloads.
                    config.runner.downloader.plain_client().clone(),
                ))
            }),
            signer: config
                .signing
                .clone()
                .map(|settings| Arc::new(crate::signing::Signer::new(settings))),
            pool,
        }))
    }
}

pub fn router(state: AppState) -> Router {
    // The claims route checks its key and sets its `Cache-Control` itself (see
    // `auth::ClaimsKey`); it reads no body, and hyper closes a connection rather than
    // drain a body nobody reads.
    let claims = Router::new()
        .route("/v1/claims/{id}", get(claims::get_claims))
        .route("/v1/claims", get(claims::get_claims_by_query));
    let hooks = Router::new()
        .route("/v1/hooks/hydra/token", post(hooks::hydra_token))
        .route("/v1/hooks/okta/token", post(hooks::okta_token))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), &[Scope::Claims][..]),
            auth::require,
        ))
        .route_layer(RequestBodyLimitLayer::new(limits::HOOK_BODY_BYTES));
    // Entra authenticates with its own token, checked by the route itself; its body is
    // read by the `Bytes` extractor, which the router's `DefaultBodyLimit` (the hooks' 1 MiB)
    // bounds: no route layer, which costs every request a boxed service (Entra waits on
    // this answer like the IdPs on the claims route).
    let entra = Router::new().route("/v1/hooks/entra/token", post(entra::token));
    let search = Router::new()
        .route("/v1/professionals", get(search::search))
        .route("/v1/professionals/{id}", get(search::record))
        .route("/v1/professionals/{id}/history", get(history::professional_history))
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
        .route("/v1/imports/{id}/diff", get(admin::import_diff))
        .route("/v1/export", get(export::export))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), &[Scope::Admin][..]),
            auth::require,
        ))
        .route_layer(RequestBodyLimitLayer::new(limits::SMALL_BODY_BYTES));
    let feed = Router::new()
        .route("/v1/changes", get(feed::changes))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), &[Scope::Feed, Scope::Admin][..]),
            auth::require,
        ))
        .route_layer(RequestBodyLimitLayer::new(limits::SMALL_BODY_BYTES));
    let open = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/.well-known/jwks.json", get(ops::jwks))
        .route_layer(RequestBodyLimitLayer::new(limits::SMALL_BODY_BYTES));
    // The admin page: static, offline (no external resource); its data calls carry the
    // key. Script and style are files of their own, so the page's CSP allows no inline.
    let page = Router::new()
        .route("/", get(page::page))
        .route("/page.js", get(page::script))
        .route("/page.css", get(page::style))
        .route_layer(RequestBodyLimitLayer::new(limits::SMALL_BODY_BYTES));
    let mut routes = Router::new();
    if state.routes.serves_claims() {
        routes = routes.merge(claims).merge(hooks);
        if state.entra.is_some() {
            routes = routes.merge(entra);
        }
    }
    if state.routes.serves_admin() {
        routes = routes.merge(admin).merge(search).merge(feed).merge(page);
    }
    let routes = routes
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
