//! The claims snapshot: what answers the IdP. A compact, read-only copy of the published
//! generation's claims documents (compressed as stored), held in memory and swapped
//! atomically when a new generation is published, so that a lookup never waits on Postgres
//! and keeps working while it is down.

mod load;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use load::{LoadError, load_changes, load_full};

use crate::national_id::{NationalId, PackedId};
use crate::store::RunId;
use crate::store::codec::Decompressors;

/// Where one professional's document is, and what the answers need.
#[derive(Debug, Clone, Copy)]
struct Entry {
    segment: u32,
    offset: u32,
    len: u32,
    /// Index into `Snapshot::dictionaries`, `u32::MAX` for none.
    dictionary: u32,
    /// Unix seconds of the removal; 0 while present.
    removed_at: i64,
    /// The professional's content hash: the document's ETag.
    etag: u128,
}

const NO_DICTIONARY: u32 = u32::MAX;

/// One published generation, ready to answer.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The published run, `None` before any publication.
    pub generation: Option<RunId>,
    pub extract_ts: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
    entries: HashMap<PackedId, Entry>,
    /// Compressed documents, in large shared segments: a new generation appends a segment
    /// for what changed and shares the others with the previous snapshot.
    segments: Vec<Arc<Vec<u8>>>,
    /// Bytes in the segments that no entry points at any more.
    garbage: usize,
    dictionaries: Vec<(RunId, Arc<Vec<u8>>)>,
}

/// The answer to a claims lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Found { json: Vec<u8>, etag: String },
    Removed { removed_at: DateTime<Utc> },
    NotFound,
}

#[derive(Debug, thiserror::Error)]
#[error("stored claims of {0} cannot be decompressed: {1}")]
pub struct CorruptDocument(String, std::io::Error);

thread_local! {
    /// One set of decompression contexts per thread: lookups run on every worker.
    static DECOMPRESSORS: RefCell<Decompressors> = RefCell::new(Decompressors::default());
}

impl Snapshot {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn memory_bytes(&self) -> usize {
        self.segments.iter().map(|s| s.capacity()).sum::<usize>()
            + self.entries.capacity() * (std::mem::size_of::<Entry>() + 16 + 1)
    }

    pub fn lookup(&self, id: &NationalId) -> Result<Answer, CorruptDocument> {
        let Some(entry) = self.entries.get(&id.packed()) else {
            return Ok(Answer::NotFound);
        };
        if entry.removed_at != 0 {
            let removed_at = DateTime::from_timestamp(entry.removed_at, 0).unwrap_or_default();
            return Ok(Answer::Removed { removed_at });
        }
        let segment = &self.segments[entry.segment as usize];
        let compressed = &segment[entry.offset as usize..(entry.offset + entry.len) as usize];
        let dictionary = (entry.dictionary != NO_DICTIONARY).then(|| {
            let (run_id, bytes) = &self.dictionaries[entry.dictionary as usize];
            (*run_id, bytes.as_slice())
        });
        let json = DECOMPRESSORS
            .with(|cache| cache.borrow_mut().decompress(compressed, dictionary))
            .map_err(|e| CorruptDocument(id.to_string(), e))?;
        Ok(Answer::Found {
            json,
            etag: format!("\"{:032x}\"", entry.etag),
        })
    }
}
