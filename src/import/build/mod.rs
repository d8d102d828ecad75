//! The build stage, database side: the lines of the professionals the diff marked added or
//! changed come back from the staging table sorted by professional (a server-side sort, so
//! memory stays bounded whatever the file order), go through the worker threads
//! (`workers`), and their records (`record`) are written with `COPY`. Also the published
//! hashes the diff starts from, and the compression dictionary.

pub mod record;
pub mod workers;

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::ImportError;
use super::diff::Plan;
use super::gate::DiffCounts;
use crate::national_id::PackedId;
use crate::store::RunId;
use crate::store::records::{self, RecordsError};
use crate::store::staging;
use workers::{Built, Dictionary};

const CHUNK_BYTES: usize = 1 << 20;
const CHANNEL_CHUNKS: usize = 8;

/// The hashes of the published professionals (not removed), and how many of each type.
#[derive(Default)]
pub struct Published {
    pub hashes: HashMap<PackedId, u128>,
    pub counts: DiffCounts,
    /// The latest compression dictionary (its run id and bytes), reused by every run.
    pub dictionary: Dictionary,
}

impl From<RecordsError> for ImportError {
    fn from(e: RecordsError) -> Self {
        match e {
            RecordsError::Database(e) => ImportError::Database(e),
            RecordsError::Format(e) => ImportError::CopyFormat(e),
            RecordsError::HashWidth => ImportError::internal(e),
        }
    }
}

pub async fn load_published(pool: &PgPool) -> Result<Published, ImportError> {
    let mut conn = pool.acquire().await?;
    let mut published = Published::default();
    records::published_hashes(&mut conn, |id, hash| {
        published.hashes.insert(PackedId::of(id), hash);
        published.counts.of_type(id.first().copied().unwrap_or(b'8')).published += 1;
    })
    .await?;
    published.dictionary = records::latest_dictionary(&mut *conn).await?;
    Ok(published)
}

/// The dictionary to compress this run's records with: the store's latest, else one
/// trained now on the run's sample lines and stored under its run id (never deleted, since
/// records of later runs may use it too).
pub async fn dictionary(
    pool: &PgPool,
    run_id: RunId,
    latest: Dictionary,
    samples: Vec<(String, String)>,
) -> Result<Dictionary, ImportError> {
    if latest.is_some() {
        return Ok(latest);
    }
    let Some(trained) = tokio::task::spawn_blocking(move || workers::train_dictionary(&samples)).await? else {
        return Ok(None);
    };
    records::insert_dictionary(pool, run_id, &trained).await?;
    tracing::info!(%run_id, bytes = trained.len(), "compression dictionary trained");
    Ok(Some((run_id, trained)))
}

/// Builds and writes the records of the planned professionals; `file_name` (the
/// Personne_activite file) is what the rejects of oversized documents name.
pub async fn build(
    pool: &PgPool,
    run_id: RunId,
    plan: Plan,
    dictionary: Dictionary,
    file_name: String,
) -> Result<Built, ImportError> {
    if plan.build.is_empty() {
        return Ok(Built::default());
    }
    if !plan.build_all {
        let mut conn = pool.acquire().await?;
        let ids: Vec<String> = plan.build.keys().map(|id| id.unpack()).collect();
        staging::select_for_build(&mut conn, ids.iter().map(String::as_str)).await?;
    }
    let mut out_conn = pool.acquire().await?;
    let mut in_conn = pool.acquire().await?;
    let mut copy_in = records::copy_records(&mut in_conn).await?;
    let selected_only = !plan.build_all;
    let mut staged = staging::sorted_lines(&mut out_conn, selected_only).await?;
    let (raw_tx, raw_rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let (rec_tx, mut rec_rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let builder = tokio::task::spawn_blocking(move || {
        workers::build_records(run_id, plan, dictionary, &file_name, raw_rx, rec_tx)
    });

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
