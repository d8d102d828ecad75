//! The claims snapshot: what answers the IdP. A compact, read-only copy of the published
//! generation's claims documents (compressed as stored), held in memory and swapped
//! atomically when a new generation is published, so that a lookup never waits on Postgres
//! and keeps working while it is down.

mod load;

use std::cell::RefCell;
use std::sync::Arc;

use axum::http::HeaderValue;
use chrono::{DateTime, Utc};

pub use load::{HOUSEKEEPING_NICE, LoadError, load_changes, load_full};

use crate::national_id::{IdMap, NationalId};
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

/// The map of a snapshot. Its keys come from the published directory, never from a
/// caller (a lookup only probes), so a flooding attack has nothing to insert: a fast hash
/// (foldhash, seeded per process) instead of SipHash, which cost more than the probe.
type Entries = IdMap<Entry>;

/// One published generation, ready to answer.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The published run, `None` before any publication.
    pub generation: Option<RunId>,
    pub extract_ts: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
    /// `Last-Modified` of every claims answer of this generation (the extract's timestamp,
    /// else the publication's), rendered once here instead of once per request.
    pub last_modified: Option<HeaderValue>,
    entries: Entries,
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
    Found { json: Vec<u8>, etag: ETag },
    Removed { removed_at: DateTime<Utc> },
    NotFound,
}

/// A document's ETag, `"` + its content hash in 32 lower-case hex digits + `"`: rendered on
/// the stack, as the answer's header needs it, without a formatter or an allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ETag([u8; 34]);

impl ETag {
    fn of(content_hash: u128) -> ETag {
        let mut tag = [b'"'; 34];
        // Cannot fail: 16 bytes always encode into 32.
        let _ = hex::encode_to_slice(content_hash.to_be_bytes(), &mut tag[1..33]);
        ETag(tag)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Quotes and hex digits: always ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HTTP date of `Last-Modified` (RFC 9110 §5.6.7).
pub fn http_date(ts: DateTime<Utc>) -> Option<HeaderValue> {
    HeaderValue::from_str(&ts.format("%a, %d %b %Y %H:%M:%S GMT").to_string()).ok()
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
            etag: ETag::of(entry.etag),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_the_quoted_hex_of_the_content_hash() {
        for hash in [0u128, 1, 0x6ee9_c25f_8ca9_acef_95a1_7c02_c0c2_6a37, u128::MAX] {
            assert_eq!(ETag::of(hash).as_str(), format!("\"{hash:032x}\""));
        }
    }

    #[test]
    fn last_modified_is_an_http_date() {
        let ts = DateTime::from_timestamp(1_795_593_600, 0).unwrap();
        assert_eq!(http_date(ts).unwrap(), "Wed, 25 Nov 2026 08:00:00 GMT");
    }
}
