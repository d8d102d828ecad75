//! Token hooks of the identity providers that call out while they issue a token: Ory Hydra
//! (`oauth2.token_hook`) and Okta (token inline hook). Both map the token's subject to a
//! national id (a setting), and answer an unknown or removed professional with a deliberate
//! choice: deny the token, or let it through without sectoral claims.

use std::str::FromStr;

use super::extract::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use regex::Regex;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::national_id::NationalId;
use crate::snapshot::Answer;

/// How a token subject becomes a national id.
#[derive(Debug, Clone)]
pub enum SubjectMapping {
    /// The subject is a national id, a bare RPPS or a bare ADELI.
    NationalId,
    /// `f:<uuid>:<id>` (Keycloak-federated users): the part after the last `:`.
    Federated,
    /// A regular expression whose group `id` (or first group) is the identifier.
    Pattern(Regex),
}

impl FromStr for SubjectMapping {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "national-id" => Ok(SubjectMapping::NationalId),
            "federated" => Ok(SubjectMapping::Federated),
            _ => match text.strip_prefix("pattern:") {
                Some(pattern) => {
                    let regex = Regex::new(pattern).map_err(|e| format!("invalid subject pattern: {e}"))?;
                    if regex.captures_len() < 2 {
                        return Err("the subject pattern needs a capture group (named `id`, or the first)".into());
                    }
                    Ok(SubjectMapping::Pattern(regex))
                }
                None => Err(format!(
                    "unknown subject mapping {text:?}: national-id, federated or pattern:<regex>"
                )),
            },
        }
    }
}

impl SubjectMapping {
    pub fn map(&self, subject: &str) -> Option<NationalId> {
        let candidate = match self {
            SubjectMapping::NationalId => subject,
            SubjectMapping::Federated => subject.rsplit(':').next()?,
            SubjectMapping::Pattern(regex) => {
                let captures = regex.captures(subject)?;
                captures.name("id").or_else(|| captures.get(1))?.as_str()
            }
        };
        NationalId::parse(candidate).ok()
    }
}

/// What a token for an unknown, removed or unmappable subject gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnknownSubject {
    /// Refuse the token (Hydra 403, Okta error): no sectoral claims, no login.
    Deny,
    /// Issue the token without sectoral claims (Hydra and Okta 204).
    Allow,
}

/// What the plain claims routes (`/v1/claims/{id}`, `/v1/claims?username=`) answer for an
/// unknown or removed professional; a malformed request (400) or no data yet (503) stay
/// problems whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnknownPlain {
    /// The problem: 404, or 410 with `removed_at`.
    Problem,
    /// `200 {}`: for the claim mappers that mint no token at all on any other status.
    Empty,
}

#[derive(Debug, Clone)]
pub struct HookSettings {
    /// The subject mapping of every route that has none of its own.
    pub mapping: SubjectMapping,
    pub unknown: UnknownSubject,
    pub unknown_plain: UnknownPlain,
    /// Mappings of their own, for the Hydra hook, the Okta hook and the query form of the
    /// claims route.
    pub hydra_mapping: Option<SubjectMapping>,
    pub okta_mapping: Option<SubjectMapping>,
    pub query_mapping: Option<SubjectMapping>,
    /// The Entra custom claims provider's settings; its route is off without them.
    pub entra: Option<super::entra::EntraSettings>,
}

impl Default for HookSettings {
    fn default() -> Self {
        HookSettings {
            mapping: SubjectMapping::NationalId,
            unknown: UnknownSubject::Deny,
            unknown_plain: UnknownPlain::Problem,
            hydra_mapping: None,
            okta_mapping: None,
            query_mapping: None,
            entra: None,
        }
    }
}

impl HookSettings {
    /// A route's own mapping, else the global one.
    pub fn mapping_or_global<'a>(&'a self, own: &'a Option<SubjectMapping>) -> &'a SubjectMapping {
        own.as_ref().unwrap_or(&self.mapping)
    }
}

/// The claims document of the subject, or why there is none.
fn claims_for(
    state: &AppState,
    mapping: &SubjectMapping,
    subject: Option<&str>,
) -> Result<Result<Value, String>, ApiError> {
    match document_for(state, mapping, subject)? {
        Ok(json) => Ok(Ok(serde_json::from_slice(&json).map_err(ApiError::internal)?)),
        Err(reason) => Ok(Err(reason)),
    }
}

/// The stored claims document (its JSON bytes) of the subject, or why there is none.
pub(super) fn document_for(
    state: &AppState,
    mapping: &SubjectMapping,
    subject: Option<&str>,
) -> Result<Result<Vec<u8>, String>, ApiError> {
    if !state.status.loaded() {
        return Err(ApiError::not_ready());
    }
    let Some(subject) = subject else {
        return Ok(Err("the token has no subject".to_owned()));
    };
    let Some(id) = mapping.map(subject) else {
        return Ok(Err("the subject does not map to a national id".to_owned()));
    };
    match state.snapshot.load().lookup(&id).map_err(ApiError::internal)? {
        Answer::Found { json, .. } => Ok(Ok(json)),
        Answer::Removed { removed_at } => Ok(Err(format!(
            "{id} is no longer in the directory (removed {})",
            removed_at.format("%Y-%m-%d")
        ))),
        Answer::NotFound => Ok(Err(format!("{id} is not in the directory"))),
    }
}

