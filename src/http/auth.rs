//! Access control: every `/v1` route needs `Authorization: Bearer <key>` with one of the
//! route's scopes. 401 for a missing or unknown key, 403 for a key without the scope.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use crate::keys::Scope;

pub async fn require(
    State((state, scopes)): State<(AppState, &'static [Scope])>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    let keys = state.keys.load();
    let key = keys.authenticate(presented).ok_or_else(ApiError::unauthorized)?;
    if !scopes.iter().any(|scope| key.scopes.contains(scope)) {
        tracing::info!(client = %key.name, ?scopes, "request refused: scope missing");
        return Err(ApiError::forbidden());
    }
    Ok(next.run(request).await)
}
