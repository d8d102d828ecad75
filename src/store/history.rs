//! A professional through the published generations: every version of their record (kept
//! per run) and every removal, in the order the generations were published. Only
//! published runs count: a held run is not history until approved, and a discarded one
//! never is. Generations are published in the order of their run ids (publishing a run
//! discards every held one, so an older run can no longer be approved after it).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;

use super::RunId;
use super::codec;
use super::professionals::LookupError;
use crate::national_id::NationalId;

/// More versions than this for one professional (one a day for 27 years) is not history
/// but a fault; the query stops there.
pub const MAX_VERSIONS: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Changed,
    Removed,
}

/// One version: what a generation did to the professional.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub run_id: RunId,
    pub extract_ts: Option<DateTime<Utc>>,
    pub published_at: DateTime<Utc>,
    pub change: Change,
    /// The claims document this generation served, byte for byte; none for a removal.
    pub claims_json: Option<Vec<u8>>,
}

/// Events of one professional in published generations, as `(run, extract, published,
/// removal?, claims, dictionary)` rows: the query both readers share.
macro_rules! events_of {
    ($tail:literal) => {
        concat!(
            "SELECT run.id, run.extract_ts, run.published_at, e.change, r.claims_zst, d.dictionary
             FROM (SELECT run_id, change FROM professional_record WHERE national_id = $1
                   UNION ALL
                   SELECT run_id, 'removed' FROM run_removal WHERE national_id = $1) e
             JOIN import_run run ON run.id = e.run_id AND run.status = 'published'
             LEFT JOIN professional_record r
                    ON e.change <> 'removed' AND r.national_id = $1 AND r.run_id = e.run_id
             LEFT JOIN compression_dictionary d ON d.run_id = r.dictionary_run_id ",
            $tail
        )
    };
}

type EventRow = (
    i64,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    String,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

fn version(id: &NationalId, row: EventRow) -> Result<Version, LookupError> {
    let (run_id, extract_ts, published_at, change, compressed, dictionary) = row;
    let change = match change.as_str() {
        "added" => Change::Added,
        "changed" => Change::Changed,
        _ => Change::Removed,
    };
    let claims_json = compressed
        .map(|c| codec::decompress(&c, dictionary.as_deref()))
        .transpose()
        .map_err(|e| LookupError::Corrupt(id.to_string(), e))?;
    Ok(Version {
        run_id: RunId(run_id),
        extract_ts,
        // Set on every published run; the epoch only if a row was edited by hand.
        published_at: published_at.unwrap_or_default(),
        change,
        claims_json,
    })
}

/// Every version of the professional, oldest first; empty when never published.
pub async fn versions(db: impl PgExecutor<'_>, id: &NationalId) -> Result<Vec<Version>, LookupError> {
    let rows: Vec<EventRow> = sqlx::query_as(events_of!("ORDER BY run.id LIMIT $2"))
        .bind(id.as_str())
        .bind(MAX_VERSIONS)
        .fetch_all(db)
        .await?;
    rows.into_iter().map(|row| version(id, row)).collect()
}

/// The version being served at `at`: that of the last generation published at or before
/// it to touch the professional. `None` when they had not been published by then.
pub async fn as_of(
    db: impl PgExecutor<'_>,
    id: &NationalId,
    at: DateTime<Utc>,
) -> Result<Option<Version>, LookupError> {
    let row: Option<EventRow> = sqlx::query_as(events_of!("WHERE run.published_at <= $2 ORDER BY run.id DESC LIMIT 1"))
        .bind(id.as_str())
        .bind(at)
        .fetch_optional(db)
        .await?;
    row.map(|row| version(id, row)).transpose()
}
