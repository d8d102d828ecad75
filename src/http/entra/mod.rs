//! Microsoft Entra ID's custom claims provider (`onTokenIssuanceStart`): Entra POSTs its
//! callout (`microsoft.graph.onTokenIssuanceStartCalloutData`) while it issues a token,
//! authenticated by its own bearer token (`token`), and takes the claims in exactly
//! Microsoft's response shape, strings and string arrays only, 3 KB at most (`claims`).
//! The subject comes from a configurable attribute of `authenticationContext.user`
//! through the subject mapping; the answer comes from the snapshot (Entra waits 1 s by
//! default and mints no token on a failure).

mod claims;
mod keys;
pub mod token;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::hooks::{UnknownSubject, document_for};
use axum::body::Bytes;
pub use claims::{MAX_CLAIMS_BYTES, entra_claims};
use claims::{Members, Text};
pub use keys::FetchError;
pub use token::{EntraAuth, EntraSettings};

const CALLOUT_TYPE: &str = "microsoft.graph.onTokenIssuanceStartCalloutData";

/// Entra's token issuance start callout: the claims for the token in `provideClaimsForToken`.
#[utoipa::path(
    post,
    path = "/v1/hooks/entra/token",
    tag = "hooks",
    request_body(content = Object, description = "Entra's onTokenIssuanceStart callout (`data.authenticationContext.user`)"),
    responses(
        (status = 200, description = "`{\"data\": {\"@odata.type\": \"microsoft.graph.onTokenIssuanceStartResponseData\", \"actions\": [{\"@odata.type\": \"microsoft.graph.tokenIssuanceStart.provideClaimsForToken\", \"claims\": {...}}]}}`; an empty `claims` for an unknown or removed subject under `--unknown-subject allow`", content_type = "application/json"),
        (status = 400, description = "Not an onTokenIssuanceStart callout", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Entra's bearer token is missing or does not validate", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Unknown, removed or unmapped subject, deny setting: no token", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The Entra route is not configured", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("entra" = []))
)]
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let Some(entra) = &state.entra else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such route"));
    };
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Err(reason) = entra.validate(authorization).await {
        tracing::info!(%reason, "Entra callout refused");
        return Err(ApiError::unauthorized());
    }
    let not_a_callout = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not an onTokenIssuanceStart callout (data.@odata.type {CALLOUT_TYPE})"),
        )
    };
    let callout: Callout = serde_json::from_slice(&body).map_err(|_| not_a_callout())?;
    if callout.data.odata_type != CALLOUT_TYPE {
        return Err(not_a_callout());
    }
    let user = callout.data.authentication_context.and_then(|context| context.user);
    // A string attribute; null (unset) or anything else is no subject.
    let subject = user
        .and_then(|user| user.get(&entra.settings.subject_attribute))
        .and_then(|value| serde_json::from_str::<Text>(value.get()).ok());
    let mapping = state.hooks.mapping_or_global(&entra.settings.mapping);
    match document_for(&state, mapping, subject.as_ref().map(|Text(text)| text.as_ref()))? {
        Ok(document) => {
            let claims = entra_claims(&document)
                .ok_or_else(|| ApiError::internal("a stored claims document is not a JSON object"))?;
            Ok(provide(&claims))
        }
        Err(reason) => match state.hooks.unknown {
            UnknownSubject::Deny => Err(ApiError::new(StatusCode::FORBIDDEN, reason)),
            UnknownSubject::Allow => Ok(provide(b"{}")),
        },
    }
}

/// What is read of Entra's callout; the rest of it (the clients, the correlation id) is
/// skipped unread.
#[derive(serde::Deserialize)]
struct Callout<'a> {
    #[serde(borrow)]
    data: CalloutData<'a>,
}

#[derive(serde::Deserialize)]
struct CalloutData<'a> {
    #[serde(rename = "@odata.type", borrow)]
    odata_type: std::borrow::Cow<'a, str>,
    #[serde(rename = "authenticationContext", borrow)]
    authentication_context: Option<AuthenticationContext<'a>>,
}

#[derive(serde::Deserialize)]
struct AuthenticationContext<'a> {
    /// The user's attributes (strings, or null when unset), read unparsed: only one is used.
    #[serde(borrow)]
    user: Option<Members<'a>>,
}

/// Microsoft's response to the callout, exactly: one `provideClaimsForToken` action around
/// the `claims` object (written as bytes: it is already JSON).
fn provide(claims: &[u8]) -> Response {
    const HEAD: &[u8] = br#"{"data":{"@odata.type":"microsoft.graph.onTokenIssuanceStartResponseData","actions":[{"@odata.type":"microsoft.graph.tokenIssuanceStart.provideClaimsForToken","claims":"#;
    const TAIL: &[u8] = b"}]}}";
    let mut body = Vec::with_capacity(HEAD.len() + claims.len() + TAIL.len());
    body.extend_from_slice(HEAD);
    body.extend_from_slice(claims);
    body.extend_from_slice(TAIL);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
