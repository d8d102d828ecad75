//! Our bounds on a request's size, answered as problems: the URI (414), the headers (431)
//! and the body of each group of routes (413). Hyper's own buffer is set above them (see
//! `listener`), so only requests far past them get hyper's bare answer.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Longer URIs are refused with 414: no route of ours needs more than a short query.
pub const MAX_URI_BYTES: usize = 8 << 10;
/// Larger headers (names and values together) are refused with 431.
pub const MAX_HEADER_BYTES: usize = 32 << 10;
/// Hook requests (Hydra, Okta) are small JSON documents.
pub const HOOK_BODY_BYTES: usize = 1 << 20;
/// Every other route takes no body worth the name.
pub const SMALL_BODY_BYTES: usize = 4 << 10;

pub async fn request_size(request: Request, next: Next) -> Response {
    let uri = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("the URI is longer than {MAX_URI_BYTES} bytes"),
        )
        .into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request headers are larger than {MAX_HEADER_BYTES} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}
