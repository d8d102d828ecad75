//! Reading the published generation: the publication (which run, its dates), the
//! compression dictionaries, and the one reader of the current records (all of them, or
//! those changed since a generation) that the claims snapshot and the search index load
//! from. The record API reads one professional through the same current-record join.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, Transaction};

use super::RunId;
use super::copy::{CopyDecoder, CopyFormatError};

/// The current version of each professional: the record their row points at. Every reader
/// of the published generation goes through this join.
macro_rules! current_record_join {
    () => {
        "professional p JOIN professional_record r ON r.national_id = p.national_id AND r.run_id = p.record_run_id"
    };
}
pub(crate) use current_record_join;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Format(#[from] CopyFormatError),
    #[error("unexpected row in the published records: {0}")]
    Row(&'static str),
}

/// A read-only transaction that sees one publication and the records it points at, however
/// long the reading takes.
pub async fn consistent_read(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The published directory generation and its dates (all `None` before any publication).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Publication {
    pub generation: Option<RunId>,
    pub extract_ts: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
}

pub async fn publication(db: impl PgExecutor<'_>) -> Result<Publication, sqlx::Error> {
    type Row = (Option<RunId>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT p.run_id, r.extract_ts, r.published_at FROM publication p LEFT JOIN import_run r ON r.id = p.run_id",
    )
    .fetch_optional(db)
    .await?;
    Ok(
        row.map_or_else(Publication::default, |(generation, extract_ts, published_at)| {
            Publication {
                generation,
                extract_ts,
                published_at,
            }
        }),
    )
}

/// The compression dictionaries (run id, bytes) but those in `known`, oldest first.
pub async fn dictionaries(db: impl PgExecutor<'_>, known: &[RunId]) -> Result<Vec<(RunId, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as("SELECT run_id, dictionary FROM compression_dictionary WHERE NOT (run_id = ANY($1)) ORDER BY run_id")
        .bind(known)
        .fetch_all(db)
        .await
}

/// What a reader wants besides the id, removal, content hash, claims and dictionary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    pub details: bool,
    /// The published mailbox addresses, space-separated.
    pub mailboxes: bool,
}

/// One professional's current record, as stored (documents compressed).
#[derive(Debug, Clone)]
pub struct CurrentRecord {
    pub national_id: Bytes,
    /// Unix seconds of the removal, `None` while published.
    pub removed_at: Option<i64>,
    pub content_hash: u128,
    pub claims_zst: Bytes,
    pub details_zst: Option<Bytes>,
    pub dictionary: Option<RunId>,
    pub mailboxes: Option<Bytes>,
}

/// The current records, streamed with one binary `COPY`.
pub struct CurrentRecords<'c> {
    stream: BoxStream<'c, Result<Bytes, sqlx::Error>>,
    decoder: CopyDecoder,
    extras: Extras,
}

/// Every current record, or with `since` those added, changed, revived or removed after
/// that generation.
pub async fn current_records<'c>(
    conn: &'c mut PgConnection,
    since: Option<RunId>,
    extras: Extras,
) -> Result<CurrentRecords<'c>, sqlx::Error> {
    let filter = match since {
        Some(RunId(run)) => format!("WHERE p.record_run_id > {run} OR p.removed_run_id > {run}"),
        None => String::new(),
    };
    let details = if extras.details { ", r.details_zst" } else { "" };
    let mailboxes = if extras.mailboxes {
        ", (SELECT string_agg(m.address, ' ') FROM mailbox m
            WHERE m.national_id = p.national_id AND m.run_id = (SELECT mailbox_run_id FROM publication))"
    } else {
        ""
    };
    let statement = format!(
        concat!(
            "COPY (SELECT p.national_id, extract(epoch FROM p.removed_at)::bigint, p.content_hash, r.claims_zst,
                          r.dictionary_run_id{details}{mailboxes}
                   FROM ",
            current_record_join!(),
            " {filter}) TO STDOUT (FORMAT binary)"
        ),
        details = details,
        mailboxes = mailboxes,
        filter = filter
    );
    let stream = conn.copy_out_raw(&statement).await?;
    Ok(CurrentRecords {
        stream,
        decoder: CopyDecoder::default(),
        extras,
    })
}

impl CurrentRecords<'_> {
    /// The next record, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<CurrentRecord>, ReadError> {
        loop {
            if let Some(row) = self.decoder.next_row()? {
                return self.typed(row).map(Some);
            }
            match self.stream.next().await {
                Some(chunk) => self.decoder.push(&chunk?),
                None => return Ok(None),
            }
        }
    }

    fn typed(&self, row: Vec<Option<Bytes>>) -> Result<CurrentRecord, ReadError> {
        let mut fields = row.into_iter();
        let mut next = || fields.next().ok_or(ReadError::Row("too few fields"));
        let national_id = next()?.ok_or(ReadError::Row("no national id"))?;
        let removed_at = int8(next()?)?;
        let hash = next()?.ok_or(ReadError::Row("no content hash"))?;
        let content_hash = u128::from_be_bytes(hash[..].try_into().map_err(|_| ReadError::Row("content hash width"))?);
        let claims_zst = next()?.ok_or(ReadError::Row("no claims"))?;
        let dictionary = int8(next()?)?.map(RunId);
        let details_zst = if self.extras.details {
            Some(next()?.ok_or(ReadError::Row("no details"))?)
        } else {
            None
        };
        let mailboxes = if self.extras.mailboxes { next()? } else { None };
        Ok(CurrentRecord {
            national_id,
            removed_at,
            content_hash,
            claims_zst,
            details_zst,
            dictionary,
            mailboxes,
        })
    }
}

fn int8(field: Option<Bytes>) -> Result<Option<i64>, ReadError> {
    match field {
        None => Ok(None),
        Some(b) => Ok(Some(i64::from_be_bytes(
            b[..].try_into().map_err(|_| ReadError::Row("int8 width"))?,
        ))),
    }
}
