//! `GET /v1/export` (admin): the published generation as NDJSON, streamed (see `export`),
//! gzip-compressed when the client accepts it. One export at a time per server: a second
//! one is refused with 503 rather than doubling the work beside the claims path; an export
//! whose client takes nothing for a while ends, so that no client keeps the slot.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::sync::Semaphore;

use super::AppState;
use super::error::ApiError;
use crate::export::{self, ExportError};

/// The exports of a server: one at a time, each ended when its client takes nothing for
/// `stall`.
pub struct Exports {
    slots: Arc<Semaphore>,
    stall: Duration,
}

impl Exports {
    pub fn new(stall: Duration) -> Exports {
        Exports {
            slots: Arc::new(Semaphore::new(1)),
            stall,
        }
    }
}

/// The published generation, one `{national_id, removed_at, claims}` a line; its
/// generation, extract date, source and the change feed's cursor after it in headers.
#[utoipa::path(
    get,
    path = "/v1/export",
    tag = "feed",
    responses(
        (status = 200, description = "NDJSON, one professional a line (gzip with Accept-Encoding: gzip); headers X-Annuaire-Generation, X-Annuaire-Extract-Date, X-Annuaire-Source, X-Annuaire-Changes-Cursor", content_type = "application/x-ndjson"),
        (status = 503, description = "Nothing published yet, or an export is already running (one whose client takes nothing for --export-stall-seconds ends)", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn export(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let permit = Arc::clone(&state.exports.slots).try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "an export is already running; retry when it ends",
        )
    })?;
    let gzip = accepts_gzip(&headers);
    let options = (*state.pool.connect_options()).clone();
    // The permit goes with the export's work: held until its last chunk is handed over, its
    // client goes, or its client takes nothing for `stall`.
    let started = export::start(options, gzip, state.exports.stall, Some(permit)).await;
    let export::Export { head, chunks, done } = started.map_err(|e| match e {
        ExportError::NothingPublished => ApiError::not_ready(),
        e => ApiError::internal(e),
    })?;
    // Chunks that end without `done` end the body with an error, so the client sees a cut
    // transfer, never a short export that looks complete.
    let stream = futures::stream::unfold(Some((chunks, done)), |state| async move {
        let (mut chunks, mut done) = state?;
        match chunks.recv().await {
            Some(Ok(chunk)) => Some((Ok(chunk), Some((chunks, done)))),
            Some(Err(e)) => {
                tracing::error!(error = %e, "export failed midway");
                Some((Err(std::io::Error::other("the export failed")), None))
            }
            None if done.try_recv().is_ok() => None,
            None => Some((Err(std::io::Error::other("the export stopped before its end")), None)),
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let named = |name: &'static str, value: String| {
        HeaderValue::from_str(&value)
            .ok()
            .map(|v| (HeaderName::from_static(name), v))
    };
    let extract = head.extract_ts.map(|ts| ts.to_rfc3339()).unwrap_or_default();
    for (name, value) in [
        named("x-annuaire-generation", head.generation.to_string()),
        named("x-annuaire-extract-date", extract),
        named("x-annuaire-source", head.source),
        named("x-annuaire-changes-cursor", head.changes_cursor),
    ]
    .into_iter()
    .flatten()
    {
        h.insert(name, value);
    }
    Ok(response)
}

/// Whether `Accept-Encoding` lists gzip with a weight above zero.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts.next().is_some_and(|name| name.eq_ignore_ascii_case("gzip"))
                && !parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_only_when_accepted_with_a_weight() {
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
            accepts_gzip(&h)
        };
        assert!(with("gzip"));
        assert!(with("br, GZIP;q=0.5"));
        assert!(!with("gzip;q=0"));
        assert!(!with("gzip; q=0.000"));
        assert!(!with("deflate, br"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
