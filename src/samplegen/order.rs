//! Line order of the written files. `Grouped` streams each professional's lines together,
//! professionals in the same order in every file (how the importer's fast path likes it);
//! `Shuffled` writes the same lines in a deterministic pseudo-random order, because nobody
//! here has a real file and the importer must be right, and measured, on both.

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
    /// Every file's lines in a deterministic pseudo-random order: no file is grouped.
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
    Spooled {
        out: W,
        spool: BufWriter<File>,
        /// Start offset of each line in the spool, plus the end of the last one.
        starts: Vec<u64>,
        written: u64,
    },
}

impl<W: Write> LineSink<W> {
    /// `header` goes straight to `out` in both orders: it is not a line to shuffle.
    pub(crate) fn new(order: Order, mut out: W, header: &str, spool_dir: &Path) -> io::Result<Self> {
        out.write_all(header.as_bytes())?;
        Ok(match order {
            Order::Grouped => LineSink::Direct(out),
            Order::Shuffled => LineSink::Spooled {
                out,
                spool: BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(spool_dir)?),
                starts: vec![0],
                written: 0,
            },
        })
    }

    /// Whole lines, each ending in LF.
    pub(crate) fn write_lines(&mut self, text: &str) -> io::Result<()> {
        match self {
            LineSink::Direct(out) => out.write_all(text.as_bytes()),
            LineSink::Spooled {
                spool, starts, written, ..
            } => {
                spool.write_all(text.as_bytes())?;
                for end in memchr::memchr_iter(b'\n', text.as_bytes()) {
                    starts.push(*written + end as u64 + 1);
                }
                *written += text.len() as u64;
                Ok(())
            }
        }
    }

    /// Writes the spooled lines in the order drawn from `(seed, file)` and returns the
    /// output. Only the offsets are in memory; lines are read back one by one (from the
    /// page cache, as the spool was just written).
    pub(crate) fn finish(self, seed: u64, file: u64) -> io::Result<W> {
        let (mut out, spool, starts) = match self {
            LineSink::Direct(out) => return Ok(out),
            LineSink::Spooled { out, spool, starts, .. } => (out, spool, starts),
        };
        let spool = spool.into_inner().map_err(io::IntoInnerError::into_error)?;
        let lines = starts.len() - 1;
        let mut rng = Rng::new(key(&[seed, tag::ORDER, file]));
        let mut line = Vec::with_capacity(4 << 10);
        for k in permutation(lines, &mut rng) {
            let (start, end) = (starts[k as usize], starts[k as usize + 1]);
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
        let text: String = (0..500).map(|i| format!("line {i}|\n")).collect();
        sink.write_lines(&text[..1000]).unwrap();
        sink.write_lines(&text[1000..]).unwrap();
        let out = String::from_utf8(sink.finish(1, 0).unwrap()).unwrap();
        let body = out.strip_prefix("H|\n").expect("header first");
        assert_ne!(body, text);
        let mut a: Vec<&str> = body.lines().collect();
        let mut b: Vec<&str> = text.lines().collect();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }
}
