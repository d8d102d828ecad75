//! Build: the lines of the professionals the diff marked added or changed come back from
//! the staging table sorted by professional (a server-side sort, so memory stays bounded
//! whatever the file order), and each one's record is built, compressed and written with
//! `COPY`. Memory holds the plan and one professional's lines.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::ImportError;
use super::diff::{self, Plan, key};
use super::gate::DiffCounts;
use super::record::{self, Lines};
use crate::extract::FileKind;
use crate::store::codec;
use crate::store::copy::{CopyDecoder, CopyEncoder};

const CHUNK_BYTES: usize = 1 << 20;
const CHANNEL_CHUNKS: usize = 8;

/// The hashes of the published professionals (not removed), and how many of each type.
#[derive(Default)]
pub struct Published {
    pub hashes: HashMap<u128, u128>,
    pub counts: DiffCounts,
    /// The latest compression dictionary (its run id and bytes), reused by every run.
    pub dictionary: Option<(i64, Vec<u8>)>,
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
            let (Some(id), Some(hash)) = (&row[0], &row[1]) else { continue };
            let hash: [u8; 16] = hash[..].try_into().map_err(|_| internal("stored content hash is not 16 bytes"))?;
            published.hashes.insert(key(id), u128::from_be_bytes(hash));
            published.counts.of_type(id.first().copied().unwrap_or(b'8')).published += 1;
        }
    }
    drop(stream);
    published.dictionary = sqlx::query_as("SELECT run_id, dictionary FROM compression_dictionary ORDER BY run_id DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    Ok(published)
}

/// What the build produced besides the records.
#[derive(Debug, Default)]
pub struct BuildOutcome {
    pub records: i64,
    /// A dictionary this run trained, to be stored under its run id.
    pub new_dictionary: Option<Vec<u8>>,
}

