//! The change feed: every change of every published generation, in the order of a key
//! that only grows, (run id, national id). A client that keeps the key of the last change
//! it read never misses nor repeats one: generations are published in the order of their
//! run ids, and a run's changes are all written before it is published.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;

use super::professionals::{LookupError, unpack};
use super::{Change, RunId};

/// Where a reader of the feed is: after this change (`None`: before the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub run_id: RunId,
    pub national_id: String,
}

impl Position {
    /// The opaque cursor of the API: the key, hex-encoded (clients must not build it).
    pub fn cursor(&self) -> String {
        hex::encode(format!("{}.{}", self.run_id, self.national_id))
    }

    pub fn parse(cursor: &str) -> Option<Position> {
        let text = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
        let (run, id) = text.split_once('.')?;
        let national_id = id.to_owned();
        (!national_id.is_empty() && national_id.len() <= 32).then_some(())?;
        Some(Position {
            run_id: RunId(run.parse().ok()?),
            national_id,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedChange {
    pub national_id: String,
    pub change: Change,
    /// Whether the claims document changed: always for an addition or a removal; for a
    /// change, unless only diplomas or savoir-faire did.
    pub claims_changed: bool,
    pub run_id: RunId,
    pub published_at: DateTime<Utc>,
}

type Row = (
    i64,
    String,
    String,
    Option<DateTime<Utc>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// Up to `limit` changes after `after`, oldest first.
pub async fn changes(
    db: impl PgExecutor<'_>,
    after: Option<&Position>,
    limit: i64,
) -> Result<Vec<FeedChange>, LookupError> {
    let (run, id) = after.map_or((0, String::new()), |p| (p.run_id.0, p.national_id.clone()));
    // A change's claims are compared with the professional's version before it only for
    // `changed` (an addition or a removal changes them by definition).
    // Each side takes its first `limit` changes of published runs from its (run, id) index
    // before they are merged: a merge of the two whole sides was planned as a scan and a
    // sort of every stored version (5 s at national scale for a page).
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT e.run_id, e.national_id, e.change, run.published_at,
                e.claims_zst, d.dictionary, prev.claims_zst, pd.dictionary
         FROM ((SELECT p.run_id, p.national_id, p.change,
                       CASE WHEN p.change = 'changed' THEN p.claims_zst END AS claims_zst,
                       CASE WHEN p.change = 'changed' THEN p.dictionary_run_id END AS dictionary_run_id
                FROM professional_record p
                WHERE (p.run_id, p.national_id) > ($1, $2)
                  AND EXISTS (SELECT 1 FROM import_run pr WHERE pr.id = p.run_id AND pr.status = 'published')
                ORDER BY p.run_id, p.national_id LIMIT $3)
               UNION ALL
               (SELECT x.run_id, x.national_id, 'removed', NULL::bytea, NULL::bigint
                FROM run_removal x
                WHERE (x.run_id, x.national_id) > ($1, $2)
                  AND EXISTS (SELECT 1 FROM import_run xr WHERE xr.id = x.run_id AND xr.status = 'published')
                ORDER BY x.run_id, x.national_id LIMIT $3)) e
         JOIN import_run run ON run.id = e.run_id
         LEFT JOIN compression_dictionary d ON d.run_id = e.dictionary_run_id
         LEFT JOIN LATERAL (SELECT o.claims_zst, o.dictionary_run_id FROM professional_record o
                            JOIN import_run orun ON orun.id = o.run_id AND orun.status = 'published'
                            WHERE e.change = 'changed' AND o.national_id = e.national_id AND o.run_id < e.run_id
                            ORDER BY o.run_id DESC LIMIT 1) prev ON true
         LEFT JOIN compression_dictionary pd ON pd.run_id = prev.dictionary_run_id
         ORDER BY e.run_id, e.national_id
         LIMIT $3",
    )
    .bind(run)
    .bind(id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(
            |(run_id, national_id, change, published_at, now, dictionary, before, before_dictionary)| {
                let read = |data: Option<Vec<u8>>, dictionary: Option<Vec<u8>>| {
                    data.map(|d| unpack(&national_id, &d, dictionary.as_deref()))
                        .transpose()
                };
                let change: Change = change.parse().unwrap_or(Change::Removed);
                let claims_changed =
                    change != Change::Changed || read(now, dictionary)? != read(before, before_dictionary)?;
                Ok(FeedChange {
                    national_id,
                    change,
                    claims_changed,
                    run_id: RunId(run_id),
                    published_at: published_at.unwrap_or_default(),
                })
            },
        )
        .collect()
}

/// The last change of a published generation up to `generation`: the cursor after which
/// the feed continues an export of it.
pub async fn last_change(db: impl PgExecutor<'_>, generation: RunId) -> Result<Option<Position>, sqlx::Error> {
    // Run by run from the newest, each run's last id from its index: a merge of every
    // stored version ordered by (run, id) was a full scan (1.5 s at national scale, inside
    // the publish transaction).
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT run.id, greatest((SELECT max(r.national_id) FROM professional_record r WHERE r.run_id = run.id),
                                 (SELECT max(x.national_id) FROM run_removal x WHERE x.run_id = run.id))
         FROM import_run run
         WHERE run.status = 'published' AND run.id <= $1
           AND (EXISTS (SELECT 1 FROM professional_record r WHERE r.run_id = run.id)
                OR EXISTS (SELECT 1 FROM run_removal x WHERE x.run_id = run.id))
         ORDER BY run.id DESC
         LIMIT 1",
    )
    .bind(generation)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(run, national_id)| Position {
        run_id: RunId(run),
        national_id,
    }))
}

/// Changes on one page, at most.
pub const MAX_LIMIT: i64 = 10_000;
pub const DEFAULT_LIMIT: i64 = 1_000;

#[derive(Debug, Serialize)]
pub struct FeedPage {
    pub changes: Vec<FeedChange>,
    /// The cursor to ask with next time: after the last change of this page, or the one
    /// given when there was nothing new.
    pub next: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("limit must be between 1 and {MAX_LIMIT}")]
    BadLimit,
    #[error("since is not a cursor of this feed (give the `next` of a previous answer, or nothing)")]
    BadCursor,
    /// A cursor past the published generation: no answer built it, and its reader would
    /// wait there, missing every change up to its run.
    #[error(
        "since is ahead of the published generation ({published}): give the `next` of a previous answer, or nothing"
    )]
    Ahead { published: String },
    #[error(
        "this cursor is older than the history kept (removals purged up to run {0}): start again from an export and its cursor"
    )]
    Expired(RunId),
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

