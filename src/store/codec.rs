//! Compression of stored documents (claims, details): zstd with a dictionary trained on
//! the directory's own documents, which makes a 1.6 kB claims document about 200 bytes and
//! compresses it four times faster than plain zstd (whose per-document entropy tables
//! dominate on inputs this small). The one place that compresses and decompresses them,
//! under one size limit.

use std::collections::HashMap;
use std::io::Read;

use super::RunId;

/// Dictionary size: larger gains little on these documents (measured: 16 kB → 219 bytes a
/// document, 64 kB → 190).
pub const DICTIONARY_BYTES: usize = 64 * 1024;
/// Level 3 with a dictionary is as fast as level 1 and a little smaller; above that, speed
/// falls fast for a few bytes.
pub const LEVEL: i32 = 3;
/// Largest claims or details document, uncompressed, shared by the importer (which rejects a
/// professional whose document would be larger) and the server (which decompresses into at
/// most this): what is published can always be served. 256 KiB is Okta's bound on a hook's
/// reply; real documents are about 1.6 kB.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Personne_activite lines kept while reading, to train a dictionary on their records.
pub const TRAINING_LINES: usize = 8000;
/// Fewer sample documents than this (small extracts) train no dictionary: plain zstd.
pub const MIN_TRAINING_DOCUMENTS: usize = 2000;

/// Trains a dictionary from sample documents; `None` when zstd finds the samples unfit
/// (too few or too alike), in which case plain zstd is used.
pub fn train(samples: &[Vec<u8>]) -> Option<Vec<u8>> {
    match zstd::dict::from_samples(samples, DICTIONARY_BYTES) {
        Ok(dictionary) => Some(dictionary),
        Err(error) => {
            tracing::warn!(%error, samples = samples.len(), "zstd dictionary training failed; compressing without one");
            None
        }
    }
}

pub fn compressor(dictionary: Option<&[u8]>) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    match dictionary {
        Some(d) => zstd::bulk::Compressor::with_dictionary(LEVEL, d),
        None => zstd::bulk::Compressor::new(LEVEL),
    }
}

/// Decompresses one stored document; one larger than `MAX_DOCUMENT_BYTES` is an error,
/// never an allocation of its size.
pub fn decompress(data: &[u8], dictionary: Option<&[u8]>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity((data.len() * 8).min(MAX_DOCUMENT_BYTES));
    let limit = MAX_DOCUMENT_BYTES as u64 + 1;
    match dictionary {
        Some(d) => zstd::stream::read::Decoder::with_dictionary(data, d)?
            .take(limit)
            .read_to_end(&mut out)?,
        None => zstd::stream::read::Decoder::new(data)?
            .take(limit)
            .read_to_end(&mut out)?,
    };
    if out.len() > MAX_DOCUMENT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("document larger than {MAX_DOCUMENT_BYTES} bytes"),
        ));
    }
    Ok(out)
}

/// Decompresses many stored documents, keeping one decompression context per dictionary:
/// loading a dictionary costs far more than decompressing a document with it.
#[derive(Default)]
pub struct Decompressors {
    contexts: HashMap<RunId, zstd::bulk::Decompressor<'static>>,
}

impl Decompressors {
    /// Decompresses one document, with the dictionary it was compressed with (its run id
    /// and bytes), under the same limit as [`decompress`].
    pub fn decompress(&mut self, data: &[u8], dictionary: Option<(RunId, &[u8])>) -> std::io::Result<Vec<u8>> {
        let Some((run_id, bytes)) = dictionary else {
            return decompress(data, None);
        };
        let decompressor = match self.contexts.entry(run_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(zstd::bulk::Decompressor::with_dictionary(bytes)?),
        };
        // The frame's header records its size: allocate exactly that, not the worst case.
        // (`upper_bound` walks every block of the frame: measured, a third of the decompression.) A
        // frame that claims more than the limit fails to decompress into it.
        let size = zstd::zstd_safe::get_frame_content_size(data)
            .ok()
            .flatten()
            .map_or(MAX_DOCUMENT_BYTES, |n| n.min(MAX_DOCUMENT_BYTES as u64) as usize);
        decompressor.decompress(data, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_and_without_a_dictionary() {
        let samples: Vec<Vec<u8>> = (0..600)
            .map(|i| {
                format!(
                    r#"{{"SubjectNameID":"8100{i:08}","codeProfession":"{}","libelleVoie":"RUE {}"}}"#,
                    i % 7,
                    i * 13
                )
                .into_bytes()
            })
            .collect();
        let dictionary = train(&samples).expect("enough samples");
        let doc = br#"{"SubjectNameID":"810001234565","codeProfession":"10","libelleVoie":"RUE 42"}"#;
        let mut with = compressor(Some(&dictionary)).unwrap();
        let packed = with.compress(doc).unwrap();
        assert_eq!(decompress(&packed, Some(&dictionary)).unwrap(), doc);
        let plain = compressor(None).unwrap().compress(doc).unwrap();
        assert!(packed.len() < plain.len(), "{} < {}", packed.len(), plain.len());
        assert_eq!(decompress(&plain, None).unwrap(), doc);
        let mut cached = Decompressors::default();
        for _ in 0..2 {
            assert_eq!(cached.decompress(&packed, Some((RunId(1), &dictionary))).unwrap(), doc);
            assert_eq!(cached.decompress(&plain, None).unwrap(), doc);
        }
    }

    #[test]
    fn a_document_over_the_limit_is_refused() {
        let big = vec![b'a'; MAX_DOCUMENT_BYTES + 1];
        let packed = compressor(None).unwrap().compress(&big).unwrap();
        assert!(decompress(&packed, None).is_err());
        assert!(Decompressors::default().decompress(&packed, None).is_err());
        let fits = compressor(None).unwrap().compress(&big[1..]).unwrap();
        assert_eq!(decompress(&fits, None).unwrap().len(), MAX_DOCUMENT_BYTES);
    }
}
