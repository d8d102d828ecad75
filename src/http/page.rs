//! The admin page: one static HTML file with its script and style served beside it, so
//! that its Content-Security-Policy allows no inline script or style.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::headers::PAGE_POLICY;

pub async fn page() -> Response {
    let mut response = axum::response::Html(include_str!("page.html")).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    response
}

pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("page.js"),
    )
        .into_response()
}

pub async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("page.css"),
    )
        .into_response()
}
