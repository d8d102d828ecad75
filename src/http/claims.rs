//! `GET /v1/claims/{id}` (and `GET /v1/claims?username=` for the Keycloak claim mappers):
//! the claims document of `claims.md`, from the in-memory snapshot.
//! The IdP waits on this answer while it issues a token, so its per-request work is kept to
//! the lookup and the decompression: headers common to a generation are rendered once
//! (`Snapshot::last_modified`), the ETag on the stack, no request header is copied but
//! `If-None-Match`, and the key and `Cache-Control` are handled here rather than by route
//! layers (measured with wrk: 28.6 → 23.0 µs of server CPU a request; `/healthz` 16.4).

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::AppState;
use super::auth::ClaimsKey;
use super::error::ApiError;
use super::extract::{Params, Path};
use super::headers::CLAIMS_CACHE;
use super::history::{self, AsOf};
use super::hooks::UnknownPlain;
use crate::national_id::NationalId;
use crate::signing::{Signer, SigningError};
use crate::snapshot::{Answer, ETag};

/// The request headers a claims answer depends on, alone (axum's `HeaderMap` extractor
/// would copy them all): `If-None-Match`, and whether `Accept` asks for a signed document.
pub struct ClaimsHeaders {
    if_none_match: Option<HeaderValue>,
    /// `Accept: application/jwt`: the compact JWS of the document.
    jwt: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for ClaimsHeaders {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let jwt = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(accepts_jwt);
        Ok(ClaimsHeaders {
            if_none_match: parts.headers.get(header::IF_NONE_MATCH).cloned(),
            jwt,
        })
    }
}

/// Whether an `Accept` value lists `application/jwt` (with a weight above zero).
fn accepts_jwt(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        parts
            .next()
            .is_some_and(|media| media.eq_ignore_ascii_case("application/jwt"))
            && !parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0))
            })
    })
}

impl ClaimsHeaders {
    /// Whether the client holds this version: one of its tags is `etag`, or it sent `*`.
    fn matches(&self, etag: &str) -> bool {
        self.if_none_match
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"))
    }

    /// The latest `exp` among the client's tags of a token of `document` (`token_tag`) that
    /// passes `fresh`.
    fn held_token(&self, document: &str, fresh: impl Fn(i64) -> bool) -> Option<i64> {
        let value = self.if_none_match.as_ref()?.to_str().ok()?;
        value
            .split(',')
            .filter_map(|tag| {
                tag.trim()
                    .strip_prefix('"')?
                    .strip_prefix(document)?
                    .strip_prefix('.')?
                    .strip_suffix(".jws\"")?
                    .parse()
                    .ok()
                    .filter(|&exp| fresh(exp))
            })
            .max()
    }
}

