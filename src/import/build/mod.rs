//! The build stage, database side: the lines of the professionals the diff marked added or
//! changed are read back from the import's work file (`workers` groups them by
//! professional), built into records (`record`) on worker threads and written with `COPY`.
//! Also the published hashes the diff starts from, and the compression dictionary.

pub mod record;
pub mod workers;

use bytes::Bytes;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::ImportError;
use super::diff::{Plan, StagedHashes};
use super::gate::DiffCounts;
use super::stage::SpilledLines;
use crate::national_id::{IdMap, PackedId};
use crate::store::RunId;
use crate::store::records::{self, RecordsError};
use workers::{Built, Dictionary};

const CHANNEL_CHUNKS: usize = 8;

/// The hashes of the published professionals (not removed), and how many of each type.
#[derive(Default)]
pub struct Published {
    pub hashes: IdMap<u128>,
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

/// What a build works from: the plan, the professionals read (their slots), and their
/// lines in the work file.
pub struct Input {
    pub plan: Plan,
    pub hashes: StagedHashes,
    pub spilled: SpilledLines,
}

/// Builds and writes the records of the planned professionals; `file_name` (the
/// Personne_activite file) is what the rejects of oversized documents name.
pub async fn build(
    pool: &PgPool,
    run_id: RunId,
    input: Input,
    dictionary: Dictionary,
    file_name: String,
) -> Result<Built, ImportError> {
    if input.plan.build.is_empty() {
        return Ok(Built::default());
    }
    // One transaction: the first import loads without indexes and builds them after (see
    // `records::drop_indexes_if_empty`); a failure leaves nothing behind.
    let mut tx = pool.begin().await?;
    let bulk = records::drop_indexes_if_empty(&mut tx).await?;
    let mut copy_in = records::copy_records(&mut tx).await?;
    let (rec_tx, mut rec_rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let builder =
        tokio::task::spawn_blocking(move || workers::build_records(run_id, input, dictionary, &file_name, rec_tx));
    let mut written = Ok(());
    while let Some(chunk) = rec_rx.recv().await {
        if let Err(e) = copy_in.send(chunk).await {
            written = Err(e);
            break;
        }
    }
    // Dropping the receiver makes the builder stop at its next chunk.
    drop(rec_rx);
    let built = builder.await?;
    match (written, built) {
        (Ok(()), Ok(built)) => {
            copy_in.finish().await?;
            if bulk {
                records::restore_indexes(&mut tx).await?;
            }
            tx.commit().await?;
            Ok(built)
        }
        (Err(e), _) => {
            let _ = copy_in.abort("writing records failed").await;
            Err(e.into())
        }
        (Ok(()), Err(e)) => {
            let _ = copy_in.abort("build failed").await;
            Err(e)
        }
    }
}
