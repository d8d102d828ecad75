//! The past of the directory: the claims a professional had at an instant (`?at=` on the
//! claims route, for audits: "what did we put in that token?") and their history of
//! versions. Both read Postgres. `?at=` is on the claims route but never takes from what
//! the route's present answers need: its own two connections and a bound on the reads in
//! flight; past that bound it answers 503 at once rather than queue behind the IdP.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Semaphore;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Params, Path};
use crate::claims::history::{HistoryEntry, entries};
use crate::national_id::NationalId;
use crate::store::history::{self, Change};
use crate::store::professionals::LookupError;

/// Connections of the `?at=` reads, apart from the pool of everything else.
const PAST_CONNECTIONS: u32 = 2;
/// `?at=` reads in flight; more are refused with 503 (an audit can retry, an IdP waits).
const PAST_READS: usize = 4;
/// Longest wait for a connection of the `?at=` pool.
const PAST_ACQUIRE: Duration = Duration::from_secs(2);

/// What `?at=` reads with.
pub struct PastReads {
    pool: PgPool,
    slots: Arc<Semaphore>,
}

impl PastReads {
    /// A small pool of its own to the same database as `pool`, connected on first use.
    pub fn beside(pool: &PgPool) -> PastReads {
        PastReads {
            pool: PgPoolOptions::new()
                .max_connections(PAST_CONNECTIONS)
                .acquire_timeout(PAST_ACQUIRE)
                .connect_lazy_with((*pool.connect_options()).clone()),
            slots: Arc::new(Semaphore::new(PAST_READS)),
        }
    }
}

/// The `at` of the query, when there is one. Without a query string (the IdP's requests)
/// nothing is parsed or allocated.
pub struct AsOf(pub Option<DateTime<Utc>>);

impl<S: Send + Sync> FromRequestParts<S> for AsOf {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_none() {
            return Ok(AsOf(None));
        }
        let params = Params::from_request_parts(parts, state).await?;
        let Some(text) = params.text("at") else {
            return Ok(AsOf(None));
        };
        // An unencoded `+` of an offset arrives as a space.
        let text = text.trim().replace(' ', "+");
        DateTime::parse_from_rfc3339(&text)
            .map(|at| AsOf(Some(at.with_timezone(&Utc))))
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "at must be an RFC 3339 instant, such as 2026-11-21T10:00:00Z",
                )
            })
    }
}

/// The claims document served at `at`, byte for byte; 404 if the professional was not
/// published then, 410 if they had been removed by then.
pub async fn claims_at(state: &AppState, id: &NationalId, at: DateTime<Utc>) -> Result<Response, ApiError> {
    let _slot = state.past.slots.try_acquire().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many reads of past claims at once; retry shortly",
        )
    })?;
    let version = history::as_of(&state.past.pool, id, at).await.map_err(unavailable)?;
    match version {
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{id} was not in the published directory at {}", at.to_rfc3339()),
        )),
        Some(v) if v.change == Change::Removed => {
            Err(ApiError::removed(id.as_str(), v.extract_ts.unwrap_or(v.published_at))
                .removal_published(v.published_at))
        }
        Some(v) => {
            let mut response = Response::new(Body::from(v.claims_json.unwrap_or_default()));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Some(value) = v.extract_ts.and_then(crate::snapshot::http_date) {
                headers.insert(header::LAST_MODIFIED, value);
            }
            headers.insert(GENERATION, HeaderValue::from(v.run_id.0));
            Ok(response)
        }
    }
}

/// The run whose document a past answer is.
const GENERATION: header::HeaderName = header::HeaderName::from_static("x-annuaire-generation");

/// A read of the past that failed: Postgres is down or busy. The present claims do not
/// depend on it, so this is a 503 of its own, the cause in the log.
fn unavailable(error: LookupError) -> ApiError {
    match error {
        LookupError::Corrupt(..) => ApiError::internal(error),
        LookupError::Database(e) => {
            tracing::warn!(error = %e, "a read of past claims failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "past claims cannot be read right now (the database is unreachable or busy)",
            )
        }
    }
}

#[derive(Serialize)]
struct History {
    national_id: String,
    versions: Vec<HistoryEntry>,
}

/// Every published version of a professional, oldest first: the run, its extract and
/// publication dates, whether it added, changed or removed them, and for a change the
/// claim fields that changed (`{path, old, new}`, JSON Pointer paths).
#[utoipa::path(
    get,
    path = "/v1/professionals/{id}/history",
    tag = "search",
    params(("id" = String, Path, description = "National id, bare RPPS or bare ADELI")),
    responses(
        (status = 200, description = "{national_id, versions: [{run_id, extract_ts, published_at, change, claims_changed, changes: [{path, old, new}]}]}"),
        (status = 400, description = "Malformed identifier", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Never published", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn professional_history(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = NationalId::parse(&id).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let versions = history::versions(&state.pool, &id).await.map_err(ApiError::internal)?;
    if versions.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{id} was never in the published directory"),
        ));
    }
    Ok(Json(History {
        national_id: id.as_str().to_owned(),
        versions: entries(&versions),
    })
    .into_response())
}
