//! `GET /v1/claims/{id}`: the claims document of `claims.md`, from the in-memory snapshot.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use super::extract::Path;
use crate::national_id::NationalId;
use crate::snapshot::Answer;

/// Claims for a national id (`810001234565`), a bare RPPS (11 digits) or a bare ADELI (9).
#[utoipa::path(
    get,
    path = "/v1/claims/{id}",
    tag = "claims",
    params(("id" = String, Path, description = "National id, bare RPPS or bare ADELI")),
    responses(
        (status = 200, description = "The claims document", content_type = "application/json"),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
        (status = 400, description = "Malformed identifier", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the claims scope", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Never in the directory", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 410, description = "Removed from the directory; `removed_at` says when", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "No published generation loaded yet", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_claims(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = NationalId::parse(&id).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    if !state.status.loaded() {
        return Err(ApiError::not_ready());
    }
    let snapshot = state.snapshot.load();
    match snapshot.lookup(&id).map_err(ApiError::internal)? {
        Answer::Found { json, etag } => {
            let etag_value = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
            let unchanged = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
            let mut response = if unchanged {
                Response::builder().status(StatusCode::NOT_MODIFIED).body(Body::empty())
            } else {
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(json))
            }
            .map_err(ApiError::internal)?;
            let response_headers = response.headers_mut();
            response_headers.insert(header::ETAG, etag_value);
            if let Some(ts) = snapshot.extract_ts.or(snapshot.published_at) {
                let http_date = ts.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
                if let Ok(value) = HeaderValue::from_str(&http_date) {
                    response_headers.insert(header::LAST_MODIFIED, value);
                }
            }
            Ok(response)
        }
        Answer::Removed { removed_at } => Err(ApiError::removed(id.as_str(), removed_at)),
        Answer::NotFound => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{id} is not in the directory"),
        )),
    }
}
