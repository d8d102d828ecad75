//! Stored records become index documents on several threads at once: decompressing and
//! reading a professional's documents costs as much as indexing them, and one thread doing
//! it left a core idle while the writer's threads waited.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use super::SearchError;
use super::document::{self, ClaimsView, DetailsView};
use super::index::{Prepared, SearchIndex};
use super::labels::Collected;
use crate::store::RunId;
use crate::store::codec::Decompressors;
use crate::store::published::CurrentRecord;

/// Threads that decode records for the writer.
pub(super) const DECODERS: usize = 2;

/// Batches of stored records, shared by the decoding threads.
pub(super) type Batches = Mutex<mpsc::Receiver<Vec<CurrentRecord>>>;

/// Turns stored records into documents: the dictionaries and this thread's decompressors.
struct RecordDecoder<'d> {
    dictionaries: &'d HashMap<RunId, Vec<u8>>,
    decompressors: Decompressors,
    labels: Collected,
}

impl RecordDecoder<'_> {
    fn prepare(&mut self, record: &CurrentRecord, index: &SearchIndex) -> Result<Prepared, SearchError> {
        let bad = |what: &str| SearchError::Record(what.to_owned());
        let dictionary = match record.dictionary {
            Some(id) => Some((
                id,
                self.dictionaries
                    .get(&id)
                    .ok_or_else(|| bad("unknown dictionary"))?
                    .as_slice(),
            )),
            None => None,
        };
        let mut unpack = |data: &[u8]| {
            self.decompressors
                .decompress(data, dictionary)
                .map_err(|e| bad(&e.to_string()))
        };
        let claims_json = unpack(&record.claims_zst)?;
        let details_json = unpack(record.details_zst.as_ref().ok_or_else(|| bad("no details"))?)?;
        // Checked as UTF-8 whole, once: `from_slice` checks each string on its own, which
        // for many short strings costs more.
        let claims_json = std::str::from_utf8(&claims_json).map_err(|e| bad(&e.to_string()))?;
        let details_json = std::str::from_utf8(&details_json).map_err(|e| bad(&e.to_string()))?;
        let claims: ClaimsView = serde_json::from_str(claims_json).map_err(|e| bad(&e.to_string()))?;
        let details: DetailsView = serde_json::from_str(details_json).map_err(|e| bad(&e.to_string()))?;
        self.labels.note(&details);
        let mailboxes = record
            .mailboxes
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let values = document::values(&claims, &details, &mailboxes, record.removed_at.is_some());
        Ok(index.prepare(&values))
    }
}

/// Decodes batches into `index` until there are none left, and gives the labels it saw. On
/// an error, closes the batches so that the reader and the other decoders stop too.
pub(super) fn decode(
    batches: &Batches,
    dictionaries: &HashMap<RunId, Vec<u8>>,
    index: &SearchIndex,
    replace: bool,
) -> Result<Collected, SearchError> {
    let mut decoder = RecordDecoder {
        dictionaries,
        decompressors: Decompressors::default(),
        labels: Collected::default(),
    };
    while let Some(records) = next(batches) {
        let added = records
            .iter()
            .map(|record| decoder.prepare(record, index))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|prepared| Ok(index.add(prepared, replace)?));
        if let Err(error) = added {
            if let Ok(mut batches) = batches.lock() {
                batches.close();
            }
            return Err(error);
        }
    }
    Ok(decoder.labels)
}

/// The next batch, or None at the end (or once another decoder failed).
fn next(batches: &Batches) -> Option<Vec<CurrentRecord>> {
    batches.lock().ok()?.blocking_recv()
}
