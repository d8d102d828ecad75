//! The lines read, kept in a private work file until the diff says whose records to build.
//!
//! A professional's content hash is the sum over their lines in all three files, so who
//! changed is known only once every file is read. Sending every line to Postgres to read
//! back the few that changed made a daily import cost more than loading the file raw; the
//! lines go to this local file instead (sequential writes, which the page cache absorbs),
//! and the build reads back only the lines of the professionals it builds, by offset.
//!
//! Each line is stored as: file code (1 byte), line number (8 bytes, little endian), length
//! of the values (4 bytes, little endian), the values joined by `|`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::extract::FileKind;

/// Bytes gathered before a write: large sequential writes, a bounded buffer.
const BUFFER_BYTES: usize = 1 << 20;
const HEADER_BYTES: usize = 1 + 8 + 4;

/// The work file could not be written or read (disk full, directory missing…).
#[derive(Debug, thiserror::Error)]
#[error("the import's work file in {dir}: {source}")]
pub struct SpillError {
    dir: PathBuf,
    source: std::io::Error,
}

/// Appends lines to an unnamed temporary file (gone when the import ends, however it ends).
pub struct SpillWriter {
    dir: PathBuf,
    file: File,
    buffer: Vec<u8>,
    written: u64,
}

impl SpillWriter {
    pub fn create(dir: &Path) -> Result<SpillWriter, SpillError> {
        let error = |source| SpillError {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(error)?;
        let file = tempfile::tempfile_in(dir).map_err(error)?;
        Ok(SpillWriter {
            dir: dir.to_owned(),
            file,
            buffer: Vec::with_capacity(BUFFER_BYTES),
            written: 0,
        })
    }

    /// Appends one line; returns its offset (what the build reads it back by) and its
    /// values joined by `|` (what its hash is taken of).
    pub fn push(&mut self, kind: FileKind, line: u64, fields: &[&str]) -> Result<(u64, &[u8]), SpillError> {
        if self.buffer.len() >= BUFFER_BYTES {
            self.flush()?;
        }
        let offset = self.written + self.buffer.len() as u64;
        self.buffer.push(kind.code() as u8);
        self.buffer.extend_from_slice(&line.to_le_bytes());
        let length_at = self.buffer.len();
        self.buffer.extend_from_slice(&[0; 4]);
        let start = self.buffer.len();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.buffer.push(b'|');
            }
            self.buffer.extend_from_slice(field.as_bytes());
        }
        let length = u32::try_from(self.buffer.len() - start).map_err(|_| SpillError {
            dir: self.dir.clone(),
            source: std::io::Error::other("a line of over 4 GB"),
        })?;
        self.buffer[length_at..start].copy_from_slice(&length.to_le_bytes());
        Ok((offset, &self.buffer[start..]))
    }

    fn flush(&mut self) -> Result<(), SpillError> {
        self.file.write_all(&self.buffer).map_err(|source| SpillError {
            dir: self.dir.clone(),
            source,
        })?;
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Writes what is left and maps the file for reading.
    pub fn finish(mut self) -> Result<Spill, SpillError> {
        self.flush()?;
        let error = |source| SpillError {
            dir: self.dir.clone(),
            source,
        };
        let map = if self.written == 0 {
            None
        } else {
            Some(map(&self.file).map_err(error)?)
        };
        Ok(Spill { map, _file: self.file })
    }
}

/// The spilled lines, mapped in memory: the build reads them in any order at the cost of
/// a memory access, where one read call per line would cost a system call each.
pub struct Spill {
    map: Option<memmap2::Mmap>,
    _file: File,
}

/// One line read back.
pub struct SpilledLine<'a> {
    pub kind: Option<FileKind>,
    pub line: u64,
    pub values: &'a [u8],
}

impl Spill {
    /// The line written at `offset` (an offset `push` returned: anything else is a bug,
    /// hence `None` rather than a panic).
    pub fn line(&self, offset: u64) -> Option<SpilledLine<'_>> {
        let bytes = self.map.as_deref()?.get(usize::try_from(offset).ok()?..)?;
        let header = bytes.get(..HEADER_BYTES)?;
        let line = u64::from_le_bytes(header[1..9].try_into().ok()?);
        let length = u32::from_le_bytes(header[9..13].try_into().ok()?) as usize;
        Some(SpilledLine {
            kind: FileKind::from_code(i16::from(header[0])),
            line,
            values: bytes.get(HEADER_BYTES..HEADER_BYTES + length)?,
        })
    }
}

/// Maps the work file read-only.
#[allow(unsafe_code)]
fn map(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: a mapping is undefined behaviour if the file changes under it. This one is
    // an unnamed temporary file (no path leads to it) that only this import holds, and it
    // is written completely before it is mapped and never after.
    unsafe { memmap2::Mmap::map(file) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_by_offset_in_any_order_across_buffer_flushes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = SpillWriter::create(dir.path()).expect("spill");
        let long = "x".repeat(BUFFER_BYTES / 3);
        let mut written = Vec::new();
        for n in 0..10u64 {
            let fields = [format!("81000000000{n}"), long.clone(), "é|z".to_owned()];
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            let kind = if n % 2 == 0 {
                FileKind::PersonneActivite
            } else {
                FileKind::DiplAutExerc
            };
            let (offset, joined) = writer.push(kind, n + 2, &fields).expect("push");
            assert_eq!(joined, fields.join("|").as_bytes());
            written.push((offset, kind, n + 2, fields.join("|")));
        }
        let spill = writer.finish().expect("finish");
        for (offset, kind, line, values) in written.iter().rev() {
            let read = spill.line(*offset).expect("line at its offset");
            assert_eq!((read.kind, read.line), (Some(*kind), *line));
            assert_eq!(read.values, values.as_bytes());
        }
        assert!(spill.line(u64::MAX).is_none());
    }

    #[test]
    fn an_empty_spill_has_no_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spill = SpillWriter::create(dir.path())
            .expect("spill")
            .finish()
            .expect("finish");
        assert!(spill.line(0).is_none());
    }
}
