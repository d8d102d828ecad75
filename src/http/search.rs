//! Search routes (scope `search`): professionals by name, identifier, place or code, with
//! filters and facets; and one professional's full record.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::national_id::NationalId;
use crate::search::SearchRequest;
use crate::search::index::FILTERS;
use crate::store::professionals;

/// Ranked search: an exact identifier first, then name matches. Prefixes (typeahead) and
/// typos (one edit up to six letters, two beyond) are forgiven; a query of any shape gets
/// best-effort results, never an error.
#[utoipa::path(
    get,
    path = "/v1/professionals",
    tag = "search",
    params(
        ("q" = Option<String>, Query, description = "Words, a name, an identifier (RPPS, ADELI, SIRET, FINESS, MSSanté address)"),
        ("profession" = Option<String>, Query), ("categorie" = Option<String>, Query), ("savoir_faire" = Option<String>, Query),
        ("departement" = Option<String>, Query), ("commune" = Option<String>, Query), ("code_postal" = Option<String>, Query),
        ("mode" = Option<String>, Query), ("secteur" = Option<String>, Query), ("structure" = Option<String>, Query),
        ("removed" = Option<bool>, Query), ("page" = Option<usize>, Query), ("per_page" = Option<usize>, Query, description = "At most 100"),
    ),
    responses((status = 200, description = "`{\"total\", \"results\": [...], \"facets\": {...}}`"), (status = 503, description = "The index is being built")),
    security(("bearer" = []))
)]
pub async fn search(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let Some(index) = state.search.load_full() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the search index is being built",
        ));
    };
    let number = |name: &str, default: usize| params.get(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let mut filters: Vec<(String, String)> = FILTERS
        .iter()
        .filter_map(|name| {
            params
                .get(*name)
                .filter(|v| !v.is_empty())
                .map(|v| ((*name).to_owned(), v.clone()))
        })
        .collect();
    // A structure is found by its identifiers (SIRET, FINESS, technical id).
    let mut q = params.get("q").cloned().unwrap_or_default();
    if let Some(structure) = params.get("structure").filter(|v| !v.is_empty()) {
        q = format!("{q} {structure}").trim().to_owned();
    }
    filters.retain(|(name, _)| name != "structure");
    let request = SearchRequest {
        q,
        filters,
        page: number("page", 1).max(1),
        per_page: number("per_page", 20).clamp(1, 100),
    };
    let response = tokio::task::spawn_blocking(move || index.search(&request))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(response).into_response())
}

/// One professional: every exercice and activity (the claims document as the IdP receives
/// it), savoir-faire, diplomas, mailboxes, first seen / last changed / removed dates.
#[utoipa::path(
    get,
    path = "/v1/professionals/{id}",
    tag = "search",
    params(("id" = String, Path, description = "National id, bare RPPS or bare ADELI")),
    responses((status = 200, description = "The full record"), (status = 404, description = "Never seen", body = super::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn record(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = NationalId::parse(&id).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    match professionals::full_record(&state.pool, &id)
        .await
        .map_err(ApiError::internal)?
    {
        Some(record) => Ok(Json(record).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{id} is not in the directory"),
        )),
    }
}