/// The claims that go into the access token: the identity, not the whole document.
fn access_token_claims(document: &Value) -> Value {
    json!({ "SubjectNameID": document["SubjectNameID"], "otherIds": document["otherIds"] })
}

/// Ory Hydra token hook: `200` with the extra claims (they replace Hydra's own extra
/// claims), `204` to issue the token unchanged, `403` to refuse it.
#[utoipa::path(
    post,
    path = "/v1/hooks/hydra/token",
    tag = "hooks",
    request_body(content = Object, description = "Hydra's token hook request (session, request)"),
    responses(
        (status = 200, description = "`{\"session\": {\"access_token\": {...}, \"id_token\": {...}}}`", content_type = "application/json"),
        (status = 204, description = "Unknown or removed subject, fail-open setting: token issued unchanged"),
        (status = 403, description = "Unknown or removed subject, deny setting: token refused", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn hydra_token(State(state): State<AppState>, Json(body): Json<Value>) -> Result<Response, ApiError> {
    let id_token = &body["session"]["id_token"];
    let subject = id_token["subject"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or_else(|| id_token["id_token_claims"]["sub"].as_str());
    let mapping = state.hooks.mapping_or_global(&state.hooks.hydra_mapping);
    match claims_for(&state, mapping, subject)? {
        Ok(document) => Ok(Json(json!({
            "session": { "access_token": access_token_claims(&document), "id_token": document }
        }))
        .into_response()),
        Err(reason) => Ok(refuse_or_pass(&state, reason, StatusCode::NO_CONTENT)),
    }
}

/// Okta token inline hook: `commands` that add the claims to the ID and access tokens, an
/// `error` to refuse the token, or `204` to let it through unchanged.
#[utoipa::path(
    post,
    path = "/v1/hooks/okta/token",
    tag = "hooks",
    request_body(content = Object, description = "Okta's token inline hook request (data.identity, data.access)"),
    responses(
        (status = 200, description = "`{\"commands\": [...]}` patches, or `{\"error\": {...}}` under the deny setting", content_type = "application/json"),
        (status = 204, description = "Unknown or removed subject, fail-open setting: token issued unchanged"),
    ),
    security(("bearer" = []))
)]
pub async fn okta_token(State(state): State<AppState>, Json(body): Json<Value>) -> Result<Response, ApiError> {
    let subject = body["data"]["identity"]["claims"]["sub"].as_str();
    let mapping = state.hooks.mapping_or_global(&state.hooks.okta_mapping);
    match claims_for(&state, mapping, subject)? {
        Ok(document) => {
            let add = |claims: &Value| -> Vec<Value> {
                claims
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| json!({"op": "add", "path": format!("/claims/{k}"), "value": v}))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            Ok(Json(json!({
                "commands": [
                    { "type": "com.okta.identity.patch", "value": add(&document) },
                    { "type": "com.okta.access.patch", "value": add(&access_token_claims(&document)) },
                ]
            }))
            .into_response())
        }
        Err(reason) => match state.hooks.unknown {
            // Okta refuses the token when the hook answers an error object.
            UnknownSubject::Deny => Ok(Json(json!({ "error": { "errorSummary": reason } })).into_response()),
            UnknownSubject::Allow => Ok(StatusCode::NO_CONTENT.into_response()),
        },
    }
}

fn refuse_or_pass(state: &AppState, reason: String, pass: StatusCode) -> Response {
    match state.hooks.unknown {
        UnknownSubject::Deny => ApiError::new(StatusCode::FORBIDDEN, reason).into_response(),
        UnknownSubject::Allow => pass.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_map_to_national_ids() {
        let plain: SubjectMapping = "national-id".parse().unwrap();
        assert_eq!(plain.map("10003456125").unwrap().as_str(), "810003456125");
        assert!(plain.map("f:abc:810003456125").is_none());
        let federated: SubjectMapping = "federated".parse().unwrap();
        assert_eq!(
            federated.map("f:6c1b2e3a-1111:810003456125").unwrap().as_str(),
            "810003456125"
        );
        let pattern: SubjectMapping = "pattern:^psc\\|(?P<id>\\d+)$".parse().unwrap();
        assert_eq!(pattern.map("psc|810003456125").unwrap().as_str(), "810003456125");
        assert!(pattern.map("other|810003456125").is_none());
        assert!("pattern:nogroup".parse::<SubjectMapping>().is_err());
        assert!("whatever".parse::<SubjectMapping>().is_err());
    }
}
