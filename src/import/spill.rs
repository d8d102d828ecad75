//! The lines read, kept in a private work file until the diff says whose records to build.
//!
//! A professional's content hash is the sum over their lines in all three files, so who
//! changed is known only once every file is read. Sending every line to Postgres to read
//! back the few that changed made a daily import cost more than loading the file raw; the
//! lines go to local files instead (sequential writes, which the page cache absorbs), and
//! the build reads back only the lines of the professionals it builds, a partition at a
//! time, so that memory stays bounded whatever the size or order of the extract.
//!
//! Each line is stored as: file code (1 byte), line number (8 bytes, little endian), length
//! of the values (4 bytes, little endian), the values joined by `|`.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::extract::FileKind;

/// Bytes gathered per partition before a write: large sequential writes, bounded buffers.
const BUFFER_BYTES: usize = 256 << 10;
/// About how much of the work file the build holds in memory at once (one partition).
const PARTITION_BYTES: u64 = 64 << 20;
const MAX_PARTITIONS: u64 = 256;
const HEADER_BYTES: usize = 1 + 8 + 4;

/// The work file could not be written or read (disk full, directory missing…).
#[derive(Debug, thiserror::Error)]
#[error("the import's work file in {dir}: {source}")]
pub struct SpillError {
    dir: PathBuf,
    source: std::io::Error,
}

/// Appends lines to unnamed temporary files (gone when the import ends, however it ends),
/// one per partition of the professionals: all the lines of one professional land in the
/// same partition, so the build can read one partition at a time, in order, whatever the
/// order of the extract's lines.
pub struct SpillWriter {
    dir: PathBuf,
    partitions: Vec<Partition>,
}

struct Partition {
    file: File,
    buffer: Vec<u8>,
    written: u64,
}

impl SpillWriter {
    /// A work file sized for about `expected_bytes` of lines (the extract's size).
    pub fn create(dir: &Path, expected_bytes: u64) -> Result<SpillWriter, SpillError> {
        let error = |source| SpillError {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(error)?;
        let count = expected_bytes.div_ceil(PARTITION_BYTES).clamp(1, MAX_PARTITIONS);
        let partitions = (0..count)
            .map(|_| {
                Ok(Partition {
                    file: tempfile::tempfile_in(dir).map_err(error)?,
                    buffer: Vec::with_capacity(BUFFER_BYTES),
                    written: 0,
                })
            })
            .collect::<Result<_, SpillError>>()?;
        Ok(SpillWriter {
            dir: dir.to_owned(),
            partitions,
        })
    }

    /// Appends one line of the professional in `slot`; returns its offset in their
    /// partition (what the build reads it back by) and its values joined by `|` (what its
    /// hash is taken of).
    pub fn push(&mut self, slot: u32, kind: FileKind, line: u64, fields: &[&str]) -> Result<(u64, &[u8]), SpillError> {
        let count = self.partitions.len();
        let partition = &mut self.partitions[partition_of(slot, count)];
        if partition.buffer.len() >= BUFFER_BYTES {
            partition.flush().map_err(|source| SpillError {
                dir: self.dir.clone(),
                source,
            })?;
        }
        let buffer = &mut partition.buffer;
        let offset = partition.written + buffer.len() as u64;
        buffer.push(kind.code() as u8);
        buffer.extend_from_slice(&line.to_le_bytes());
        let length_at = buffer.len();
        buffer.extend_from_slice(&[0; 4]);
        let start = buffer.len();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                buffer.push(b'|');
            }
            buffer.extend_from_slice(field.as_bytes());
        }
        let length = u32::try_from(buffer.len() - start).map_err(|_| SpillError {
            dir: self.dir.clone(),
            source: std::io::Error::other("a line of over 4 GB"),
        })?;
        buffer[length_at..start].copy_from_slice(&length.to_le_bytes());
        Ok((offset, &buffer[start..]))
    }

    /// Writes what is left; the lines can then be read back.
    pub fn finish(mut self) -> Result<Spill, SpillError> {
        for partition in &mut self.partitions {
            partition.flush().map_err(|source| SpillError {
                dir: self.dir.clone(),
                source,
            })?;
        }
        Ok(Spill {
            dir: self.dir,
            partitions: self.partitions.into_iter().map(|p| (p.file, p.written)).collect(),
        })
    }
}

impl Partition {
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.write_all(&self.buffer)?;
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }
}

fn partition_of(slot: u32, count: usize) -> usize {
    slot as usize % count
}

/// The spilled lines, one file per partition.
pub struct Spill {
    dir: PathBuf,
    partitions: Vec<(File, u64)>,
}

impl Spill {
    /// The partition the lines of the professional in `slot` are in.
    pub fn partition_of(&self, slot: u32) -> usize {
        partition_of(slot, self.partitions.len())
    }

    fn error(&self, source: std::io::Error) -> SpillError {
        SpillError {
            dir: self.dir.clone(),
            source,
        }
    }