pub async fn build(
    pool: &PgPool,
    run_id: i64,
    plan: Plan,
    dictionary: Option<(i64, Vec<u8>)>,
) -> Result<BuildOutcome, ImportError> {
    if plan.build.is_empty() {
        return Ok(BuildOutcome::default());
    }
    let selection = if plan.build_all {
        "SELECT file, national_id, fields FROM stage_line WHERE file <> 4"
    } else {
        select_planned(pool, &plan).await?;
        "SELECT s.file, s.national_id, s.fields FROM stage_line s JOIN stage_build b USING (national_id) WHERE s.file <> 4"
    };
    let mut out_conn = pool.acquire().await?;
    let mut in_conn = pool.acquire().await?;
    let mut copy_in = in_conn
        .copy_in_raw(
            "COPY professional_record (national_id, run_id, change, content_hash, family_name, given_name, claims_zst, details_zst, dictionary_run_id) FROM STDIN (FORMAT binary)",
        )
        .await?;
    // "C" collation: byte order is all the grouping needs, and much cheaper than a locale.
    let statement = format!(
        "COPY ({selection} ORDER BY national_id COLLATE \"C\", file, line_no) TO STDOUT (FORMAT binary)"
    );
    let mut staged = out_conn.copy_out_raw(&statement).await?;
    let (raw_tx, raw_rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let (rec_tx, mut rec_rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let builder = tokio::task::spawn_blocking(move || run_builder(run_id, plan, dictionary, raw_rx, rec_tx));

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
        Ok(outcome) => {
            copy_in.finish().await?;
            if let Some(dictionary) = &outcome.new_dictionary {
                sqlx::query("INSERT INTO compression_dictionary (run_id, dictionary) VALUES ($1, $2)")
                    .bind(run_id)
                    .bind(dictionary)
                    .execute(pool)
                    .await?;
            }
            Ok(outcome)
        }
        Err(e) => {
            let _ = copy_in.abort("build failed").await;
            // The COPY OUT may still be streaming: this connection cannot be reused.
            out_conn.close_on_drop();
            Err(e)
        }
    }
}

/// Writes the planned professionals' ids into `stage_build`, to select only their lines.
async fn select_planned(pool: &PgPool, plan: &Plan) -> Result<(), ImportError> {
    sqlx::query("TRUNCATE stage_build").execute(pool).await?;
    let mut encoder = CopyEncoder::new(usize::MAX);
    for id in plan.build.keys() {
        encoder.row(1).text(&diff::unkey(*id));
    }
    let mut conn = pool.acquire().await?;
    let mut copy = conn.copy_in_raw("COPY stage_build (national_id) FROM STDIN (FORMAT binary)").await?;
    copy.send(encoder.finish()).await?;
    copy.finish().await?;
    sqlx::query("ANALYZE stage_build").execute(&mut *conn).await?;
    Ok(())
}

fn run_builder(
    run_id: i64,
    plan: Plan,
    dictionary: Option<(i64, Vec<u8>)>,
    mut raw_rx: mpsc::Receiver<Bytes>,
    rec_tx: mpsc::Sender<Bytes>,
) -> Result<BuildOutcome, ImportError> {
    let mut builder = Builder::new(run_id, plan, dictionary)?;
    let mut decoder = CopyDecoder::default();
    while let Some(chunk) = raw_rx.blocking_recv() {
        decoder.push(&chunk);
        while let Some(row) = decoder.next_row()? {
            let (Some(file), Some(id), Some(fields)) = (&row[0], &row[1], &row[2]) else { continue };
            let kind = FileKind::from_code(i16::from_be_bytes([file[0], file[1]]));
            let fields = String::from_utf8(fields.to_vec()).map_err(|_| ImportError::Internal("staged line is not UTF-8".into()))?;
            builder.push(kind, id, fields)?;
            if let Some(chunk) = builder.encoder.take_full_chunk() {
                rec_tx.blocking_send(chunk).map_err(|_| ImportError::Internal("record writer stopped".into()))?;
            }
        }
    }
    let (last_chunk, outcome) = builder.finish()?;
    rec_tx.blocking_send(last_chunk).map_err(|_| ImportError::Internal("record writer stopped".into()))?;
    Ok(outcome)
}

/// A record ready to be compressed and written.
struct Built {
    national_id: String,
    change: &'static str,
    hash: u128,
    family_name: String,
    given_name: String,
    claims: Vec<u8>,
    details: Vec<u8>,
}

/// How records are compressed: with a dictionary (the store's, or one trained on this
/// run's first records), or plainly when there are too few records to train one.
enum Codec {
    Ready { dictionary_run_id: Option<i64>, compressor: zstd::bulk::Compressor<'static> },
    Training { pending: Vec<Built> },
}

struct Builder {
    run_id: i64,
    plan: Plan,
    encoder: CopyEncoder,
    codec: Codec,
    current_id: Vec<u8>,
    lines: Lines,
    outcome: BuildOutcome,
}

fn internal(e: impl std::fmt::Display) -> ImportError {
    ImportError::Internal(e.to_string())
}

impl Builder {
    fn new(run_id: i64, plan: Plan, dictionary: Option<(i64, Vec<u8>)>) -> Result<Builder, ImportError> {
        let codec = match dictionary {
            Some((id, dictionary)) => Codec::Ready {
                dictionary_run_id: Some(id),
                compressor: codec::compressor(Some(&dictionary)).map_err(internal)?,
            },
            None => Codec::Training { pending: Vec::with_capacity(codec::TRAINING_SAMPLES) },
        };
        Ok(Builder {
            run_id,
            plan,
            encoder: CopyEncoder::new(CHUNK_BYTES),
            codec,
            current_id: Vec::new(),
            lines: Lines::default(),
            outcome: BuildOutcome::default(),
        })
    }

    fn push(&mut self, kind: Option<FileKind>, national_id: &[u8], fields: String) -> Result<(), ImportError> {
        if national_id != self.current_id.as_slice() {
            self.flush()?;
            self.current_id.clear();
            self.current_id.extend_from_slice(national_id);
        }
        if let Some(kind) = kind {
            self.lines.push(kind, fields);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ImportError> {
        if self.current_id.is_empty() {
            return Ok(());
        }
        let built = self.diff_and_build();
        self.lines.clear();
        if let Some(built) = built? {
            match &mut self.codec {
                Codec::Training { pending } => {
                    pending.push(built);
                    if pending.len() >= codec::TRAINING_SAMPLES {
                        self.train()?;
                    }
                }
                Codec::Ready { .. } => self.write(&built)?,
            }
        }
        Ok(())
    }

    /// Builds the current professional's record if the plan says so.
    fn diff_and_build(&mut self) -> Result<Option<Built>, ImportError> {
        let Some(&(change, hash)) = self.plan.build.get(&key(&self.current_id)) else { return Ok(None) };
        let national_id = String::from_utf8_lossy(&self.current_id).into_owned();
        let Some(record) = record::build(&national_id, &self.lines) else { return Ok(None) };
        self.outcome.records += 1;
        Ok(Some(Built {
            change: change.as_str(),
            hash,
            claims: serde_json::to_vec(&record.claims).map_err(internal)?,
            details: serde_json::to_vec(&record.details).map_err(internal)?,
            family_name: record.claims.family_name,
            given_name: record.claims.given_name,
            national_id,
        }))
    }

    /// Trains a dictionary on the records gathered so far (or gives up on one), then
    /// writes them.
    fn train(&mut self) -> Result<(), ImportError> {
        let Codec::Training { pending } = &mut self.codec else { return Ok(()) };
        let pending = std::mem::take(pending);
        let enough = pending.len() >= codec::TRAINING_SAMPLES;
        let dictionary = if enough {
            let samples: Vec<Vec<u8>> = pending.iter().flat_map(|b| [b.claims.clone(), b.details.clone()]).collect();
            codec::train(&samples)
        } else {
            None
        };
        self.codec = Codec::Ready {
            dictionary_run_id: dictionary.as_ref().map(|_| self.run_id),
            compressor: codec::compressor(dictionary.as_deref()).map_err(internal)?,
        };
        self.outcome.new_dictionary = dictionary;
        for built in &pending {
            self.write(built)?;
        }
        Ok(())
    }

    fn write(&mut self, built: &Built) -> Result<(), ImportError> {
        let Codec::Ready { dictionary_run_id, compressor } = &mut self.codec else {
            return Err(internal("record written before its codec was chosen"));
        };
        let claims_zst = compressor.compress(&built.claims).map_err(internal)?;
        let details_zst = compressor.compress(&built.details).map_err(internal)?;
        self.encoder
            .row(9)
            .text(&built.national_id)
            .int8(self.run_id)
            .text(built.change)
            .bytes(&built.hash.to_be_bytes())
            .text(&built.family_name)
            .text(&built.given_name)
            .bytes(&claims_zst)
            .bytes(&details_zst);
        match dictionary_run_id {
            Some(id) => self.encoder.int8(*id),
            None => self.encoder.null(),
        };
        Ok(())
    }

    fn finish(mut self) -> Result<(Bytes, BuildOutcome), ImportError> {
        self.flush()?;
        self.train()?;
        Ok((self.encoder.finish(), self.outcome))
    }
}
