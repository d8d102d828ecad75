//! The one HTTP error type: every failure answers `application/problem+json` (RFC 9457).
//! Internal failures say only that; their detail goes to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For 410: when the professional left the published directory.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub removal: Option<Box<Removal>>,
}

/// The members of a 410 (boxed: most problems have none, and every handler's `Result`
/// carries a `Problem`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Removal {
    /// When the professional left the published directory (RFC 3339): the extract
    /// timestamp of the generation that removed them.
    pub removed_at: String,
    /// On a read of the past (`?at=`): when that generation was published (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removal_published_at: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    problem: Problem,
    www_authenticate: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            problem: Problem {
                kind: "about:blank".to_owned(),
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                detail: Some(detail.into()),
                removal: None,
            },
            www_authenticate: false,
        }
    }

    /// A failure of ours: logged with its detail, answered with a fixed message.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// No detail that helps a guesser: the same answer for a missing, malformed or unknown
    /// key.
    pub fn unauthorized() -> ApiError {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "a valid API key is required");
        e.www_authenticate = true;
        e
    }

    /// A 404 or 410 of a claims lookup: who asked for an unknown or removed professional.
    pub fn is_unknown_professional(&self) -> bool {
        matches!(self.status, StatusCode::NOT_FOUND | StatusCode::GONE)
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "this key is not allowed here")
    }

    pub fn not_ready() -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no published generation is loaded yet")
    }

    pub fn removed(national_id: &str, removed_at: chrono::DateTime<chrono::Utc>) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::GONE,
            format!(
                "{national_id} is no longer in the published directory (removed {})",
                removed_at.format("%Y-%m-%d")
            ),
        );
        e.problem.removal = Some(Box::new(Removal {
            removed_at: removed_at.to_rfc3339(),
            removal_published_at: None,
        }));
        e
    }

    pub fn removal_published(mut self, published_at: chrono::DateTime<chrono::Utc>) -> ApiError {
        if let Some(removal) = &mut self.problem.removal {
            removal.removal_published_at = Some(published_at.to_rfc3339());
        }
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// The last resort: an error answered by something other than our handlers (the method
/// router's 405, the body limit's 413, the timeout's 503, a layer's refusal) becomes a
/// problem with a fixed detail. Its other headers (`Allow`, `Retry-After`) are kept.
pub async fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let detail = match status {
        StatusCode::NOT_FOUND => "no such route",
        StatusCode::METHOD_NOT_ALLOWED => "this route does not take this method (see Allow)",
        StatusCode::PAYLOAD_TOO_LARGE => "the body is larger than this route accepts",
        StatusCode::URI_TOO_LONG => "the URI is too long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "this body's Content-Type is not accepted here",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "the request headers are too large",
        StatusCode::SERVICE_UNAVAILABLE => "the request took too long; retry later",
        StatusCode::INTERNAL_SERVER_ERROR => "internal error",
        _ => "the request cannot be answered",
    };
    let (mut parts, _) = response.into_parts();
    let problem = ApiError::new(status, detail).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in problem.headers() {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, problem.into_body())
}
