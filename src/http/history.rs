//! The past of the directory: the claims a professional had at an instant (`?at=` on the
//! claims route, for audits: "what did we put in that token?") and their history of
//! versions, a page at a time. Both read Postgres and never take from what the claims
//! route's present answers need: their own two connections and a bound on the reads in
//! flight, shared; past that bound they answer 503 at once rather than queue.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::AppState;
use super::error::ApiError;
use super::extract::{Params, Path};
use crate::claims::history::entries;
use crate::national_id::NationalId;
use crate::search::Workers;
use crate::store::history::{self, Change, VersionPage};
use crate::store::professionals::LookupError;

/// Connections of the reads of the past, apart from the pool of everything else.
const PAST_CONNECTIONS: u32 = 2;
/// Below the claims path, as the searches and the export are: an audit's reads (their
/// Postgres backends on a local server, and the field diffs here) use the CPU it leaves.
const PAST_NICE: i32 = 10;
/// Longest wait for a connection of the past's pool.
const PAST_ACQUIRE: Duration = Duration::from_secs(2);
/// A history page's body ends before this (41 whole versions once made 19 MB).
const PAGE_BYTES: usize = 1 << 20;
/// What follows the last version of a page: `],"next":"<cursor>"}` (a cursor is at most
/// 106 hex digits: a run id and a national id of 32 characters).
const TAIL_BYTES: usize = 128;

/// The bounds of the reads of the past (settable for tests).
#[derive(Debug, Clone)]
pub struct PastLimits {
    /// Reads in flight, `?at=` and histories together; more are refused with 503 (an
    /// audit can retry, an IdP waits).
    pub reads: usize,
    /// A history page ends before its body reaches this many bytes (one version always
    /// goes, however large, so that a page moves on).
    pub page_bytes: usize,
}

impl Default for PastLimits {
    fn default() -> PastLimits {
        PastLimits {
            reads: 4,
            page_bytes: PAGE_BYTES,
        }
    }
}

/// What the reads of the past read with.
pub struct PastReads {
    pool: PgPool,
    /// Niced threads for the field diffs of history pages.
    workers: Workers,
    slots: Arc<Semaphore>,
    page_bytes: usize,
}

impl PastReads {
    /// A small pool of its own to the same database as `pool`, connected on first use.
    pub fn beside(pool: &PgPool, limits: &PastLimits) -> PastReads {
        PastReads {
            pool: crate::store::batch::niced_pool(&pool.connect_options(), PAST_NICE, PAST_CONNECTIONS, PAST_ACQUIRE),
            workers: Workers::start(PAST_CONNECTIONS as usize, PAST_NICE),
            slots: Arc::new(Semaphore::new(limits.reads)),
            page_bytes: limits.page_bytes,
        }
    }

    /// A slot for one read, or the 503 that says to come back.
    fn slot(&self) -> Result<SemaphorePermit<'_>, ApiError> {
        self.slots.try_acquire().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many reads of the past (claims at an instant, histories) at once; retry shortly",
            )
        })
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
    let _slot = state.past.slot()?;
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

/// A page of a professional's published versions, oldest first: the run, its extract and
/// publication dates, whether it added, changed or removed them, and for a change the
/// claim fields that changed (`{path, old, new}`, JSON Pointer paths). `next`, when more
/// follow, is where the next page starts: `?since=` it.
#[utoipa::path(
    get,
    path = "/v1/professionals/{id}/history",
    tag = "search",
    params(
        ("id" = String, Path, description = "National id, bare RPPS or bare ADELI"),
        ("since" = Option<String>, Query, description = "The `next` of a previous page; empty or absent: from the first version"),
        ("limit" = Option<i64>, Query, description = "Versions on the page, 1 to 100 (default 20); a page also ends before 1 MiB"),
    ),
    responses(
        (status = 200, description = "{national_id, versions: [{run_id, extract_ts, published_at, change, claims_changed, changes: [{path, old, new}]}], next}: `next` only when more versions follow"),
        (status = 400, description = "Malformed identifier, limit or cursor", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Never published", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many reads of the past at once, or the database is unreachable: retry", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn professional_history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let bad = |detail: String| ApiError::new(StatusCode::BAD_REQUEST, detail);
    let id = NationalId::parse(&id).map_err(|e| bad(e.to_string()))?;
    let limit = params
        .parse("limit", "a whole number")?
        .unwrap_or(history::DEFAULT_PAGE);
    if !(1..=history::MAX_PAGE).contains(&limit) {
        return Err(bad(format!("limit must be between 1 and {}", history::MAX_PAGE)));
    }
    let after = match params.text("since").map(str::trim).unwrap_or_default() {
        "" => None,
        cursor => Some(history::after(&id, cursor).ok_or_else(|| {
            bad("since is not a cursor of this history (give the `next` of a previous page, or nothing)".to_owned())
        })?),
    };
    let _slot = state.past.slot()?;
    let mut conn = state.past.pool.acquire().await.map_err(|e| unavailable(e.into()))?;
    // One version more than the page: whether another page follows.
    let page = history::page(&mut conn, &id, after, limit + 1)
        .await
        .map_err(unavailable)?;
    drop(conn);
    if after.is_none() && page.versions.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{id} was never in the published directory"),
        ));
    }
    // Field diffs of up to a hundred documents: off the async workers, niced.
    let budget = state.past.page_bytes;
    let body = state
        .past
        .workers
        .run(move || page_body(&id, &page, limit, budget))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// `{national_id, versions, next}`: up to `limit` versions, fewer when one more would take
