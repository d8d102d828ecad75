//! The build stage, CPU side, off the async workers: one thread gathers each planned
//! professional's lines from the work file, worker threads build, serialise and compress
//! their records and encode them as `COPY` data. Workers write whole rows, so their chunks
//! interleave freely.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Input;
use super::record::{self, Lines};
use crate::extract::FileKind;
use crate::import::ImportError;
use crate::import::diff::Change;
use crate::import::gate::DiffCounts;
use crate::import::stage::SpilledLines;
use crate::store::copy::CopyEncoder;
use crate::store::runs::{KEPT_REJECTS, RejectedLine};
use crate::store::{RunId, codec};

const CHUNK_BYTES: usize = 1 << 20;
/// Professionals queued per worker: enough to keep it busy while the grouper reads on.
const QUEUE: usize = 256;
/// Two workers keep both cores busy next to the database server on a two-core machine;
/// more only add hand-overs.
const MAX_WORKERS: usize = 4;

/// The compression dictionary records are written with, if any, and its run id.
pub type Dictionary = Option<(RunId, Vec<u8>)>;

/// One professional's staged lines, to build.
struct Group {
    national_id: String,
    lines: Lines,
    change: Change,
    hash: u128,
    /// Line number of their first Personne_activite line: where a reject points.
    first_line: i64,
}

/// Professionals whose claims or details document would be over the size limit: not
/// written, so publishing leaves them as they were (kept if published, absent if new).
#[derive(Debug, Default)]
pub struct RejectedDocuments {
    /// Per identifier type: `rejected_documents`, and under `added` / `changed` what each
    /// would have been, to take out of the diff counts.
    pub counts: DiffCounts,
    /// The first ones, for `imports show`.
    pub kept: Vec<RejectedLine>,
}

impl RejectedDocuments {
    pub fn total(&self) -> i64 {
        self.counts.total(|c| c.rejected_documents)
    }

    fn merge(&mut self, other: RejectedDocuments) {
        self.counts.add(&other.counts);
        let room = KEPT_REJECTS.saturating_sub(self.kept.len());
        self.kept.extend(other.kept.into_iter().take(room));
    }
}

/// What the build wrote and what it refused.
#[derive(Debug, Default)]
pub struct Built {
    pub records: i64,
    pub rejected: RejectedDocuments,
}

/// Runs the build threads until every planned professional is built. Returns the number
/// of records written and the professionals refused for the size of their documents
/// (`file_name` is the Personne_activite file their rejects name).
pub fn build_records(
    run_id: RunId,
    input: Input,
    dictionary: Dictionary,
    file_name: &str,
    rec_tx: mpsc::Sender<Bytes>,
) -> Result<Built, ImportError> {
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
            handles.push(scope.spawn(move || write_records(run_id, dictionary, file_name, rx, rec_tx)));
        }
        let grouped = group(input, &queues);
        drop(queues);
        let mut built = Built::default();
        for handle in handles {
            let worker = handle
                .join()
                .map_err(|_| ImportError::internal("a build worker panicked"))??;
            built.records += worker.records;
            built.rejected.merge(worker.rejected);
        }
        grouped?;
        Ok::<Built, ImportError>(built)
    })
    .and_then(|built| {
        rec_tx
            .blocking_send(framing.finish())
            .map_err(|_| ImportError::internal("record writer stopped"))?;
        Ok(built)
    })
}

/// Gathers the lines of each planned professional from the work file, in the order they
/// were read (file by file, line by line), and deals the professionals out to the workers
/// in turn.
fn group(input: Input, queues: &[SyncSender<Group>]) -> Result<(), ImportError> {
    let Input {
        plan,
        hashes,
        spilled: SpilledLines { spill, mut lines },
    } = input;
    // What to build, by slot, and where their lines are: one lookup per professional
    // rather than per line.
    let planned: Vec<Option<(Change, u128, u32)>> = (0..hashes.len())
        .map(|slot| {
            let professional = hashes.professional(slot as u32)?;
            let (change, hash) = plan.build.get(&professional.id).copied()?;
            Some((change, hash, spill.partition_of(professional.id) as u32))
        })
        .collect();
    drop(plan);
    lines.retain(|(slot, _)| planned[*slot as usize].is_some());
    let partition_of = |slot: u32| planned[slot as usize].map_or(0, |(_, _, partition)| partition);
    // By partition, then professional, then offset, which is reading order.
    lines.sort_unstable_by_key(|&(slot, offset)| (partition_of(slot), slot, offset));
    let missing = || ImportError::internal("a line of the work file is missing");
    let mut next_worker = 0;
    for partition in lines.chunk_by(|a, b| partition_of(a.0) == partition_of(b.0)) {
        let read = spill.open(partition_of(partition[0].0) as usize, partition.len())?;
        for professional in partition.chunk_by(|a, b| a.0 == b.0) {
            let slot = professional[0].0;
            let ((change, hash, _), id) = planned[slot as usize]
                .zip(hashes.professional(slot))
                .ok_or_else(missing)?;
            let mut group = Group {
                national_id: id.id.unpack(),
                lines: Lines::default(),
                change,
                hash,
                first_line: 0,
            };
            for &(_, offset) in professional {
                let line = read.line(offset)?.ok_or_else(missing)?;
                let Some(kind) = line.kind else { continue };
                let values =
                    String::from_utf8(line.values).map_err(|_| ImportError::internal("spilled line is not UTF-8"))?;
                if kind == FileKind::PersonneActivite && group.lines.personne_activite.is_empty() {
                    group.first_line = line.line as i64;
                }
                group.lines.push(kind, values);
            }
            deal(queues, next_worker, group)?;
            next_worker += 1;
        }
    }
    Ok(())
}

