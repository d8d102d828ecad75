//! `GET /v1/changes`: the change feed for systems downstream (scope `feed` or `admin`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Params};
use crate::store::feed::{self, FeedError};

/// The changes of every published generation after the cursor, oldest first: each
/// `{national_id, change, claims_changed, run_id, published_at}`. Keep `next` and ask
/// with it: no change is missed or repeated, imports running or not.
#[utoipa::path(
    get,
    path = "/v1/changes",
    tag = "feed",
    params(
        ("since" = Option<String>, Query, description = "The `next` of a previous answer; empty or absent: from the first generation"),
        ("limit" = Option<i64>, Query, description = "1 to 10000 (default 1000)"),
    ),
    responses(
        (status = 200, description = "{changes: [{national_id, change, claims_changed, run_id, published_at}], next}"),
        (status = 400, description = "A bad limit, or a cursor that no answer gave (not decodable, or past the published generation)", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 410, description = "The cursor is older than the history kept (retention): start again from an export", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn changes(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let limit = params.parse("limit", "a whole number")?.unwrap_or(feed::DEFAULT_LIMIT);
    match feed::page(&state.pool, params.text("since").unwrap_or_default(), limit).await {
        Ok(page) => Ok(Json(page).into_response()),
        Err(e @ (FeedError::BadLimit | FeedError::BadCursor | FeedError::Ahead { .. })) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))
        }
        Err(e @ FeedError::Expired(_)) => Err(ApiError::new(StatusCode::GONE, e.to_string())),
        Err(FeedError::Lookup(e)) => Err(ApiError::internal(e)),
    }
}