/// the body past `budget` bytes; `next` only when versions remain (`page` holds one more
/// than `limit` when another page follows).
fn page_body(id: &NationalId, page: &VersionPage, limit: i64, budget: usize) -> serde_json::Result<Vec<u8>> {
    let all = entries(page.before.as_deref(), &page.versions);
    let mut body = b"{\"national_id\":".to_vec();
    serde_json::to_writer(&mut body, id.as_str())?;
    body.extend_from_slice(b",\"versions\":[");
    let mut written = 0;
    for entry in all.iter().take(usize::try_from(limit).unwrap_or(0)) {
        let mark = body.len();
        if written > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, entry)?;
        if written > 0 && body.len() + TAIL_BYTES > budget {
            body.truncate(mark);
            break;
        }
        written += 1;
    }
    body.push(b']');
    if written > 0 && written < all.len() {
        body.extend_from_slice(b",\"next\":");
        serde_json::to_writer(&mut body, &history::cursor(id, all[written - 1].run_id))?;
    }
    body.push(b'}');
    Ok(body)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::store::RunId;
    use crate::store::history::Version;

    fn page(runs: i64) -> VersionPage {
        let versions = (1..=runs)
            .map(|run| Version {
                run_id: RunId(run),
                extract_ts: None,
                published_at: DateTime::from_timestamp(run * 86_400, 0).unwrap(),
                change: if run == 1 { Change::Added } else { Change::Changed },
                claims_json: Some(serde_json::to_vec(&json!({ "telephone": run })).unwrap()),
            })
            .collect();
        VersionPage { before: None, versions }
    }

    fn written(id: &NationalId, page: &VersionPage, limit: i64, budget: usize) -> (Vec<i64>, Option<RunId>, usize) {
        let body = page_body(id, page, limit, budget).unwrap();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        let runs = doc["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["run_id"].as_i64().unwrap())
            .collect();
        let next = doc
            .get("next")
            .map(|n| history::after(id, n.as_str().unwrap()).unwrap());
        (runs, next, body.len())
    }

    #[test]
    fn a_page_stops_at_its_limit_or_before_its_budget_and_says_where_to_go_on() {
        let id = NationalId::parse("810015620395").unwrap();
        // `limit` + 1 versions read: a full page and a `next`; fewer: the end, no `next`.
        assert_eq!(written(&id, &page(4), 3, PAGE_BYTES).0, [1, 2, 3]);
        assert_eq!(written(&id, &page(4), 3, PAGE_BYTES).1, Some(RunId(3)));
        assert_eq!(written(&id, &page(3), 3, PAGE_BYTES).1, None);
        // A budget of two versions (and room for the longest cursor): two go, and the body
        // stays under it.
        let budget = written(&id, &page(4), 2, PAGE_BYTES).2 + TAIL_BYTES;
        let (runs, next, bytes) = written(&id, &page(4), 3, budget);
        assert_eq!((runs, next), (vec![1, 2], Some(RunId(2))));
        assert!(bytes <= budget, "{bytes}");
        // A budget below one version: that one still goes, so that the reader moves on.
        assert_eq!(written(&id, &page(4), 3, 10).0, [1]);
        assert_eq!(written(&id, &page(1), 3, 10).1, None);
    }
}