impl From<sqlx::Error> for FeedError {
    fn from(e: sqlx::Error) -> FeedError {
        FeedError::Lookup(e.into())
    }
}

/// A page of the feed after the cursor `since` (empty: from the first generation).
pub async fn page(pool: &sqlx::PgPool, since: &str, limit: i64) -> Result<FeedPage, FeedError> {
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(FeedError::BadLimit);
    }
    let since = since.trim();
    let mut conn = pool.acquire().await.map_err(LookupError::from)?;
    let after = match since {
        "" => None,
        cursor => Some(Position::parse(cursor).ok_or(FeedError::BadCursor)?),
    };
    if let Some(position) = &after {
        let published = super::runs::current_generation(&mut *conn).await?;
        if published.is_none_or(|generation| position.run_id > generation) {
            return Err(FeedError::Ahead {
                published: published.map_or_else(|| "none yet".to_owned(), |g| format!("run {g}")),
            });
        }
    }
    if let Some(position) = &after
        && let Some(horizon) = super::retention::horizon(&mut *conn).await?
        && position.run_id <= horizon
    {
        return Err(FeedError::Expired(horizon));
    }
    let changes = changes(&mut *conn, after.as_ref(), limit).await?;
    let next = changes.last().map_or_else(
        || since.to_owned(),
        |c| {
            Position {
                run_id: c.run_id,
                national_id: c.national_id.clone(),
            }
            .cursor()
        },
    );
    Ok(FeedPage { changes, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        let p = Position {
            run_id: RunId(42),
            national_id: "810001234565".to_owned(),
        };
        assert_eq!(Position::parse(&p.cursor()), Some(p));
        for bad in [
            "",
            "zz",
            &hex::encode("x.810001234565"),
            &hex::encode("42."),
            &hex::encode("42"),
        ] {
            assert_eq!(Position::parse(bad), None, "{bad}");
        }
    }
}
