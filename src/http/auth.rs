//! Access control: every `/v1` route needs `Authorization: Bearer <key>` with one of the
//! route's scopes. 401 for a missing or unknown key, 403 for a key without the scope.
//! Routes of the `claims` scope alone also take the key as `X-API-Key` or as the password
//! of HTTP Basic: some Keycloak claim mappers can send only one of those. Never with a Basic
//! challenge, so that no browser is led to hold ambient credentials.

use std::borrow::Cow;

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
    let presented = presented(headers, scopes == [Scope::Claims]).ok_or_else(ApiError::unauthorized)?;
    let keys = state.keys.load();
    let key = keys.authenticate(&presented).ok_or_else(ApiError::unauthorized)?;
    if !scopes.iter().any(|scope| key.scopes.contains(scope)) {
        tracing::info!(client = %key.name, ?scopes, "request refused: scope missing");
        return Err(ApiError::forbidden());
    }
    Ok(())
}

/// The key the request presents: a bearer token, or on claims-only routes (`mapper_forms`)
/// an `X-API-Key` or the password of HTTP Basic credentials.
fn presented(headers: &HeaderMap, mapper_forms: bool) -> Option<Cow<'_, str>> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Some(token) = authorization.and_then(bearer_token) {
        return Some(Cow::Borrowed(token));
    }
    if !mapper_forms {
        return None;
    }
    if let Some(key) = headers.get(X_API_KEY).and_then(|v| v.to_str().ok()).map(str::trim) {
        return (!key.is_empty()).then_some(Cow::Borrowed(key));
    }
    authorization.and_then(basic_password).map(Cow::Owned)
}

const X_API_KEY: &str = "x-api-key";

/// The password of `Basic <base64(user:password)>` (RFC 7617); the user name is ignored.
fn basic_password(value: &str) -> Option<String> {
    use base64::Engine;
    let (scheme, credentials) = value.trim_start().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (_, password) = decoded.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
}

/// The token of `Bearer <token>`; the scheme is case-insensitive (RFC 9110 §11.1).
pub(super) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::{basic_password, bearer_token, presented};
    use axum::http::{HeaderMap, HeaderValue, header};

    #[test]
    fn mapper_forms_only_where_asked() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("ann_k"));
        assert_eq!(presented(&headers, true).as_deref(), Some("ann_k"));
        assert_eq!(presented(&headers, false), None);
        let mut headers = HeaderMap::new();
        // `idp:ann_k` in base64.
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic aWRwOmFubl9r"));
        assert_eq!(presented(&headers, true).as_deref(), Some("ann_k"));
        assert_eq!(presented(&headers, false), None);
        assert_eq!(basic_password("Basic !!!"), None);
        // `idp:` — no password.
        assert_eq!(basic_password("Basic aWRwOg=="), None);
    }

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
