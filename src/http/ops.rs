//! Open operational routes: liveness, readiness, metrics, and the API description.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa::OpenApi;

use super::AppState;

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready once a published generation is loaded: claims can be answered. While Postgres is
/// unreachable the server stays ready (it serves its last snapshot) and says so in `store`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Serving: `{\"ready\": true, \"generation\": 12, \"store\": \"reachable\"}`"),
        (status = 503, description = "No published generation loaded yet"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshot.load();
    let ready = state.status.loaded();
    let body = json!({
        "ready": ready,
        "generation": snapshot.generation,
        "professionals": snapshot.len(),
        "extract_ts": snapshot.extract_ts,
        "store": if state.status.reachable() { "reachable" } else { "unreachable" },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&state),
    )
        .into_response()
}

/// This API's OpenAPI description.
pub async fn openapi() -> Response {
    match super::openapi::ApiDoc::openapi().to_json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(error) => super::error::ApiError::internal(error).into_response(),
    }
}