/// Claims for a national id (`810001234565`), a bare RPPS (11 digits) or a bare ADELI (9).
#[utoipa::path(
    get,
    path = "/v1/claims/{id}",
    tag = "claims",
    params(
        ("id" = String, Path, description = "National id, bare RPPS or bare ADELI"),
        ("at" = Option<String>, Query, description = "An RFC 3339 instant: the document exactly as served then (read from Postgres, for audits; without it, the in-memory snapshot answers)"),
    ),
    responses(
        (status = 200, description = "The claims document", content_type = "application/json"),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
        (status = 400, description = "Malformed identifier", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the claims scope", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Never in the directory", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 410, description = "Removed from the directory; `removed_at` says when", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "No published generation loaded yet (with `at`: past claims cannot be read right now)", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_claims(
    State(state): State<AppState>,
    key: Result<ClaimsKey, ApiError>,
    id: Result<Path<String>, ApiError>,
    headers: ClaimsHeaders,
    at: Result<AsOf, ApiError>,
) -> Response {
    // The key is checked first: who has none learns nothing, not even a malformed path.
    let request = key.and(id).and_then(|Path(id)| {
        let at = at?;
        let id = NationalId::parse(&id).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        Ok((id, at))
    });
    respond(&state, request, &headers).await
}

/// The query parameters that may carry the identifier, in the order they are read: the
/// Keycloak claim mappers send the username under one of these names.
const QUERY_NAMES: [&str; 3] = ["username", "id", "sub"];

/// The same answers keyed by a query parameter, for the Keycloak claim mappers, which
/// append the user's identifier to a fixed URL.
#[utoipa::path(
    get,
    path = "/v1/claims",
    tag = "claims",
    params(
        ("username" = Option<String>, Query, description = "The identifier: a national id, bare RPPS or ADELI, or what the query form's subject mapping turns into one (`psc-810001234565`)"),
        ("id" = Option<String>, Query, description = "Read when `username` is absent"),
        ("sub" = Option<String>, Query, description = "Read when `username` and `id` are absent"),
        ("at" = Option<String>, Query, description = "As on `/v1/claims/{id}`"),
    ),
    responses(
        (status = 200, description = "The claims document (or `{}` for an unknown or removed professional under `--unknown-plain empty`)", content_type = "application/json"),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
        (status = 400, description = "No identifier given", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (Bearer, X-API-Key, or the password of HTTP Basic)", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Never in the directory, or an identifier that maps to no national id", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 410, description = "Removed from the directory; `removed_at` says when", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "No published generation loaded yet", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_claims_by_query(
    State(state): State<AppState>,
    key: Result<ClaimsKey, ApiError>,
    params: Result<Params, ApiError>,
    headers: ClaimsHeaders,
    at: Result<AsOf, ApiError>,
) -> Response {
    let request = key.and(params).and_then(|params| {
        let at = at?;
        let given = QUERY_NAMES
            .iter()
            .find_map(|name| params.text(name).map(str::trim).filter(|v| !v.is_empty()))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "give the professional's identifier as username, id or sub",
                )
            })?;
        let mapping = state.hooks.mapping_or_global(&state.hooks.query_mapping);
        // A user who is no professional (an administrator's account) is unknown, not a
        // malformed request: the mapper's setting for unknown professionals applies.
        let id = mapping
            .map(given)
            .or_else(|| NationalId::parse(given).ok())
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "this identifier maps to no national id"))?;
        Ok((id, at))
    });
    respond(&state, request, &headers).await
}

/// The answer to a claims request, from the snapshot (or from Postgres with `at`), with the
/// unknown-professional setting applied and the claims caching rule on every answer.
async fn respond(state: &AppState, request: Result<(NationalId, AsOf), ApiError>, headers: &ClaimsHeaders) -> Response {
    let answered = match request {
        Ok((id, AsOf(None))) => answer(state, &id, headers),
        Ok((_, AsOf(Some(_)))) if headers.jwt => Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "past documents (at) are served as JSON only; signed claims are of the present document",
        )),
        Ok((id, AsOf(Some(at)))) => history::claims_at(state, &id, at).await,
        Err(problem) => Err(problem),
    };
    let mut response = match answered {
        Ok(response) => response,
        Err(problem) if state.hooks.unknown_plain == UnknownPlain::Empty && problem.is_unknown_professional() => {
            empty_document()
        }
        Err(problem) => problem.into_response(),
    };
    // Every claims answer, problems included, is the caller's alone and revalidated.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(CLAIMS_CACHE));
    if state.signer.is_some() {
        // Where signed claims are served, the answer depends on `Accept`.
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept"));
    }
    response
}