/// Hands a professional to a worker: the first, from `turn` on, with room in its queue,
/// or else waits on the one whose turn it is. Dealing strictly in turn made the gatherer
/// wait on a worker that was behind while the other sat idle.
fn deal(queues: &[SyncSender<Group>], turn: usize, group: Group) -> Result<(), ImportError> {
    let stopped = || ImportError::internal("a build worker stopped");
    let mut group = group;
    for i in 0..queues.len() {
        match queues[(turn + i) % queues.len()].try_send(group) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(back)) => group = back,
            Err(TrySendError::Disconnected(_)) => return Err(stopped()),
        }
    }
    queues[turn % queues.len()].send(group).map_err(|_| stopped())
}

/// A worker: builds, compresses and encodes the records of the professionals it receives.
fn write_records(
    run_id: RunId,
    dictionary: &Dictionary,
    file_name: &str,
    queue: Receiver<Group>,
    rec_tx: mpsc::Sender<Bytes>,
) -> Result<Built, ImportError> {
    let mut compressor =
        codec::compressor(dictionary.as_ref().map(|(_, d)| d.as_slice())).map_err(ImportError::internal)?;
    let dictionary_run_id = dictionary.as_ref().map(|(id, _)| *id);
    let mut encoder = CopyEncoder::continuation(CHUNK_BYTES);
    let mut built = Built::default();
    for group in queue {
        let Some(record) = record::build(&group.national_id, &group.lines) else {
            continue;
        };
        let claims = serde_json::to_vec(&record.claims).map_err(ImportError::internal)?;
        let details = serde_json::to_vec(&record.details).map_err(ImportError::internal)?;
        if let Some(reason) = oversize(&group.national_id, &claims, &details) {
            tracing::debug!(national_id = %group.national_id, %reason, "document rejected");
            let counts = built.rejected.counts.of_type(group.national_id.as_bytes()[0]);
            counts.rejected_documents += 1;
            match group.change {
                Change::Added => counts.added += 1,
                Change::Changed => counts.changed += 1,
            }
            if built.rejected.kept.len() < KEPT_REJECTS {
                built.rejected.kept.push(RejectedLine {
                    file: file_name.to_owned(),
                    line: group.first_line,
                    reason,
                    content: group.lines.personne_activite[0].chars().take(300).collect(),
                });
            }
            continue;
        }
        let claims_zst = compressor.compress(&claims).map_err(ImportError::internal)?;
        let details_zst = compressor.compress(&details).map_err(ImportError::internal)?;
        encoder
            .row(9)
            .text(&group.national_id)
            .int8(run_id.0)
            .text(group.change.as_str())
            .bytes(&group.hash.to_be_bytes())
            .text(&record.claims.family_name)
            .text(&record.claims.given_name)
            .bytes(&claims_zst)
            .bytes(&details_zst);
        match dictionary_run_id {
            Some(RunId(id)) => encoder.int8(id),
            None => encoder.null(),
        };
        built.records += 1;
        if let Some(chunk) = encoder.take_full_chunk() {
            rec_tx
                .blocking_send(chunk)
                .map_err(|_| ImportError::internal("record writer stopped"))?;
        }
    }
    rec_tx
        .blocking_send(encoder.take_all())
        .map_err(|_| ImportError::internal("record writer stopped"))?;
    Ok(built)
}

/// Why a professional's documents cannot be published: one would be over the limit the
/// server decompresses into.
fn oversize(national_id: &str, claims: &[u8], details: &[u8]) -> Option<String> {
    let limit = codec::MAX_DOCUMENT_BYTES;
    [("claims", claims.len()), ("details", details.len())]
        .into_iter()
        .find(|(_, len)| *len > limit)
        .map(|(what, len)| {
            format!("{what} document of {national_id} would be {len} bytes, over the {limit}-byte limit")
        })
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
            // A document over the limit will not be published: no use training on it.
            let fits = |d: &Vec<u8>| d.len() <= codec::MAX_DOCUMENT_BYTES;
            documents.extend(serde_json::to_vec(&record.claims).ok().filter(fits));
            documents.extend(serde_json::to_vec(&record.details).ok().filter(fits));
        }
        start = end;
    }
    if documents.len() < codec::MIN_TRAINING_DOCUMENTS {
        return None;
    }
    codec::train(&documents)
}
