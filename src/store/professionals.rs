//! Reading one professional of the published generation: the claims lookup and its answers
//! (found, removed since a date, never seen), and the full record of the admin pages.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::published::current_record_join;
use super::{codec, mailboxes};
use crate::national_id::NationalId;

/// The answer to "what are the claims of this professional?".
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimsLookup {
    /// The claims document as JSON bytes, exactly as computed at import.
    Found {
        claims_json: Vec<u8>,
        extract_ts: Option<DateTime<Utc>>,
    },
    /// Known but absent from the published extract since `removed_at`.
    Removed {
        removed_at: DateTime<Utc>,
    },
    NotFound,
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("stored claims of {0} cannot be decompressed: {1}")]
    Corrupt(String, std::io::Error),
}

/// A stored document of `national_id` read back (`data` compressed with `dictionary`); one
/// that does not decompress is a `Corrupt` naming its professional.
pub fn unpack(national_id: &str, data: &[u8], dictionary: Option<&[u8]>) -> Result<Vec<u8>, LookupError> {
    codec::decompress(data, dictionary).map_err(|e| LookupError::Corrupt(national_id.to_owned(), e))
}

pub async fn claims(db: impl PgExecutor<'_>, id: &NationalId) -> Result<ClaimsLookup, LookupError> {
    type Row = (Option<DateTime<Utc>>, Vec<u8>, Option<Vec<u8>>, Option<DateTime<Utc>>);
    let row: Option<Row> = sqlx::query_as(concat!(
        "SELECT p.removed_at, r.claims_zst, d.dictionary, run.extract_ts FROM ",
        current_record_join!(),
        " LEFT JOIN compression_dictionary d ON d.run_id = r.dictionary_run_id
         LEFT JOIN publication pub ON true
         LEFT JOIN import_run run ON run.id = pub.run_id
         WHERE p.national_id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(db)
    .await?;
    Ok(match row {
        None => ClaimsLookup::NotFound,
        Some((Some(removed_at), ..)) => ClaimsLookup::Removed { removed_at },
        Some((None, compressed, dictionary, extract_ts)) => {
            let claims_json = unpack(id.as_str(), &compressed, dictionary.as_deref())?;
            ClaimsLookup::Found {
                claims_json,
                extract_ts,
            }
        }
    })
}

/// Everything known of one professional, for the admin pages: the claims document, the
/// details, the published mailboxes, and the dates.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FullRecord {
    pub national_id: String,
    pub first_seen_at: DateTime<Utc>,
    pub last_changed_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
    /// Exactly as served to the IdP (same bytes, same key order).
    pub claims: Box<serde_json::value::RawValue>,
    pub details: serde_json::Value,
    pub mailboxes: Vec<String>,
}

pub async fn full_record(pool: &sqlx::PgPool, id: &NationalId) -> Result<Option<FullRecord>, LookupError> {
    type Row = (
        DateTime<Utc>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Vec<u8>,
        Vec<u8>,
        Option<Vec<u8>>,
    );
    let row: Option<Row> = sqlx::query_as(concat!(
        "SELECT p.first_seen_at, p.last_changed_at, p.removed_at, r.claims_zst, r.details_zst, d.dictionary FROM ",
        current_record_join!(),
        " LEFT JOIN compression_dictionary d ON d.run_id = r.dictionary_run_id
         WHERE p.national_id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?;
    let Some((first_seen_at, last_changed_at, removed_at, claims, details, dictionary)) = row else {
        return Ok(None);
    };
    let read = |data: &[u8]| unpack(id.as_str(), data, dictionary.as_deref());
    let corrupt = |e: serde_json::Error| LookupError::Corrupt(id.to_string(), std::io::Error::other(e));
    let mailboxes = mailboxes::published_addresses(pool, id).await?;
    Ok(Some(FullRecord {
        national_id: id.to_string(),
        first_seen_at,
        last_changed_at,
        removed_at,
        claims: serde_json::value::RawValue::from_string(String::from_utf8_lossy(&read(&claims)?).into_owned())
            .map_err(corrupt)?,
        details: serde_json::from_slice(&read(&details)?).map_err(corrupt)?,
        mailboxes,
    }))
}
