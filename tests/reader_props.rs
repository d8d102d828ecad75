//! Property test of the extract reader: thousands of random and mutated files (long lines,
//! NUL, invalid UTF-8, wrong field counts, huge fields, CR, BOM, missing final `|`) never
//! make it panic, every data line is a row or a reject with its own line number (or the
//! read stops with the clear invalid UTF-8 error), and memory does not grow with line length.
// The counting allocator below needs `unsafe impl GlobalAlloc`; it only forwards to System.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Read;

use annuaire::extract::reader::{self, Reject, RowSink};
use annuaire::extract::{ExtractError, FileKind};
use proptest::prelude::*;

/// Counts the bytes allocated by the current thread (the reader runs on the caller's thread)
/// and their peak, so that tests running in parallel do not disturb each other.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `body` and returns its result and the peak of bytes it had allocated at once.
fn peak_of<T>(body: impl FnOnce() -> T) -> (T, isize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = body();
    (out, PEAK.with(Cell::get) - start)
}

/// Above the header (about 1.4 kB), far below the huge fields generated.
const CAP: usize = 2048;
/// The parser's 1 MiB buffer, one capped line and small change: nothing scales with a line.
const MEMORY_BOUND: isize = 3 << 20;

#[derive(Default)]
struct Counted {
    lines: Vec<u64>,
    rejects: Vec<Reject>,
}

impl RowSink for Counted {
    fn row(&mut self, line: u64, _fields: &[&str]) -> Result<(), ExtractError> {
        self.lines.push(line);
        Ok(())
    }
    fn reject(&mut self, reject: Reject) -> Result<(), ExtractError> {
        self.lines.push(reject.line);
        self.rejects.push(reject);
        Ok(())
    }
}

fn sample() -> (String, Vec<String>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data-samples/ps-libreacces/PS_LibreAcces_Personne_activite_202611250900.txt");
    let text = std::fs::read_to_string(path).expect("sample");
    let mut lines = text.lines().map(str::to_owned);
    let header = lines.next().expect("header");
    (header, lines.collect())
}

#[derive(Debug, Clone)]
enum Mutation {
    Keep,
    Long(usize, usize),
    Nul(usize),
    BadUtf8(usize),
    DropSeparator(usize),
    AddSeparator(usize),
    Cr,
    NoFinalSeparator,
    Random(Vec<u8>),
    Empty,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => Just(Mutation::Keep),
        2 => (any::<usize>(), 0usize..3000).prop_map(|(at, n)| Mutation::Long(at, n)),
        1 => (any::<usize>(), 10_000usize..80_000).prop_map(|(at, n)| Mutation::Long(at, n)),
        1 => any::<usize>().prop_map(Mutation::Nul),
        1 => any::<usize>().prop_map(Mutation::BadUtf8),
        1 => any::<usize>().prop_map(Mutation::DropSeparator),
        1 => any::<usize>().prop_map(Mutation::AddSeparator),
        1 => Just(Mutation::Cr),
        1 => Just(Mutation::NoFinalSeparator),
        1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Mutation::Random),
        1 => Just(Mutation::Empty),
    ]
}

fn apply(line: &str, mutation: &Mutation) -> Vec<u8> {
    let mut bytes = line.as_bytes().to_vec();
    let at = |i: usize, b: &Vec<u8>| if b.is_empty() { 0 } else { i % b.len() };
    match mutation {
        Mutation::Keep => {}
        Mutation::Long(i, n) => {
            let p = at(*i, &bytes);
            bytes.splice(p..p, std::iter::repeat_n(b'L', *n));
        }
        Mutation::Nul(i) => bytes.insert(at(*i, &bytes), 0),
        Mutation::BadUtf8(i) => bytes.insert(at(*i, &bytes), 0xE9),
        Mutation::DropSeparator(i) => {
            if let Some(p) = (at(*i, &bytes)..bytes.len()).find(|p| bytes[*p] == b'|') {
                bytes.remove(p);
            }
        }
        Mutation::AddSeparator(i) => bytes.insert(at(*i, &bytes), b'|'),
        Mutation::Cr => bytes.push(b'\r'),
        Mutation::NoFinalSeparator => {
            bytes.pop();
        }
        Mutation::Random(random) => bytes = random.clone(),
        Mutation::Empty => bytes.clear(),
    }
    // A `\n` inside would make two lines of one: the line structure is the test's to know.
    bytes.retain(|b| *b != b'\n');
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_line_is_accounted_for_and_memory_stays_bounded(
        picks in proptest::collection::vec((0usize..22, mutation()), 0..40),
        bom in any::<bool>(),
        final_newline in any::<bool>(),
    ) {
        let (header, lines) = sample();
        let mut file = Vec::new();
        if bom {
            file.extend_from_slice(b"\xEF\xBB\xBF");
        }
        file.extend_from_slice(header.as_bytes());
        let mut expected = Vec::new();
        for (n, (pick, mutation)) in picks.iter().enumerate() {
            let line = apply(&lines[pick % lines.len()], mutation);
            file.push(b'\n');
            // Empty lines are skipped by the parser: they are no data line.
            if !line.is_empty() {
                expected.push(n as u64 + 2);
            }
            file.extend_from_slice(&line);
        }
        if final_newline {
            file.push(b'\n');
        }
        let mut sink = Counted::default();
        let (result, peak) = peak_of(|| {
            reader::read_file(FileKind::PersonneActivite, "pa.txt", &file[..], CAP, &mut sink)
        });
        prop_assert!(peak < MEMORY_BOUND, "peak {peak} bytes");
        match result {
            Ok(stats) => {
                prop_assert_eq!(stats.rows + stats.rejected, stats.lines);
                prop_assert_eq!(stats.lines, expected.len() as u64);
                prop_assert_eq!(&sink.lines, &expected);
                for reject in &sink.rejects {
                    prop_assert!(!reject.content.contains('\0'), "{:?}", reject);
                    prop_assert!(!reject.reason.is_empty());
                }
            }
            Err(ExtractError::InvalidUtf8 { line, .. }) => {
                prop_assert!(expected.contains(&line), "invalid UTF-8 on line {line}");
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}

/// A file of the sample header and one data line of `len` bytes, made as it is read.
struct OneHugeLine {
    head: Vec<u8>,
    sent: usize,
    len: usize,
}

impl Read for OneHugeLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.head.is_empty() {
            let n = self.head.len().min(buf.len());
            buf[..n].copy_from_slice(&self.head[..n]);
            self.head.drain(..n);
            return Ok(n);
        }
        if self.sent > self.len {
            return Ok(0);
        }
        let n = (self.len - self.sent).min(buf.len());
        buf[..n].fill(b'H');
        self.sent += n;
        if n == 0 {
            buf[0] = b'\n';
            self.sent += 1;
            return Ok(1);
        }
        Ok(n)
    }
}

#[test]
fn a_256_mib_line_is_read_in_bounded_memory() {
    let (header, _) = sample();
    let input = OneHugeLine {
        head: format!("{header}\n").into_bytes(),
        sent: 0,
        len: 256 << 20,
    };
    let mut sink = Counted::default();
    let (result, peak) = peak_of(|| reader::read_file(FileKind::PersonneActivite, "pa.txt", input, 4096, &mut sink));
    let stats = result.expect("read");
    assert_eq!((stats.lines, stats.rejected), (1, 1));
    assert_eq!(sink.rejects[0].reason, "line longer than 4096 bytes");
    assert_eq!(sink.rejects[0].line, 2);
    assert!(peak < MEMORY_BOUND, "peak {peak} bytes");
}