/// `200 {}`: no sectoral claims, for the clients that refuse any other status.
fn empty_document() -> Response {
    let mut response = Response::new(Body::from("{}"));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn answer(state: &AppState, id: &NationalId, headers: &ClaimsHeaders) -> Result<Response, ApiError> {
    let signer = match (headers.jwt, &state.signer) {
        (false, _) => None,
        (true, Some(signer)) => Some(signer),
        (true, None) => {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "signed claims (application/jwt) are not served here: ANNUAIRE_ISSUER is not set",
            ));
        }
    };
    if !state.status.loaded() {
        return Err(ApiError::not_ready());
    }
    let snapshot = state.snapshot.load();
    match snapshot.lookup(id).map_err(ApiError::internal)? {
        Answer::Found { json, etag } => {
            let mut response = match signer {
                None => {
                    let tag = HeaderValue::from_bytes(etag.as_bytes()).map_err(ApiError::internal)?;
                    let body = (!headers.matches(etag.as_str())).then(|| (Body::from(json), "application/json"));
                    tagged(body, tag)
                }
                Some(signer) => signed(signer, id, &snapshot, &json, &etag, headers)?,
            };
            if let Some(value) = &snapshot.last_modified {
                response.headers_mut().insert(header::LAST_MODIFIED, value.clone());
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

/// A body of its content type, or a 304 when `body` is `None` (the client holds this
/// version), with the entity tag either way.
fn tagged(body: Option<(Body, &'static str)>, etag: HeaderValue) -> Response {
    let mut response = match body {
        Some((body, content_type)) => {
            let mut response = Response::new(body);
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        None => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        }
    };
    response.headers_mut().insert(header::ETAG, etag);
    response
}

/// The document as a compact JWS: another representation of the same version, with its
/// own entity tag, the document's with the token's `exp` (`"<document>.<exp>.jws"`), so that
/// the tag a client sends back says until when the token it holds is valid. A 304 only
/// while that token has more than half its lifetime ahead (`Signer::revalidates`), a new
/// token after; `*` names no token, so it never revalidates one.
fn signed(
    signer: &Signer,
    id: &NationalId,
    snapshot: &crate::snapshot::Snapshot,
    json: &[u8],
    etag: &ETag,
    headers: &ClaimsHeaders,
) -> Result<Response, ApiError> {
    let document = etag.as_str().trim_matches('"');
    let now = Utc::now().timestamp();
    if let Some(exp) = headers.held_token(document, |exp| signer.revalidates(exp, now)) {
        return Ok(tagged(None, token_tag(document, exp)?));
    }
    let generation = snapshot.generation.map_or(0, |g| g.0);
    let signed = signer
        .sign(id.as_str(), generation, json)
        .map_err(|error| match error {
            SigningError::NotLoaded => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no claims signing key this replica can open is loaded (see /readyz: signing)",
            ),
            other => ApiError::internal(other),
        })?;
    let tag = token_tag(document, signed.exp)?;
    Ok(tagged(Some((Body::from(signed.jws), "application/jwt")), tag))
}

/// The entity tag of a token of `document` (the hex of its tag) that expires at `exp`.
fn token_tag(document: &str, exp: i64) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!("\"{document}.{exp}.jws\"")).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::{ClaimsHeaders, accepts_jwt};

    #[test]
    fn a_token_tag_names_its_document_and_expiry() {
        let sent = |value: &str| ClaimsHeaders {
            if_none_match: Some(HeaderValue::from_str(value).unwrap()),
            jwt: true,
        };
        let any = |_| true;
        assert_eq!(sent(r#""ab.1300.jws""#).held_token("ab", any), Some(1300));
        let several = sent(r#""cd.1400.jws", "ab.1200.jws", "ab.1300.jws", "ab.9999.jws""#);
        assert_eq!(several.held_token("ab", any), Some(9999));
        assert_eq!(
            several.held_token("ab", |exp| exp < 9999),
            Some(1300),
            "the latest fresh token of this document"
        );
        assert_eq!(several.held_token("ab", |_| false), None);
        assert_eq!(
            sent(r#""ab.jws""#).held_token("ab", any),
            None,
            "a tag without an expiry"
        );
        assert_eq!(sent(r#""ab""#).held_token("ab", any), None, "the JSON's tag");
        assert_eq!(sent("*").held_token("ab", any), None);
    }

    #[test]
    fn accept_asks_for_a_jws_by_its_media_type() {
        assert!(accepts_jwt("application/jwt"));
        assert!(accepts_jwt("application/json;q=0.5, Application/JWT"));
        assert!(!accepts_jwt("application/json"));
        assert!(!accepts_jwt("*/*"));
        assert!(!accepts_jwt("application/jwt;q=0"));
    }
}
