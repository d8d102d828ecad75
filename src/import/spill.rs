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
use std::hash::BuildHasher;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use crate::extract::FileKind;
use crate::national_id::PackedId;

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
/// order of the extract's lines. The writes themselves happen on a thread of their own:
/// copying a gigabyte into the page cache was a sixth of the reader's time, on the thread
/// every line waits for.
pub struct SpillWriter {
    dir: PathBuf,
    partitions: Vec<Partition>,
    /// Full buffers to the writing thread (`None` once finished).
    writes: Option<SyncSender<(usize, Vec<u8>)>>,
    /// Written buffers coming back, to be filled again.
    recycled: Receiver<Vec<u8>>,
    /// The writing thread: it gives the files back, or why it stopped.
    writer: Option<JoinHandle<std::io::Result<Vec<File>>>>,
}

struct Partition {
    buffer: Vec<u8>,
    /// Bytes handed to the writing thread so far: the offset of the buffer's first byte.
    written: u64,
}

/// Full buffers waiting for the writing thread: enough to ride out a slow write, bounded.
const BUFFERS_IN_FLIGHT: usize = 8;

impl SpillWriter {
    /// A work file sized for about `expected_bytes` of lines (the extract's size).
    pub fn create(dir: &Path, expected_bytes: u64) -> Result<SpillWriter, SpillError> {
        let error = |source| SpillError {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(error)?;
        let count = expected_bytes.div_ceil(PARTITION_BYTES).clamp(1, MAX_PARTITIONS);
        let mut files = (0..count)
            .map(|_| tempfile::tempfile_in(dir).map_err(error))
            .collect::<Result<Vec<File>, SpillError>>()?;
        let (writes, to_write) = sync_channel::<(usize, Vec<u8>)>(BUFFERS_IN_FLIGHT);
        let (give_back, recycled) = channel();
        let writer = std::thread::Builder::new()
            .name("annuaire-spill".to_owned())
            .spawn(move || {
                for (index, mut buffer) in to_write {
                    files[index].write_all(&buffer)?;
                    buffer.clear();
                    let _ = give_back.send(buffer);
                }
                Ok(files)
            })
            .map_err(error)?;
        Ok(SpillWriter {
            dir: dir.to_owned(),
            partitions: (0..count)
                .map(|_| Partition {
                    buffer: Vec::with_capacity(BUFFER_BYTES),
                    written: 0,
                })
                .collect(),
            writes: Some(writes),
            recycled,
            writer: Some(writer),
        })
    }

    /// Appends one line of the professional `id`; returns its offset in their partition
    /// (what the build reads it back by) and its values joined by `|` (what its hash is
    /// taken of).
    pub fn push(
        &mut self,
        id: PackedId,
        kind: FileKind,
        line: u64,
        fields: &[&str],
    ) -> Result<(u64, &[u8]), SpillError> {
        let index = partition_of(id, self.partitions.len());
        if self.partitions[index].buffer.len() >= BUFFER_BYTES {
            self.flush(index)?;
        }
        let partition = &mut self.partitions[index];
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

    /// Hands a partition's buffer to the writing thread and takes an empty one.
    fn flush(&mut self, index: usize) -> Result<(), SpillError> {
        if self.partitions[index].buffer.is_empty() {
            return Ok(());
        }
        let empty = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BUFFER_BYTES));
        let partition = &mut self.partitions[index];
        let full = std::mem::replace(&mut partition.buffer, empty);
        partition.written += full.len() as u64;
        let sent = self.writes.as_ref().map(|writes| writes.send((index, full)));
        if let Some(Ok(())) = sent {
            return Ok(());
        }
        // The thread stopped (it only ends on its own by failing): its error says why, and
        // the buffer just handed over is lost, so this is an error whatever the thread says.
        let stopped = self.stop_writer().err();
        Err(stopped.unwrap_or_else(|| SpillError {
            dir: self.dir.clone(),
            source: std::io::Error::other("the work file's writer stopped early"),
        }))
    }

    /// Ends the writing thread once it has written what it was given; its files, or the
    /// error that stopped it.
    fn stop_writer(&mut self) -> Result<Vec<File>, SpillError> {
        self.writes = None;
        let error = |source| SpillError {
            dir: self.dir.clone(),
            source,
        };
        let writer = self
            .writer
            .take()
            .ok_or_else(|| error(std::io::Error::other("the work file's writer already stopped")))?;
        let files = writer
            .join()
            .map_err(|_| error(std::io::Error::other("the work file's writer stopped (a panic?)")))?
            .map_err(error)?;
        Ok(files)
    }

    /// Writes what is left; the lines can then be read back.
    pub fn finish(mut self) -> Result<Spill, SpillError> {
        for index in 0..self.partitions.len() {
            self.flush(index)?;
        }
        let files = self.stop_writer()?;
        Ok(Spill {
            partitions: files
                .into_iter()
                .zip(&self.partitions)
                .map(|(file, partition)| (file, partition.written))
                .collect(),
            dir: self.dir,
        })
    }
}

/// The partition of a professional's lines: a fixed hash of their id, so that the reader
/// and the build agree without a lookup.
fn partition_of(id: PackedId, count: usize) -> usize {
    let spread = foldhash::fast::FixedState::with_seed(0).hash_one(id);
    (spread % count as u64) as usize
}

/// The spilled lines, one file per partition.
pub struct Spill {
    dir: PathBuf,
    partitions: Vec<(File, u64)>,
}

impl Spill {
    /// The partition the lines of the professional `id` are in.
    pub fn partition_of(&self, id: PackedId) -> usize {
        partition_of(id, self.partitions.len())
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
            let id = PackedId::of(format!("81000000000{}", n % 4).as_bytes());
            let (offset, joined) = writer.push(id, kind, u64::from(n) + 2, &fields).expect("push");
            assert_eq!(joined, fields.join("|").as_bytes());
            written.push((id, offset, kind, u64::from(n) + 2, fields.join("|")));
        }
        let spill = writer.finish().expect("finish");
        let used: std::collections::BTreeSet<usize> = written.iter().map(|w| spill.partition_of(w.0)).collect();
        assert!(
            used.len() > 1,
            "four professionals spread over the three partitions: {used:?}"
        );
        // Read whole (many lines wanted) and line by line (one wanted): the same lines.
        for wanted in [usize::MAX, 1] {
            for (id, offset, kind, line, values) in written.iter().rev() {
                let partition = spill.open(spill.partition_of(*id), wanted).expect("open");
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
