//! What a run adds, removes and changes, professional by professional, with the claim
//! fields that change: what an operator reads before approving a held run (and may read
//! of any published one). Runs that failed or were discarded have nothing left to show.

use serde::Serialize;
use sqlx::PgPool;

use crate::claims::history::{DiffEntry, diff_entry};
use crate::store::history::{self, Change};
use crate::store::professionals::LookupError;
use crate::store::runs;
use crate::store::{RunId, RunStatus};

/// Professionals on one page, at most.
pub const MAX_PER_PAGE: i64 = 500;
pub const DEFAULT_PER_PAGE: i64 = 50;
/// The kinds in the order a reviewer reads them: what is lost first.
pub const KINDS: [Change; 3] = [Change::Removed, Change::Changed, Change::Added];

/// One page of a run's diff.
#[derive(Debug, Serialize)]
pub struct RunDiff {
    pub run_id: RunId,
    pub status: RunStatus,
    /// How many professionals the run adds, changes and removes.
    pub counts: Counts,
    pub kind: Change,
    pub page: i64,
    pub per_page: i64,
    /// Professionals of this kind, on every page.
    pub total: i64,
    pub items: Vec<DiffEntry>,
}

#[derive(Debug, Serialize)]
pub struct Counts {
    pub added: i64,
    pub changed: i64,
    pub removed: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no import run {0}")]
    NoSuchRun(RunId),
    #[error("run {0} is {1}: only held and published runs keep what they changed")]
    NoDiff(RunId, RunStatus),
    #[error("page must be 1 or more and per_page between 1 and {MAX_PER_PAGE}")]
    BadPage,
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

impl From<sqlx::Error> for ReviewError {
    fn from(e: sqlx::Error) -> ReviewError {
        ReviewError::Lookup(e.into())
    }
}

pub async fn run_diff(
    pool: &PgPool,
    run: RunId,
    kind: Change,
    page: i64,
    per_page: i64,
) -> Result<RunDiff, ReviewError> {
    if page < 1 || !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ReviewError::BadPage);
    }
    let summary = runs::get(pool, run).await?.ok_or(ReviewError::NoSuchRun(run))?;
    if !matches!(summary.status, RunStatus::Held | RunStatus::Published) {
        return Err(ReviewError::NoDiff(run, summary.status));
    }
    let counts = Counts {
        added: history::diff_count(pool, run, Change::Added).await?,
        changed: history::diff_count(pool, run, Change::Changed).await?,
        removed: history::diff_count(pool, run, Change::Removed).await?,
    };
    let total = match kind {
        Change::Added => counts.added,
        Change::Changed => counts.changed,
        Change::Removed => counts.removed,
    };
    // Past the last page: an empty one, not a scan (the offset is bounded by the count).
    let offset = (page - 1).saturating_mul(per_page);
    let items = if offset < total {
        history::diff_page(pool, run, kind, per_page, offset).await?
    } else {
        Vec::new()
    };
    Ok(RunDiff {
        run_id: run,
        status: summary.status,
        counts,
        kind,
        page,
        per_page,
        total,
        items: items.iter().map(diff_entry).collect(),
    })
}
