//! Security headers on every answer, and how long each kind of answer may be kept: claims
//! are revalidated by ETag, everything else (admin, search, the page) is never stored.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// For JSON answers: nothing to load, nothing may frame them.
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// For the admin page: its own script, style and API calls only (no inline script).
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The claims path: private to the caller, and revalidated (the ETag keeps that cheap).
pub const CLAIMS_CACHE: &str = "private, no-cache";
/// Everything else.
pub const NO_STORE: &str = "no-store";

/// Adds the security headers and the default `Cache-Control` to every answer that does not
/// set its own.
pub fn secure(router: Router) -> Router {
    let defaults: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, API_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, NO_STORE),
    ];
    defaults.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ))
    })
}
