//! What the benchmarks share: the binary under test, the generated extracts (cached), the
//! embedded cluster's psql, and measuring a child's wall time and peak memory.
#![allow(unsafe_code)] // wait4 for the child's peak RSS: std has no rusage
#![allow(dead_code)] // each benchmark uses part of it

pub mod published;
pub mod serving;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use annuaire::store::embedded::EmbeddedCluster;

/// The national scale, unless ANNUAIRE_BENCH_PROFESSIONALS says otherwise.
pub fn professionals() -> u64 {
    std::env::var("ANNUAIRE_BENCH_PROFESSIONALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_700_000)
}

/// Work directory (reachable by the postgres user): ANNUAIRE_BENCH_DIR or target/bench-import.
pub fn work_dir() -> PathBuf {
    let dir = std::env::var_os("ANNUAIRE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-import"));
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

pub struct Measure {
    pub wall: Duration,
    pub peak_rss_kib: i64,
}

/// Runs a command and measures its wall time and peak resident memory (getrusage of the
/// child, via wait4, which also reaps it).
#[allow(clippy::zombie_processes)]
pub fn measure(command: &mut Command) -> Measure {
    let started = Instant::now();
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let mut status = 0;
    // SAFETY: rusage is plain old data that wait4 fills in; the pid is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert!(pid > 0 && libc::WIFEXITED(status), "{command:?} did not exit normally");
    assert_eq!(libc::WEXITSTATUS(status), 0, "{command:?} failed");
    Measure {
        wall,
        peak_rss_kib: usage.ru_maxrss,
    }
}

pub fn annuaire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_annuaire"))
}

/// Line order of a generated extract (`gen-sample --order`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Grouped,
    Shuffled,
}

impl Order {
    pub const ALL: [Order; 2] = [Order::Grouped, Order::Shuffled];

    pub fn as_str(self) -> &'static str {
        match self {
            Order::Grouped => "grouped",
            Order::Shuffled => "shuffled",
        }
    }
}

/// The grouped extract of `day` (cached under `dir`).
pub fn generate(dir: &Path, professionals: u64, day: u32) -> PathBuf {
    generate_ordered(dir, professionals, day, Order::Grouped)
}

/// The extract of `day` in `order`, generated once and cached under `dir`. The order and the
/// generator's data version are in the directory and marker names, so extracts of different
/// orders never mix and a cache written by an older (lighter) generator is not reused.
pub fn generate_ordered(dir: &Path, professionals: u64, day: u32, order: Order) -> PathBuf {
    let version = annuaire::samplegen::DATA_VERSION;
    let name = format!("day{day}-{professionals}-{}-v{version}", order.as_str());
    let marker = dir.join(format!("{name}.done"));
    let out = dir.join(&name);
    if !marker.exists() {
        std::fs::create_dir_all(&out).expect("output dir");
        let m = measure(
            annuaire()
                .args([
                    "gen-sample",
                    "--professionals",
                    &professionals.to_string(),
                    "--seed",
                    "1",
                    "--order",
                    order.as_str(),
                ])
                .arg("--day")
                .arg(day.to_string())
                .arg("--out")
                .arg(&out),
        );
        println!(
            "generated day {day} ({}) in {:.1} s",
            order.as_str(),
            m.wall.as_secs_f64()
        );
        std::fs::write(&marker, "").expect("marker");
    }
    std::fs::read_dir(&out)
        .expect("generated")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "zip"))
        .expect("a zip")
}

pub fn psql(cluster: &EmbeddedCluster, database: &str, command: &str) -> Command {
    let bundled = cluster.bin_dir().join("psql");
    let mut c = Command::new(if bundled.exists() {
        bundled
    } else {
        PathBuf::from("psql")
    });
    c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(cluster.socket_dir())
        .args([
            "-p",
            &cluster.port().to_string(),
            "-U",
            "postgres",
            "-d",
            database,
            "-c",
            command,
        ]);
    c
}