    /// Opens a partition to read `wanted` of its lines: read whole (about
    /// `PARTITION_BYTES`) when they are many, line by line when they are few (a daily
    /// import builds about one professional in fifty).
    pub fn open(&self, partition: usize, wanted: usize) -> Result<PartitionReader<'_>, SpillError> {
        let Some((file, length)) = self.partitions.get(partition) else {
            return Ok(PartitionReader::Whole(Vec::new()));
        };
        // Reading a line alone costs two system calls; reading the partition whole, a
        // copy of every byte: the break-even is about a line per few kilobytes.
        if (wanted as u64).saturating_mul(SPARSE_BYTES_PER_LINE) < *length {
            return Ok(PartitionReader::Sparse(self, file));
        }
        let length = usize::try_from(*length).map_err(|_| self.error(std::io::Error::other("partition too large")))?;
        let mut bytes = vec![0; length];
        file.read_exact_at(&mut bytes, 0).map_err(|e| self.error(e))?;
        Ok(PartitionReader::Whole(bytes))
    }
}

/// Below one wanted line per this many bytes of a partition, its lines are read alone.
const SPARSE_BYTES_PER_LINE: u64 = 16 << 10;

/// One partition, open for reading lines by offset.
pub enum PartitionReader<'s> {
    Whole(Vec<u8>),
    Sparse(&'s Spill, &'s File),
}

/// One line read back.
pub struct SpilledLine {
    pub kind: Option<FileKind>,
    pub line: u64,
    pub values: Vec<u8>,
}

impl PartitionReader<'_> {
    /// The line written at `offset`, an offset `push` returned for this partition; `None`
    /// for any other offset (a bug), rather than a panic.
    pub fn line(&self, offset: u64) -> Result<Option<SpilledLine>, SpillError> {
        match self {
            PartitionReader::Whole(bytes) => {
                Ok(usize::try_from(offset)
                    .ok()
                    .and_then(|at| bytes.get(at..))
                    .and_then(|bytes| {
                        let (kind, line, length) = header(bytes.get(..HEADER_BYTES)?)?;
                        let values = bytes.get(HEADER_BYTES..HEADER_BYTES + length)?.to_vec();
                        Some(SpilledLine { kind, line, values })
                    }))
            }
            PartitionReader::Sparse(spill, file) => {
                let mut head = [0; HEADER_BYTES];
                file.read_exact_at(&mut head, offset).map_err(|e| spill.error(e))?;
                let Some((kind, line, length)) = header(&head) else {
                    return Ok(None);
                };
                let mut values = vec![0; length];
                file.read_exact_at(&mut values, offset + HEADER_BYTES as u64)
                    .map_err(|e| spill.error(e))?;
                Ok(Some(SpilledLine { kind, line, values }))
            }
        }
    }
}

/// File kind, line number and length of the values, from a line's header.
fn header(bytes: &[u8]) -> Option<(Option<FileKind>, u64, usize)> {
    let line = u64::from_le_bytes(bytes.get(1..9)?.try_into().ok()?);
    let length = u32::from_le_bytes(bytes.get(9..13)?.try_into().ok()?) as usize;
    Some((FileKind::from_code(i16::from(*bytes.first()?)), line, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_by_partition_and_offset_across_buffer_flushes() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Three partitions.
        let mut writer = SpillWriter::create(dir.path(), 3 * PARTITION_BYTES).expect("spill");
        let long = "x".repeat(BUFFER_BYTES / 3);
        let mut written = Vec::new();
        for n in 0..20u32 {
            let fields = [format!("8100000000{n:02}"), long.clone(), "é|z".to_owned()];
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            let kind = if n % 2 == 0 {
                FileKind::PersonneActivite
            } else {
                FileKind::DiplAutExerc
            };
            let slot = n % 4;
            let (offset, joined) = writer.push(slot, kind, u64::from(n) + 2, &fields).expect("push");
            assert_eq!(joined, fields.join("|").as_bytes());
            written.push((slot, offset, kind, u64::from(n) + 2, fields.join("|")));
        }
        let spill = writer.finish().expect("finish");
        assert_eq!((spill.partition_of(0), spill.partition_of(3)), (0, 0));
        // Read whole (many lines wanted) and line by line (one wanted): the same lines.
        for wanted in [usize::MAX, 1] {
            for (slot, offset, kind, line, values) in written.iter().rev() {
                let partition = spill.open(spill.partition_of(*slot), wanted).expect("open");
                let read = partition.line(*offset).expect("read").expect("line at its offset");
                assert_eq!((read.kind, read.line), (Some(*kind), *line));
                assert_eq!(read.values, values.as_bytes());
            }
        }
        // An offset no line was written at: nothing in a partition read whole, an error
        // past the end of the file read line by line.
        let whole = spill.open(0, usize::MAX).expect("open");
        assert!(whole.line(u64::MAX).expect("no error").is_none());
        let sparse = spill.open(0, 1).expect("open");
        assert!(matches!(sparse, PartitionReader::Sparse(..)));
        assert!(sparse.line(u64::MAX >> 1).is_err());
    }

    #[test]
    fn an_empty_spill_has_no_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spill = SpillWriter::create(dir.path(), 0)
            .expect("spill")
            .finish()
            .expect("finish");
        for wanted in [1, usize::MAX] {
            let partition = spill.open(0, wanted).expect("open");
            assert!(partition.line(0).expect("no error").is_none());
        }
    }
}
