//! Line order of the written files. `Grouped` streams each professional's lines together,
//! professionals in the same order in every file (how the importer's fast path likes it);
//! `Shuffled` writes the same lines in a deterministic pseudo-random order, because nobody
//! here has a real file and the importer must be right, and measured, on both. The shuffle
//! keeps each professional's own lines in their relative order: the importer reads a
//! professional's main activity from file order, so both orders mean the same directory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::rng::{Rng, key, tag};

/// Order of the lines inside each file (the header always comes first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// A professional's lines are consecutive, professionals in the same order in all files.
    #[default]
    Grouped,
    /// Every file's lines interleaved in a deterministic pseudo-random order (no file is
    /// grouped), each professional's lines still in their relative order.
    Shuffled,
}

impl Order {
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Grouped => "grouped",
            Order::Shuffled => "shuffled",
        }
    }
}

impl std::str::FromStr for Order {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "grouped" => Ok(Order::Grouped),
            "shuffled" => Ok(Order::Shuffled),
            other => Err(format!("unknown order {other:?}: expected grouped or shuffled")),
        }
    }
}

/// Where the lines of one file go: straight to the zip entry when grouped, or to an unnamed
/// temporary file (beside the output, not in memory: a national file is ~900 MB) with the
/// start offset of every line, permuted into the entry at the end.
pub(crate) enum LineSink<W: Write> {
    Direct(W),
    Spooled(Box<Spool<W>>),
}

pub(crate) struct Spool<W> {
    out: W,
    file: BufWriter<File>,
    /// Start offset of each line in the spool, plus the end of the last one.
    starts: Vec<u64>,
    /// First line of each professional (lines of one professional arrive consecutively).
    firsts: Vec<u32>,
    /// `Identification nationale PP` of the last line, to see where a professional ends.
    last_id: Vec<u8>,
}

impl<W: Write> LineSink<W> {
    /// `header` goes straight to `out` in both orders: it is not a line to shuffle.
    pub(crate) fn new(order: Order, mut out: W, header: &str, spool_dir: &Path) -> io::Result<Self> {
        out.write_all(header.as_bytes())?;
        Ok(match order {
            Order::Grouped => LineSink::Direct(out),
            Order::Shuffled => LineSink::Spooled(Box::new(Spool {
                out,
                file: BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(spool_dir)?),
                starts: vec![0],
                firsts: Vec::new(),
                last_id: Vec::new(),
            })),
        })
    }

    /// Whole lines, each ending in LF.
    pub(crate) fn write_lines(&mut self, text: &str) -> io::Result<()> {
        match self {
            LineSink::Direct(out) => out.write_all(text.as_bytes()),
            LineSink::Spooled(spool) => spool.write_lines(text.as_bytes()),
        }
    }

    /// Writes the spooled lines in the order drawn from `(seed, file)` and returns the
    /// output.
    pub(crate) fn finish(self, seed: u64, file: u64) -> io::Result<W> {
        match self {
            LineSink::Direct(out) => Ok(out),
            LineSink::Spooled(spool) => spool.finish(seed, file),
        }
    }
}

impl<W: Write> Spool<W> {
    fn write_lines(&mut self, text: &[u8]) -> io::Result<()> {
        self.file.write_all(text)?;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', text) {
            // Every file has `Identification nationale PP` as its third field.
            let id = text[start..end].split(|&b| b == b'|').nth(2).unwrap_or_default();
            if self.firsts.is_empty() || id != self.last_id.as_slice() {
                self.firsts.push((self.starts.len() - 1) as u32);
                self.last_id.clear();
                self.last_id.extend_from_slice(id);
            }
            let base = self.starts.last().copied().unwrap_or_default();
            self.starts.push(base + (end - start) as u64 + 1);
            start = end + 1;
        }
        Ok(())
    }

    /// A random permutation gives each position a professional (the owner of the line drawn
    /// there); each professional's positions then take its lines in their order. Only the
    /// offsets are in memory; lines are read back one by one (from the page cache, as the
    /// spool was just written).
    fn finish(self, seed: u64, file: u64) -> io::Result<W> {
        let Spool {
            mut out,
            file: spool,
            starts,
            firsts,
            ..
        } = self;
        let spool = spool.into_inner().map_err(io::IntoInnerError::into_error)?;
        let lines = starts.len() - 1;
        let mut taken = vec![0u32; firsts.len()];
        let mut rng = Rng::new(key(&[seed, tag::ORDER, file]));
        let mut line = Vec::with_capacity(4 << 10);
        for drawn in permutation(lines, &mut rng) {
            let owner = firsts.partition_point(|&f| f <= drawn) - 1;
            let k = (firsts[owner] + taken[owner]) as usize;
            taken[owner] += 1;
            let (start, end) = (starts[k], starts[k + 1]);
            line.resize((end - start) as usize, 0);
            spool.read_exact_at(&mut line, start)?;
            out.write_all(&line)?;
        }
        Ok(out)
    }
}

/// A uniform permutation of `0..n` (Fisher–Yates), as u32 to halve its memory: a file
/// of over 4 G lines is far beyond any extract.
fn permutation(n: usize, rng: &mut Rng) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        p.swap(i, j);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_moves_lines_and_keeps_them_all() {
        let p = permutation(10_000, &mut Rng::new(3));
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10_000).collect::<Vec<u32>>());
        let fixed = p.iter().enumerate().filter(|&(i, &v)| i as u32 == v).count();
        // A uniform permutation has one fixed point on average; ordered input would have all.
        assert!(fixed < 20, "{fixed} lines stayed in place");
        assert_eq!(p, permutation(10_000, &mut Rng::new(3)), "deterministic");
    }

    #[test]
    fn spooled_sink_writes_the_same_lines_after_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = LineSink::new(Order::Shuffled, Vec::new(), "H|\n", dir.path()).unwrap();
        // Professional i / 3 owns lines i: three lines each, numbered in their order.
        let line = |i: usize| format!("8|x|{}|{i}|\n", i / 3);
        let head: String = (0..300).map(line).collect();
        let tail: String = (300..600).map(line).collect();
        sink.write_lines(&head).unwrap();
        sink.write_lines(&tail).unwrap();
        let out = String::from_utf8(sink.finish(1, 0).unwrap()).unwrap();
        let body = out.strip_prefix("H|\n").expect("header first");
        assert_ne!(body, head + &tail, "not shuffled");
        let mut seen: Vec<usize> = Vec::new();
        let mut last_of: std::collections::HashMap<usize, usize> = Default::default();
        for l in body.lines() {
            let f: Vec<usize> = l.split('|').skip(2).take(2).map(|v| v.parse().unwrap()).collect();
            let previous = last_of.insert(f[0], f[1]);
            assert!(
                previous.is_none_or(|p| p < f[1]),
                "{l}: a professional's lines out of order"
            );
            seen.push(f[1]);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..600).collect::<Vec<_>>());
    }
}
