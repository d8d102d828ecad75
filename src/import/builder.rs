//! The CPU side of the build, off the async workers: one thread cuts the sorted staged rows
//! into professionals, worker threads build, serialise and compress their records and
//! encode them as `COPY` data. Workers write whole rows, so their chunks interleave freely.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::ImportError;
use super::diff::{Change, Plan, key};
use super::record::{self, Lines};
use crate::extract::FileKind;
use crate::store::codec;
use crate::store::copy::{CopyDecoder, CopyEncoder};

const CHUNK_BYTES: usize = 1 << 20;
/// Professionals queued per worker: enough to keep it busy while the grouper reads on.
const QUEUE: usize = 256;
/// Two workers keep both cores busy next to the database server on a two-core machine;
/// more only add hand-overs.
const MAX_WORKERS: usize = 4;

/// The compression dictionary records are written with, if any, and its run id.
pub type Dictionary = Option<(i64, Vec<u8>)>;

/// One professional's staged lines, to build.
struct Group {
    national_id: String,
    lines: Lines,
    change: Change,
    hash: u128,
}

/// Runs the build threads until the staged rows are exhausted. Returns the number of
/// records written.
pub fn run(
    run_id: i64,
    plan: Plan,
    dictionary: Dictionary,
    mut raw_rx: mpsc::Receiver<Bytes>,
    rec_tx: mpsc::Sender<Bytes>,
) -> Result<i64, ImportError> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, MAX_WORKERS);
    // The COPY header goes first, the end marker last, the workers' rows in between.
    let mut framing = CopyEncoder::new(CHUNK_BYTES);
    rec_tx
        .blocking_send(framing.take_all())
        .map_err(|_| ImportError::internal("record writer stopped"))?;
    std::thread::scope(|scope| {
        let mut queues: Vec<SyncSender<Group>> = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = sync_channel::<Group>(QUEUE);
            queues.push(tx);
            let rec_tx = rec_tx.clone();
            let dictionary = &dictionary;
            handles.push(scope.spawn(move || write_records(run_id, dictionary, rx, rec_tx)));
        }
        let grouped = group(&plan, &mut raw_rx, &queues);
        drop(queues);
        let mut records = 0;
        for handle in handles {
            records += handle
                .join()
                .map_err(|_| ImportError::internal("a build worker panicked"))??;
        }
        grouped?;
        Ok::<i64, ImportError>(records)
    })
    .and_then(|records| {
        rec_tx
            .blocking_send(framing.finish())
            .map_err(|_| ImportError::internal("record writer stopped"))?;
        Ok(records)
    })
}

/// Cuts the rows (sorted by national id) into professionals and deals the planned ones out
/// to the workers in turn.
fn group(plan: &Plan, raw_rx: &mut mpsc::Receiver<Bytes>, queues: &[SyncSender<Group>]) -> Result<(), ImportError> {
    let mut decoder = CopyDecoder::default();
    let mut current: Option<(Vec<u8>, Lines)> = None;
    let mut next_worker = 0;
    let mut dispatch = |id: Vec<u8>, lines: Lines| -> Result<(), ImportError> {
        let Some(&(change, hash)) = plan.build.get(&key(&id)) else {
            return Ok(());
        };
        let national_id = String::from_utf8(id).map_err(ImportError::internal)?;
        queues[next_worker % queues.len()]
            .send(Group {
                national_id,
                lines,
                change,
                hash,
            })
            .map_err(|_| ImportError::internal("a build worker stopped"))?;
        next_worker += 1;
        Ok(())
    };
    while let Some(chunk) = raw_rx.blocking_recv() {
        decoder.push(&chunk);
        while let Some(row) = decoder.next_row()? {
            let (Some(file), Some(id), Some(fields)) = (&row[0], &row[1], &row[2]) else {
                continue;
            };
            let kind = FileKind::from_code(i16::from_be_bytes([file[0], file[1]]));
            let line =
                String::from_utf8(fields.to_vec()).map_err(|_| ImportError::internal("staged line is not UTF-8"))?;
            if current
                .as_ref()
                .is_none_or(|(current_id, _)| current_id.as_slice() != &id[..])
            {
                if let Some((done_id, done_lines)) = current.take() {
                    dispatch(done_id, done_lines)?;
                }
                current = Some((id.to_vec(), Lines::default()));
            }
            if let (Some(kind), Some((_, lines))) = (kind, current.as_mut()) {
                lines.push(kind, line);
            }
        }
    }
    if let Some((id, lines)) = current.take() {
        dispatch(id, lines)?;
    }
    Ok(())
}

/// A worker: builds, compresses and encodes the records of the professionals it receives.
fn write_records(
    run_id: i64,
    dictionary: &Dictionary,
    queue: Receiver<Group>,
    rec_tx: mpsc::Sender<Bytes>,
) -> Result<i64, ImportError> {
    let mut compressor =
        codec::compressor(dictionary.as_ref().map(|(_, d)| d.as_slice())).map_err(ImportError::internal)?;
    let dictionary_run_id = dictionary.as_ref().map(|(id, _)| *id);
    let mut encoder = CopyEncoder::continuation(CHUNK_BYTES);
    let mut records = 0;
    for group in queue {
        let Some(record) = record::build(&group.national_id, &group.lines) else {
            continue;
        };
        let claims = serde_json::to_vec(&record.claims).map_err(ImportError::internal)?;
        let details = serde_json::to_vec(&record.details).map_err(ImportError::internal)?;
        let claims_zst = compressor.compress(&claims).map_err(ImportError::internal)?;
        let details_zst = compressor.compress(&details).map_err(ImportError::internal)?;
        encoder
            .row(9)
            .text(&group.national_id)
            .int8(run_id)
            .text(group.change.as_str())
            .bytes(&group.hash.to_be_bytes())
            .text(&record.claims.family_name)
            .text(&record.claims.given_name)
            .bytes(&claims_zst)
            .bytes(&details_zst);
        match dictionary_run_id {
            Some(id) => encoder.int8(id),
            None => encoder.null(),
        };
        records += 1;
        if let Some(chunk) = encoder.take_full_chunk() {
            rec_tx
                .blocking_send(chunk)
                .map_err(|_| ImportError::internal("record writer stopped"))?;
        }
    }
    rec_tx
        .blocking_send(encoder.take_all())
        .map_err(|_| ImportError::internal("record writer stopped"))?;
    Ok(records)
}

/// Trains a compression dictionary on records built from sample lines (the first
/// Personne_activite lines read, grouped by professional). `None` when the sample is too
/// small: plain zstd then.
pub fn train_dictionary(samples: &[(String, String)]) -> Option<Vec<u8>> {
    let mut documents = Vec::new();
    let mut start = 0;
    while start < samples.len() {
        let id = &samples[start].0;
        let end = samples[start..]
            .iter()
            .position(|(other, _)| other != id)
            .map_or(samples.len(), |n| start + n);
        let lines = Lines {
            personne_activite: samples[start..end].iter().map(|(_, line)| line.clone()).collect(),
            ..Lines::default()
        };
        if let Some(record) = record::build(id, &lines) {
            documents.extend(serde_json::to_vec(&record.claims).ok());
            documents.extend(serde_json::to_vec(&record.details).ok());
        }
        start = end;
    }
    if documents.len() < codec::MIN_TRAINING_DOCUMENTS {
        return None;
    }
    codec::train(&documents)
}
