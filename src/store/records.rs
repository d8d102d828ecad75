//! Professional records as a run writes them: the published content hashes its diff starts
//! from, the compression dictionary, and the binary `COPY` of the records it builds.

use futures::StreamExt;
use sqlx::postgres::PgCopyIn;
use sqlx::{PgConnection, PgExecutor};

use super::RunId;
use super::copy::{CopyDecoder, CopyFormatError};

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Format(#[from] CopyFormatError),
    #[error("stored content hash is not 16 bytes")]
    HashWidth,
}

/// Calls `each` with the national id and content hash of every published (not removed)
/// professional.
pub async fn published_hashes(conn: &mut PgConnection, mut each: impl FnMut(&[u8], u128)) -> Result<(), RecordsError> {
    let mut stream = conn
        .copy_out_raw(
            "COPY (SELECT national_id, content_hash FROM professional WHERE removed_at IS NULL) TO STDOUT (FORMAT binary)",
        )
        .await?;
    let mut decoder = CopyDecoder::default();
    while let Some(chunk) = stream.next().await {
        decoder.push(&chunk?);
        while let Some(row) = decoder.next_row()? {
            let (Some(id), Some(hash)) = (&row[0], &row[1]) else {
                continue;
            };
            let hash: [u8; 16] = hash[..].try_into().map_err(|_| RecordsError::HashWidth)?;
            each(id, u128::from_be_bytes(hash));
        }
    }
    Ok(())
}

/// The latest compression dictionary (its run id and bytes), if any.
pub async fn latest_dictionary(db: impl PgExecutor<'_>) -> Result<Option<(RunId, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as("SELECT run_id, dictionary FROM compression_dictionary ORDER BY run_id DESC LIMIT 1")
        .fetch_optional(db)
        .await
}

/// Stores the dictionary trained by a run (never deleted: later runs' records use it too).
pub async fn insert_dictionary(db: impl PgExecutor<'_>, run_id: RunId, dictionary: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO compression_dictionary (run_id, dictionary) VALUES ($1, $2)")
        .bind(run_id)
        .bind(dictionary)
        .execute(db)
        .await?;
    Ok(())
}

/// Before a bulk load into an empty `professional_record` (the first import): drops its
/// indexes, for `restore_indexes` to build once by a sort instead of 1.7 M B-tree
/// insertions. Run both and the load in one transaction: a crash or failure leaves the
/// table and its indexes as they were. Returns whether the indexes were dropped (the table
/// was empty). The definitions are those of migrations/0001_initial.sql.
pub async fn drop_indexes_if_empty(tx: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM professional_record)")
        .fetch_one(&mut *tx)
        .await?;
    if empty {
        sqlx::query("ALTER TABLE professional_record DROP CONSTRAINT professional_record_pk")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DROP INDEX professional_record_run_ix")
            .execute(&mut *tx)
            .await?;
    }
    Ok(empty)
}

/// Builds the indexes `drop_indexes_if_empty` dropped, as the migrations define them.
pub async fn restore_indexes(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "ALTER TABLE professional_record ADD CONSTRAINT professional_record_pk PRIMARY KEY (national_id, run_id)",
    )
    .execute(&mut *tx)
    .await?;
    // As migrations/0006_feed.sql defines it.
    sqlx::query("CREATE INDEX professional_record_run_ix ON professional_record (run_id, national_id)")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Starts the binary `COPY` of built records (national id, run id, change, content hash,
/// family name, given name, claims, details, dictionary run id); the caller sends the
/// data and finishes or aborts it.
pub async fn copy_records(conn: &mut PgConnection) -> Result<PgCopyIn<&mut PgConnection>, sqlx::Error> {
    conn.copy_in_raw(
        "COPY professional_record (national_id, run_id, change, content_hash, family_name, given_name, claims_zst, details_zst, dictionary_run_id) FROM STDIN (FORMAT binary)",
    )
    .await
}
