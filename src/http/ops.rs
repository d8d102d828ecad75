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

/// Ready once this replica can do its job: claims replicas (and the default, every route)
/// as soon as a published generation is loaded, whatever the state of the search index, so
/// that it stays the probe for the claims API's load balancers; admin-only replicas once the
/// search index is in place. While Postgres is unreachable the server stays ready (it
/// serves its last snapshot) and says so in `store`. A signing key this replica cannot open
/// is said in `signing` but leaves the status as it is: plain claims must stay in rotation.
/// An index that serves an older generation because its update failed (a full disk), or
/// that has been behind for over ten minutes, is `stale`: still serving, so still ready.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Serving: `{\"ready\": true, \"claims\": \"ready\", \"search\": \"building\", \"signing\": \"ready\", \"generation\": 12, \"store\": \"reachable\", \"tasks\": {...}}`; `search` is `off`, `building`, `ready` or `stale` (behind the published generation after a failed update, or for over ten minutes); `signing` is `ready`, `off`, `loading` or `unusable (<kid>: <why>)`"),
        (status = 503, description = "Not ready yet (no generation loaded; on admin replicas, index building)"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshot.load();
    let claims_ready = state.status.loaded();
    let index = state.search.load();
    let search = match (state.search_enabled, index.as_ref()) {
        (false, _) => "off",
        (true, Some(_)) if state.search_health.stale() => "stale",
        (true, Some(_)) => "ready",
        (true, None) => "building",
    };
    let ready = if state.routes.serves_claims() {
        claims_ready
    } else {
        search != "building" && state.status.keys_loaded()
    };
    let body = json!({
        "ready": ready,
        "routes": state.routes,
        "claims": if !state.routes.serves_claims() { "off" } else if claims_ready { "ready" } else { "loading" },
        "search": search,
        "search_generation": index.as_ref().and_then(|i| i.generation()),
        "signing": state.signer.as_ref().map_or("off".to_owned(), |signer| signer.state().to_string()),
        "generation": snapshot.generation,
        "professionals": snapshot.len(),
        "extract_ts": snapshot.extract_ts,
        "store": if state.status.reachable() { "reachable" } else { "unreachable" },
        "tasks": state.tasks.snapshot(),
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

/// The public keys that sign claims (`Accept: application/jwt`), for relying parties to
/// check them: open, like the other well-known documents. A rotated key appears here before
/// it signs; a superseded one stays while the tokens it signed may live; a key this replica
/// cannot open is served too (another replica may sign with it).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "claims",
    responses(
        (status = 200, description = "A JWK Set (RFC 7517) of ES256 keys", content_type = "application/jwk-set+json"),
        (status = 404, description = "Signed claims are not configured (ANNUAIRE_ISSUER)", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let Some(signer) = &state.signer else {
        return super::error::ApiError::new(StatusCode::NOT_FOUND, "signed claims are not configured here")
            .into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            // Shorter than a rotated key's delay before it signs (an hour by default).
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        signer.jwks().to_string(),
    )
        .into_response()
}
