//! A line-length cap in front of the CSV parser. csv-async buffers a whole record, so one
//! 4 GiB line would take 4 GiB: this `Read` adapter passes at most `cap` bytes of each line,
//! drops the rest up to its `\n` (which it keeps, so the parser's line numbers stay those of
//! the file) and remembers which lines it cut, for the reader to reject them. It also
//! remembers the empty lines: the parser skips them but dates the next record from the
//! first of them, so the reader needs them to give each line its true number.

use std::collections::BTreeSet;
use std::io::{self, Read};

/// Passes the input through with every line cut to at most `cap` bytes (its `\n` aside).
#[derive(Debug)]
pub struct BoundedLines<R> {
    inner: R,
    cap: usize,
    /// Bytes of the current line passed so far.
    in_line: usize,
    /// The current line went over the cap: its bytes are dropped until its `\n`.
    dropping: bool,
    /// Number of the current line, 1-based, as the CSV parser counts them (by `\n`).
    line: u64,
    /// Lines cut and not yet claimed by the reader. The parser reads ahead by at most its
    /// buffer, so this holds only the cut lines of that window.
    cut: BTreeSet<u64>,
    /// Empty lines not yet passed by the reader, in the same window.
    empty: BTreeSet<u64>,
}

impl<R: Read> BoundedLines<R> {
    /// `cap` is at least 1: a line of no byte is an empty line, never a cut one.
    pub fn new(inner: R, cap: usize) -> BoundedLines<R> {
        BoundedLines {
            inner,
            cap: cap.max(1),
            in_line: 0,
            dropping: false,
            line: 1,
            cut: BTreeSet::new(),
            empty: BTreeSet::new(),
        }
    }

    /// The true number of the record the parser dated `reported` (the first of the empty
    /// lines it skipped before it, if any), and whether that line was cut. Claiming a line
    /// forgets it and everything before it, so the sets stay small.
    pub fn claim(&mut self, reported: u64) -> (u64, bool) {
        let mut line = reported;
        while self.empty.remove(&line) {
            line += 1;
        }
        while self.empty.first().is_some_and(|first| *first < line) {
            self.empty.pop_first();
        }
        while self.cut.first().is_some_and(|first| *first < line) {
            self.cut.pop_first();
        }
        (line, self.cut.remove(&line))
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Keeps what fits of `buf[..n]`, compacted to its front; returns the bytes kept.
    fn filter(&mut self, buf: &mut [u8], n: usize) -> usize {
        let (mut read, mut write) = (0, 0);
        while read < n {
            let newline = memchr::memchr(b'\n', &buf[read..n]).map(|i| read + i);
            let end = newline.unwrap_or(n);
            if !self.dropping {
                let keep = (end - read).min(self.cap - self.in_line);
                if read != write {
                    buf.copy_within(read..read + keep, write);
                }
                write += keep;
                self.in_line += keep;
                if end - read > keep {
                    self.dropping = true;
                    self.cut.insert(self.line);
                }
            }
            match newline {
                Some(at) => {
                    if self.in_line == 0 && !self.dropping {
                        self.empty.insert(self.line);
                    }
                    buf[write] = b'\n';
                    write += 1;
                    read = at + 1;
                    self.line += 1;
                    self.in_line = 0;
                    self.dropping = false;
                }
                None => read = n,
            }
        }
        write
    }
}

impl<R: Read> Read for BoundedLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let kept = self.filter(buf, n);
            // Everything read was dropped: read on, since 0 would mean the end of input.
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads through the adapter with a tiny buffer, so lines straddle reads.
    fn through(input: &[u8], cap: usize, chunk: usize) -> (Vec<u8>, Vec<u64>) {
        let mut bounded = BoundedLines::new(input, cap);
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = bounded.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let cut = bounded.cut.iter().copied().collect();
        (out, cut)
    }

    #[test]
    fn cuts_long_lines_keeps_newlines_and_names_the_cut_lines() {
        let input = b"abc\nabcdefgh\n\nxy\nabcdefghij";
        for chunk in [1, 2, 3, 5, 64] {
            let (out, cut) = through(input, 4, chunk);
            assert_eq!(out, b"abc\nabcd\n\nxy\nabcd", "chunk {chunk}");
            assert_eq!(cut, vec![2, 5], "chunk {chunk}");
        }
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_not_cut() {
        let (out, cut) = through(b"abcd\nabcd", 4, 3);
        assert_eq!(out, b"abcd\nabcd");
        assert!(cut.is_empty());
    }

    #[test]
    fn claim_gives_true_line_numbers_after_empty_lines() {
        let mut bounded = BoundedLines::new(&b"h\n\n\nabcdef\nab\n\nabcdef\n"[..], 3);
        let mut sink = Vec::new();
        bounded.read_to_end(&mut sink).unwrap();
        // The parser dates a record from the end of the previous one.
        assert_eq!(bounded.claim(1), (1, false));
        assert_eq!(bounded.claim(2), (4, true));
        assert_eq!(bounded.claim(5), (5, false));
        assert_eq!(bounded.claim(6), (7, true));
        assert_eq!(bounded.claim(7), (7, false), "claimed once");
    }
}
