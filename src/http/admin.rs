//! Admin routes (scope `admin`): the jobs with their next fire times, running a job now,
//! and the import runs with what each changes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::extract::{Params, Path};
use crate::import::review::{self, ReviewError};
use crate::jobs::{Trigger, runner};
use crate::store::{Change, RunId, runs};

/// The jobs, their schedule and next fire time, and their latest runs.
#[utoipa::path(get, path = "/v1/jobs", tag = "admin", responses((status = 200, description = "`{\"jobs\": [...], \"runs\": [...]}`")), security(("bearer" = [])))]
pub async fn list_jobs(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let jobs: Vec<_> = state
        .jobs
        .iter()
        .map(|job| {
            json!({
                "name": job.name,
                "kind": job.kind,
                "enabled": job.enabled,
                "schedule": job.schedule_text,
                "time_zone": job.time_zone.name(),
                "sources": job.sources,
                "next_fire": job.enabled.then(|| job.next_fire(now)).flatten(),
            })
        })
        .collect();
    let recent = runner::recent(&state.pool, 50).await.map_err(ApiError::internal)?;
    Ok(Json(json!({ "jobs": jobs, "runs": recent })).into_response())
}

/// Starts a run of the job now; it is recorded like a scheduled one (see `/v1/jobs`).
#[utoipa::path(
    post,
    path = "/v1/jobs/{name}/run",
    tag = "admin",
    params(("name" = String, Path, description = "Job name")),
    responses((status = 202, description = "Started"), (status = 404, description = "No such job", body = super::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn run_job(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let Some(index) = state.jobs.iter().position(|j| j.name == name) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no job named {name:?}")));
    };
    let (pool, jobs, settings, cancel) = (
        state.pool.clone(),
        state.jobs.clone(),
        state.runner.clone(),
        state.shutdown.clone(),
    );
    // Tracked, so that shutdown waits for the run to reach a safe point; on the process's
    // runtime, which outlives the admin lane this request is served in.
    state.job_runs.spawn_on(
        async move {
            let job = &jobs[index];
            if let Err(error) = runner::run(&pool, job, Trigger::Api, None, &settings, &cancel).await {
                tracing::error!(job = %job.name, %error, "job run could not be recorded");
            }
        },
        &state.runtime,
    );
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": name, "started": true }))).into_response())
}

/// How many runs `/v1/imports` lists by default, and at most.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 1_000;

/// The latest import runs, newest first (the `--json` run record of the README).
#[utoipa::path(get, path = "/v1/imports", tag = "admin", params(("limit" = Option<i64>, Query, description = "At most this many, 1 to 1000 (default 50)")), responses((status = 200, description = "Run records"), (status = 400, description = "A bad limit", body = super::error::Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
pub async fn list_imports(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let limit = params.parse::<i64>("limit", "an integer")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let list = runs::list(&state.pool, limit).await.map_err(ApiError::internal)?;
    Ok(Json(list).into_response())
}

/// Publishes a run held by the safety gate (as `annuaire imports approve`).
#[utoipa::path(
    post,
    path = "/v1/imports/{id}/approve",
    tag = "admin",
    params(("id" = i64, Path, description = "Import run id")),
    responses((status = 200, description = "The run, now published"), (status = 400, description = "The run id is not an integer", body = super::error::Problem, content_type = "application/problem+json"), (status = 409, description = "Not held, or stale", body = super::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn approve_import(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the run id must be an integer"))?;
    match crate::import::approve(&state.pool, crate::store::RunId(id)).await {
        Ok(run) => Ok(Json(run).into_response()),
        Err(
            e @ (crate::import::ImportError::NotHeld { .. }
            | crate::import::ImportError::StaleApproval { .. }
            | crate::import::ImportError::Busy),
        ) => Err(ApiError::new(StatusCode::CONFLICT, e.to_string())),
        Err(crate::import::ImportError::NoSuchRun(_)) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, format!("no import run {id}")))
        }
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Who a run adds, changes or removes, a page at a time, with the claim fields that change
/// (`{path, old, new}`): what to read before approving a held run.
#[utoipa::path(
    get,
    path = "/v1/imports/{id}/diff",
    tag = "admin",
    params(
        ("id" = i64, Path, description = "Import run id (held or published)"),
        ("kind" = Option<String>, Query, description = "removed, changed or added; absent: all three, as an array of their pages (removed, changed, added)"),
        ("page" = Option<i64>, Query, description = "From 1 (default 1)"),
        ("per_page" = Option<i64>, Query, description = "1 to 500 (default 50)"),
    ),
    responses(
        (status = 200, description = "{run_id, status, counts: {added, changed, removed}, kind, page, per_page, total, items: [{national_id, family_name, given_name, claims_changed, changes: [{path, old, new}]}]}; without `kind`, an array of three of them"),
        (status = 400, description = "A bad kind, page or per_page", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run, or a run without a diff (failed, discarded)", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn import_diff(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the run id must be an integer"))?;
    let kind: Option<Change> = match params.text("kind").filter(|k| !k.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse()
                .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "kind must be removed, changed or added"))?,
        ),
    };
    let page = params.parse("page", "a whole number")?.unwrap_or(1);
    let per_page = params
        .parse("per_page", "a whole number")?
        .unwrap_or(review::DEFAULT_PER_PAGE);
    let Some(kind) = kind else {
        // Every kind, as `annuaire imports diff` shows them: the same page of each, so at
        // most three times `per_page` entries.
        let mut pages = Vec::with_capacity(review::KINDS.len());
        for kind in review::KINDS {
            pages.push(diff_page(&state, RunId(id), kind, page, per_page).await?);
        }
        return Ok(Json(pages).into_response());
    };
    Ok(Json(diff_page(&state, RunId(id), kind, page, per_page).await?).into_response())
}

async fn diff_page(
    state: &AppState,
    id: RunId,
    kind: Change,
    page: i64,
    per_page: i64,
) -> Result<review::RunDiff, ApiError> {
    review::run_diff(&state.pool, id, kind, page, per_page)
        .await
        .map_err(|e| match e {
            ReviewError::BadPage => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
            ReviewError::NoSuchRun(_) | ReviewError::NoDiff(..) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            ReviewError::Lookup(e) => ApiError::internal(e),
        })
}
