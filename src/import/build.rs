//! Build, the database side: the lines of the professionals the diff marked added or
//! changed come back from the staging table sorted by professional (a server-side sort, so
//! memory stays bounded whatever the file order), go through the builder threads, and
//! their records are written with `COPY`. Also the published hashes the diff needs, and
//! the compression dictionary.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::ImportError;
use super::builder::{self, Built, Dictionary, RejectedDocuments};
use super::diff::{self, Plan, key};
use super::gate::DiffCounts;
use crate::store::codec;
use crate::store::copy::{CopyDecoder, CopyEncoder};
use crate::store::runs::{self, RunFacts};

const CHUNK_BYTES: usize = 1 << 20;
const CHANNEL_CHUNKS: usize = 8;

/// The hashes of the published professionals (not removed), and how many of each type.
#[derive(Default)]
pub struct Published {
    pub hashes: HashMap<u128, u128>,
    pub counts: DiffCounts,
    /// The latest compression dictionary (its run id and bytes), reused by every run.
    pub dictionary: Dictionary,
}

pub async fn load_published(pool: &PgPool) -> Result<Published, ImportError> {
    let mut conn = pool.acquire().await?;
    let mut stream = conn
        .copy_out_raw(
            "COPY (SELECT national_id, content_hash FROM professional WHERE removed_at IS NULL) TO STDOUT (FORMAT binary)",
        )
        .await?;
    let mut decoder = CopyDecoder::default();
    let mut published = Published::default();
    while let Some(chunk) = stream.next().await {
        decoder.push(&chunk?);
        while let Some(row) = decoder.next_row()? {
            let (Some(id), Some(hash)) = (&row[0], &row[1]) else {
                continue;
            };
            let hash: [u8; 16] = hash[..]
                .try_into()
                .map_err(|_| ImportError::internal("stored content hash is not 16 bytes"))?;
            published.hashes.insert(key(id), u128::from_be_bytes(hash));
            published.counts.of_type(id.first().copied().unwrap_or(b'8')).published += 1;
        }
    }
    drop(stream);
    published.dictionary =
        sqlx::query_as("SELECT run_id, dictionary FROM compression_dictionary ORDER BY run_id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(published)
}

/// The dictionary to compress this run's records with: the store's latest, else one
/// trained now on the run's sample lines and stored under its run id (never deleted, since
/// records of later runs may use it too).
pub async fn dictionary(
    pool: &PgPool,
    run_id: i64,
    latest: Dictionary,
    samples: Vec<(String, String)>,
) -> Result<Dictionary, ImportError> {
    if latest.is_some() {
        return Ok(latest);
    }
    let Some(trained) = tokio::task::spawn_blocking(move || builder::train_dictionary(&samples)).await? else {
        return Ok(None);
    };
    sqlx::query("INSERT INTO compression_dictionary (run_id, dictionary) VALUES ($1, $2)")
        .bind(run_id)
        .bind(&trained)
        .execute(pool)
        .await?;
    tracing::info!(run_id, bytes = trained.len(), "compression dictionary trained");
    Ok(Some((run_id, trained)))
}

/// Builds and writes the records of the planned professionals; `file_name` (the
/// Personne_activite file) is what the rejects of oversized documents name.
pub async fn build(
    pool: &PgPool,
    run_id: i64,
    plan: Plan,
    dictionary: Dictionary,
    file_name: String,
) -> Result<Built, ImportError> {
    if plan.build.is_empty() {
        return Ok(Built::default());
    }
    let selection = if plan.build_all {
        "SELECT file, line_no, national_id, fields FROM stage_line WHERE file <> 4"
    } else {
        select_planned(pool, &plan).await?;
        "SELECT s.file, s.line_no, s.national_id, s.fields FROM stage_line s JOIN stage_build b USING (national_id) WHERE s.file <> 4"
    };
    let mut out_conn = pool.acquire().await?;
    let mut in_conn = pool.acquire().await?;
    let mut copy_in = in_conn
        .copy_in_raw(
            "COPY professional_record (national_id, run_id, change, content_hash, family_name, given_name, claims_zst, details_zst, dictionary_run_id) FROM STDIN (FORMAT binary)",
        )
        .await?;
    // "C" collation: byte order is all the grouping needs, and much cheaper than a locale.
    let statement =
        format!("COPY ({selection} ORDER BY national_id COLLATE \"C\", file, line_no) TO STDOUT (FORMAT binary)");
    let mut staged = out_conn.copy_out_raw(&statement).await?;
    let (raw_tx, raw_rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let (rec_tx, mut rec_rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let builder =
        tokio::task::spawn_blocking(move || builder::run(run_id, plan, dictionary, &file_name, raw_rx, rec_tx));

    let feed = async {
        // The server sends one message per row: batch them, or the hand-over to the builder
        // thread costs more than the build itself.
        let mut batch = BytesMut::with_capacity(CHUNK_BYTES);
        while let Some(message) = staged.next().await {
            batch.extend_from_slice(&message?);
            if batch.len() >= CHUNK_BYTES && raw_tx.send(batch.split().freeze()).await.is_err() {
                break; // the builder stopped; its error tells why
            }
        }
        if !batch.is_empty() {
            let _ = raw_tx.send(batch.freeze()).await;
        }
        drop(raw_tx);
        Ok::<(), ImportError>(())
    };
    let write = async {
        while let Some(chunk) = rec_rx.recv().await {
            copy_in.send(chunk).await?;
        }
        Ok::<(), ImportError>(())
    };
    let (fed, written) = tokio::join!(feed, write);
    drop(staged);
    let built = builder.await?;
    let result = fed.and(written).and(built);
    match result {
        Ok(built) => {
            copy_in.finish().await?;
            Ok(built)
        }
        Err(e) => {
            let _ = copy_in.abort("build failed").await;
            // The COPY OUT may still be streaming: this connection cannot be reused.
            out_conn.close_on_drop();
            Err(e)
        }
    }
}

/// Accounts for the professionals whose document was over the size limit: out of the
/// diff's added and changed, counted apart in the gate and in the run's rejected lines,
/// their rejects kept. Returns the sentence the run record carries, if any were.
pub async fn account_rejected(
    pool: &PgPool,
    run_id: i64,
    facts: &mut RunFacts,
    counts: &mut DiffCounts,
    rejected: RejectedDocuments,
) -> Result<Option<String>, ImportError> {
    let total = rejected.total();
    if total == 0 {
        return Ok(None);
    }
    counts.exclude_rejected(&rejected.counts);
    facts.added = Some(counts.total(|c| c.added));
    facts.changed = Some(counts.total(|c| c.changed));
    facts.gate = Some(serde_json::to_value(*counts).map_err(ImportError::internal)?);
    facts.rejected += total;
    runs::insert_rejects(pool, run_id, &rejected.kept).await?;
    tracing::warn!(run_id, professionals = total, "documents over the size limit rejected");
    Ok(Some(format!(
        "{total} professionals not published: their document would be over the {}-byte limit \
         (those already published keep their previous version; new ones are not added)",
        codec::MAX_DOCUMENT_BYTES
    )))
}

/// Writes the planned professionals' ids into `stage_build`, to select only their lines.
async fn select_planned(pool: &PgPool, plan: &Plan) -> Result<(), ImportError> {
    sqlx::query("TRUNCATE stage_build").execute(pool).await?;
    let mut encoder = CopyEncoder::new(usize::MAX);
    for id in plan.build.keys() {
        encoder.row(1).text(&diff::unkey(*id));
    }
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw("COPY stage_build (national_id) FROM STDIN (FORMAT binary)")
        .await?;
    copy.send(encoder.finish()).await?;
    copy.finish().await?;
    sqlx::query("ANALYZE stage_build").execute(&mut *conn).await?;
    Ok(())
}
