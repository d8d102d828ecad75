//! A professional through the published generations: every version of their record (kept
//! per run) and every removal, in the order the generations were published. Only
//! published runs count: a held run is not history until approved, and a discarded one
//! never is. Generations are published in the order of their run ids (publishing a run
//! discards every held one, so an older run can no longer be approved after it).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

pub use super::Change;
use super::RunId;
use super::feed::Position;
use super::professionals::{LookupError, unpack};
use crate::national_id::NationalId;

/// Versions on one page of a history, at most, and when the reader names none.
pub const MAX_PAGE: i64 = 100;
pub const DEFAULT_PAGE: i64 = 20;

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
    // The query's own texts, under the table's constraint.
    let change = change.parse().unwrap_or(Change::Removed);
    let claims_json = compressed
        .map(|c| unpack(id.as_str(), &c, dictionary.as_deref()))
        .transpose()?;
    Ok(Version {
        run_id: RunId(run_id),
        extract_ts,
        // Set on every published run; the epoch only if a row was edited by hand.
        published_at: published_at.unwrap_or_default(),
        change,
        claims_json,
    })
}

/// A page of a professional's versions, oldest first, and the claims document served just
/// before its first one (none before the first version, or after a removal), which its
/// first entry is compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionPage {
    pub before: Option<Vec<u8>>,
    pub versions: Vec<Version>,
}

/// Up to `limit` versions after that of run `after` (from the first without one), oldest
/// first. Keyset on the run id, limited before any document is read: a page costs its own
/// versions whatever the length of the history.
pub async fn page(
    conn: &mut PgConnection,
    id: &NationalId,
    after: Option<RunId>,
    limit: i64,
) -> Result<VersionPage, LookupError> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT run.id, run.extract_ts, run.published_at, e.change, r.claims_zst, d.dictionary
         FROM (SELECT u.run_id, u.change
               FROM ((SELECT p.run_id, p.change FROM professional_record p
                      WHERE p.national_id = $1 AND p.run_id > $2
                        AND EXISTS (SELECT 1 FROM import_run pr WHERE pr.id = p.run_id AND pr.status = 'published')
                      ORDER BY p.run_id LIMIT $3)
                     UNION ALL
                     (SELECT x.run_id, 'removed' FROM run_removal x
                      WHERE x.national_id = $1 AND x.run_id > $2
                        AND EXISTS (SELECT 1 FROM import_run xr WHERE xr.id = x.run_id AND xr.status = 'published')
                      ORDER BY x.run_id LIMIT $3)) u
               ORDER BY u.run_id LIMIT $3) e
         JOIN import_run run ON run.id = e.run_id
         LEFT JOIN professional_record r
                ON e.change <> 'removed' AND r.national_id = $1 AND r.run_id = e.run_id
         LEFT JOIN compression_dictionary d ON d.run_id = r.dictionary_run_id
         ORDER BY e.run_id",
    )
    .bind(id.as_str())
    .bind(after.map_or(0, |run| run.0))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let versions = rows
        .into_iter()
        .map(|row| version(id, row))
        .collect::<Result<Vec<_>, _>>()?;
    let before = match after {
        None => None,
        Some(run) => document_until(&mut *conn, id, run).await?,
    };
    Ok(VersionPage { before, versions })
}

/// The claims document of the professional's last version published up to run `run`.
async fn document_until(db: impl PgExecutor<'_>, id: &NationalId, run: RunId) -> Result<Option<Vec<u8>>, LookupError> {
    let row: Option<(Vec<u8>, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT r.claims_zst, d.dictionary
         FROM professional_record r
         JOIN import_run run ON run.id = r.run_id AND run.status = 'published'
         LEFT JOIN compression_dictionary d ON d.run_id = r.dictionary_run_id
         WHERE r.national_id = $1 AND r.run_id <= $2
         ORDER BY r.run_id DESC LIMIT 1",
    )
    .bind(id.as_str())
    .bind(run)
    .fetch_optional(db)
    .await?;
    row.map(|(compressed, dictionary)| unpack(id.as_str(), &compressed, dictionary.as_deref()))
        .transpose()
}

