//! Search routes (scope `search`): professionals by name, identifier, place or code, with
//! filters and facets; and one professional's full record.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::extract::{Params, Path};
use crate::national_id::NationalId;
use crate::search::filters::{FILTERS, REMOVED};
use crate::search::{Refused, SearchRequest};
use crate::store::professionals;

/// Ranked search: an exact identifier first, then name matches. Filters take a code or a
/// label typed in part, and codes come with their labels. Prefixes (typeahead) are
/// forgiven, and typos (one edit up to six letters, two beyond) when no hit matches
/// without one; `total` counts every hit, whatever the page and `facets`. A query of any
/// shape within the bounds gets best-effort results. Out of bounds, or a bad value: a 400 problem that
/// names the parameter; all search slots busy or too slow: a 503 problem.
#[utoipa::path(
    get,
    path = "/v1/professionals",
    tag = "search",
    params(
        ("q" = Option<String>, Query, description = "Words, a name, an identifier (RPPS, ADELI, SIRET, FINESS, MSSanté address)"),
        ("profession" = Option<String>, Query, description = "A code (`10`) or its label typed in part (`médec`)"),
        ("categorie" = Option<String>, Query, description = "A code or its label typed in part"),
        ("savoir_faire" = Option<String>, Query, description = "A code (`SM54`) or its label typed in part (`généra`)"),
        ("departement" = Option<String>, Query), ("commune" = Option<String>, Query, description = "An INSEE code or the commune's name typed in part"), ("code_postal" = Option<String>, Query),
        ("mode" = Option<String>, Query, description = "A code or its label typed in part"), ("secteur" = Option<String>, Query, description = "A code or its label typed in part"), ("structure" = Option<String>, Query),
        ("removed" = Option<bool>, Query, description = "true or false"), ("page" = Option<usize>, Query, description = "From 1; page × per_page at most 10,000"), ("per_page" = Option<usize>, Query, description = "1 to 100 (default 20)"),
        ("facets" = Option<bool>, Query, description = "false to skip the facet counts (typeahead; `total` is the same); default true"),
    ),
    responses(
        (status = 200, description = "`{\"total\", \"results\": [{\"national_id\", \"name\", \"professions\", \"profession_labels\": {code: label}, \"departements\", \"removed\", \"score\"}], \"facets\": {facet: [{\"value\", \"label\", \"count\"}]}}`; labels are the extract's own, of the generation the index holds"),
        (status = 400, description = "A parameter out of its bounds (q: 1,000 characters, 32 words) or of the wrong form", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The index is being built, or search is busy or too slow (retry)", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn search(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let request = request(&params)?;
    let guard = &state.search_guard;
    request
        .validate(guard.limits())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let Some(index) = state.search.load_full() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the search index is being built",
        ));
    };
    match guard.run(move || index.search(&request)).await {
        Ok(Ok(response)) => Ok(Json(response).into_response()),
        Ok(Err(error)) => Err(ApiError::internal(error)),
        Err(refused @ (Refused::Busy | Refused::TimedOut(_))) => {
            let mut response = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, refused.to_string()).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Ok(response)
        }
        Err(refused @ Refused::Failed(_)) => Err(ApiError::internal(refused)),
    }
}

/// The search the query string asks for; a bad value of a known parameter is a 400.
fn request(params: &Params) -> Result<SearchRequest, ApiError> {
    let mut filters: Vec<(String, String)> = Vec::new();
    for name in FILTERS {
        let value = if name == REMOVED {
            params.boolean(name)?.map(|b| b.to_string())
        } else {
            params.text(name).filter(|v| !v.is_empty()).map(str::to_owned)
        };
        filters.extend(value.map(|v| (name.to_owned(), v)));
    }
    // A structure is found by its identifiers (SIRET, FINESS, technical id).
    let mut q = params.text("q").unwrap_or_default().to_owned();
    if let Some(structure) = params.text("structure").filter(|v| !v.is_empty()) {
        q = format!("{q} {structure}").trim().to_owned();
    }
    let number = "a whole number";
    Ok(SearchRequest {
        q,
        filters,
        page: params.parse("page", number)?.unwrap_or(1),
        per_page: params.parse("per_page", number)?.unwrap_or(20),
        facets: params.boolean("facets")?.unwrap_or(true),
    })
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

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use crate::search::filters::FILTERS;

    /// The documented query parameters are written out for the macro: they must name
    /// every filter of the one list.
    #[test]
    fn the_api_documents_every_filter() {
        let doc = serde_json::to_value(super::super::openapi::ApiDoc::openapi()).expect("serialisable");
        let params = &doc["paths"]["/v1/professionals"]["get"]["parameters"];
        let names: Vec<&str> = params
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for filter in FILTERS {
            assert!(names.contains(&filter), "{filter} is not documented: {names:?}");
        }
    }
}
