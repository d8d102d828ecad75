//! Access control: every `/v1` route needs `Authorization: Bearer <key>` with one of the
//! route's scopes. 401 for a missing or unknown key, 403 for a key without the scope.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use crate::keys::Scope;

/// The check of every group of routes but the claims route, as a middleware.
pub async fn require(
    State((state, scopes)): State<(AppState, &'static [Scope])>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    check(&state, request.headers(), scopes)?;
    Ok(next.run(request).await)
}

/// The same check as an extractor, for the claims route alone: each `route_layer` costs
/// every request a boxed service's clone and a boxed future, and the claims route answers
/// the IdP at the rate of `/healthz`.
pub struct ClaimsKey;

impl FromRequestParts<AppState> for ClaimsKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        check(state, &parts.headers, &[Scope::Claims])?;
        Ok(ClaimsKey)
    }
}

fn check(state: &AppState, headers: &HeaderMap, scopes: &[Scope]) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or_else(ApiError::unauthorized)?;
    let keys = state.keys.load();
    let key = keys.authenticate(presented).ok_or_else(ApiError::unauthorized)?;
    if !scopes.iter().any(|scope| key.scopes.contains(scope)) {
        tracing::info!(client = %key.name, ?scopes, "request refused: scope missing");
        return Err(ApiError::forbidden());
    }
    Ok(())
}

/// The token of `Bearer <token>`; the scheme is case-insensitive (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_scheme_is_case_insensitive() {
        for header in ["Bearer ann_k", "bearer ann_k", "BEARER  ann_k ", "bEaReR ann_k"] {
            assert_eq!(bearer_token(header), Some("ann_k"), "{header}");
        }
        for header in ["Basic ann_k", "Bearer", "Bearer ", "Bearerann_k", ""] {
            assert_eq!(bearer_token(header), None, "{header}");
        }
    }
}