/// The cursor of `id`'s history after the version of run `run`: the change feed's form
/// (run and national id, hex-encoded), so one cursor code serves both.
pub fn cursor(id: &NationalId, run: RunId) -> String {
    Position {
        run_id: run,
        national_id: id.as_str().to_owned(),
    }
    .cursor()
}

/// The run a cursor of `id`'s history is after; `None` for one that is not a cursor, or
/// the cursor of someone else's history.
pub fn after(id: &NationalId, cursor: &str) -> Option<RunId> {
    Position::parse(cursor.trim())
        .filter(|p| p.national_id == id.as_str())
        .map(|p| p.run_id)
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

/// One professional of a run's diff: their name, the claims document the run publishes
/// (none for a removal) and the one served before it (none for a first addition).
#[derive(Debug, Clone, PartialEq)]
pub struct DiffItem {
    pub national_id: String,
    pub family_name: String,
    pub given_name: String,
    pub claims_json: Option<Vec<u8>>,
    pub previous_json: Option<Vec<u8>>,
}

/// The version before run `$1` of a professional `x`: their last record in a published run.
macro_rules! previous_of {
    ($who:literal) => {
        concat!(
            "LEFT JOIN LATERAL (SELECT o.family_name, o.given_name, o.claims_zst, o.dictionary_run_id
                               FROM professional_record o
                               JOIN import_run orun ON orun.id = o.run_id AND orun.status = 'published'
                               WHERE o.national_id = ",
            $who,
            " AND o.run_id < $1
                               ORDER BY o.run_id DESC LIMIT 1) prev ON true
             LEFT JOIN compression_dictionary pd ON pd.run_id = prev.dictionary_run_id "
        )
    };
}

type DiffRow = (
    String,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// How many professionals run `run` adds, changes or removes (`kind`).
pub async fn diff_count(db: impl PgExecutor<'_>, run: RunId, kind: Change) -> Result<i64, sqlx::Error> {
    let statement = match kind {
        Change::Removed => "SELECT count(*) FROM run_removal WHERE run_id = $1 AND $2 = 'removed'",
        _ => "SELECT count(*) FROM professional_record WHERE run_id = $1 AND change = $2",
    };
    sqlx::query_scalar(statement)
        .bind(run)
        .bind(kind.as_str())
        .fetch_one(db)
        .await
}

/// A page of the professionals run `run` adds, changes or removes (`kind`), by national id.
pub async fn diff_page(
    db: impl PgExecutor<'_>,
    run: RunId,
    kind: Change,
    limit: i64,
    offset: i64,
) -> Result<Vec<DiffItem>, LookupError> {
    let statement = match kind {
        Change::Removed => concat!(
            "SELECT x.national_id, prev.family_name, prev.given_name, NULL::bytea, NULL::bytea,
                    prev.claims_zst, pd.dictionary
             FROM run_removal x ",
            previous_of!("x.national_id"),
            "WHERE x.run_id = $1 AND $2 = 'removed' ORDER BY x.national_id LIMIT $3 OFFSET $4"
        ),
        _ => concat!(
            "SELECT r.national_id, r.family_name, r.given_name, r.claims_zst, d.dictionary,
                    prev.claims_zst, pd.dictionary
             FROM professional_record r
             LEFT JOIN compression_dictionary d ON d.run_id = r.dictionary_run_id ",
            previous_of!("r.national_id"),
            "WHERE r.run_id = $1 AND r.change = $2 ORDER BY r.national_id LIMIT $3 OFFSET $4"
        ),
    };
    let rows: Vec<DiffRow> = sqlx::query_as(statement)
        .bind(run)
        .bind(kind.as_str())
        .bind(limit)
        .bind(offset)
        .fetch_all(db)
        .await?;
    rows.into_iter()
        .map(
            |(national_id, family_name, given_name, claims, dictionary, previous, previous_dictionary)| {
                let read = |data: Option<Vec<u8>>, dictionary: Option<Vec<u8>>| {
                    data.map(|d| unpack(&national_id, &d, dictionary.as_deref()))
                        .transpose()
                };
                Ok(DiffItem {
                    claims_json: read(claims, dictionary)?,
                    previous_json: read(previous, previous_dictionary)?,
                    family_name: family_name.unwrap_or_default(),
                    given_name: given_name.unwrap_or_default(),
                    national_id,
                })
            },
        )
        .collect()
}
