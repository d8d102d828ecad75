//! The HTTP layer (axum): the claims API and IdP hooks, open operational routes, access
//! control, metrics, and the server's life: it follows the store (snapshot, keys) while it
//! serves, and stops on one shutdown signal.

mod auth;
mod claims;
mod error;
pub mod hooks;
mod metrics;
mod openapi;
mod ops;

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
use tower_http::timeout::TimeoutLayer;

pub use error::{ApiError, Problem};
pub use hooks::{HookSettings, SubjectMapping, UnknownSubject};

use crate::keys::{KeyRing, Scope};
use crate::snapshot::{Follower, Snapshot, StoreStatus};

/// Request bodies are small JSON documents (hook requests).
const BODY_LIMIT: usize = 1 << 20;
/// Far above any IdP's budget: a request still running then is stuck.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub keys: Arc<ArcSwap<KeyRing>>,
    pub status: Arc<StoreStatus>,
    pub metrics: Arc<metrics::Metrics>,
    pub hooks: Arc<HookSettings>,
}

impl AppState {
    pub fn new(hooks: HookSettings) -> AppState {
        AppState {
            snapshot: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            keys: Arc::new(ArcSwap::from_pointee(KeyRing::default())),
            status: Arc::new(StoreStatus::default()),
            metrics: Arc::new(metrics::Metrics::default()),
            hooks: Arc::new(hooks),
        }
    }
}

pub fn router(state: AppState) -> Router {
    let claims = Router::new()
        .route("/v1/claims/{id}", get(claims::get_claims))
        .route("/v1/hooks/hydra/token", post(hooks::hydra_token))
        .route("/v1/hooks/okta/token", post(hooks::okta_token))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), Scope::Claims),
            auth::require,
        ));
    let open = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi));
    Router::new()
        .merge(claims)
        .merge(open)
        .route_layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .with_state(state)
}

/// Serves on `listener` until `shutdown`, following the store through `pool` meanwhile.
pub async fn run(
    pool: PgPool,
    listener: TcpListener,
    hooks: HookSettings,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let state = AppState::new(hooks);
    let follower = Follower {
        pool,
        snapshot: Arc::clone(&state.snapshot),
        keys: Arc::clone(&state.keys),
        status: Arc::clone(&state.status),
    };
    let following = tokio::spawn(follower.run(shutdown.clone()));
    tracing::info!(address = %listener.local_addr()?, "serving");
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    shutdown.cancel();
    let _ = following.await;
    served
}
