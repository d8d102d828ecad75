//! The full export at national scale: `annuaire export` (plain and gzip) of the published
//! generation to a file, beside a baseline measured in the same run: `psql \copy` of the
//! same rows' stored bytes (the compressed claims) to /dev/null, what reading the
//! generation out of Postgres costs before any decompression or JSON. Prints
//! professionals a second (goal: at least 100 k, uncompressed), the ratio to the baseline,
//! and the exporter's peak memory (bounded whatever the generation).
//!
//!   cargo bench --bench export

mod common;

use common::published::Published;
use common::{annuaire, measure, psql};

fn main() {
    let published = Published::set_up("export");
    let out_dir = tempfile::tempdir_in(&published.dir).expect("work dir");
    let baseline = measure(&mut psql(
        &published.cluster,
        &published.database,
        "\\copy (SELECT p.national_id, p.removed_at, r.claims_zst FROM professional p JOIN professional_record r ON r.national_id = p.national_id AND r.run_id = p.record_run_id) TO '/dev/null'",
    ));
    let mut rows = Vec::new();
    for gzip in [false, true] {
        let file = out_dir
            .path()
            .join(if gzip { "export.ndjson.gz" } else { "export.ndjson" });
        let mut command = annuaire();
        command
            .env("DATABASE_URL", &published.url)
            .env("RUST_LOG", "warn")
            .arg("export")
            .arg("--out")
            .arg(&file);
        if gzip {
            command.arg("--gzip");
        }
        let run = measure(&mut command);
        let bytes = std::fs::metadata(&file).expect("exported").len();
        // Counted in a small buffer: a whole read would stay in this process's memory and
        // be counted in the next child's peak (a fork starts with its parent's pages).
        let lines = (!gzip).then(|| newlines(&file));
        rows.push((gzip, run, bytes, lines));
    }
    let count: u64 = String::from_utf8_lossy(
        &psql(
            &published.cluster,
            &published.database,
            "SELECT count(*) FROM professional",
        )
        .args(["-A", "-t"])
        .output()
        .expect("count")
        .stdout,
    )
    .trim()
    .parse()
    .expect("a count");

    println!();
    println!("export of {count} professionals (the published generation, removed ones included)");
    println!(
        "baseline `\\copy` of the stored rows to /dev/null: {:.2} s ({:.0} k rows/s)",
        baseline.wall.as_secs_f64(),
        count as f64 / baseline.wall.as_secs_f64() / 1000.0
    );
    for (gzip, run, bytes, lines) in rows {
        let seconds = run.wall.as_secs_f64();
        if let Some(lines) = lines {
            assert_eq!(lines, count, "one line per professional");
        }
        println!(
            "export{}: {seconds:.2} s, {:.0} k professionals/s (goal ≥ 100 k uncompressed), {:.2}× the baseline, {} MiB written, peak RSS {} MiB",
            if gzip { " --gzip" } else { "" },
            count as f64 / seconds / 1000.0,
            seconds / baseline.wall.as_secs_f64(),
            bytes >> 20,
            run.peak_rss_kib >> 10
        );
    }
}

fn newlines(file: &std::path::Path) -> u64 {
    use std::io::Read;
    let mut reader = std::fs::File::open(file).expect("exported");
    let mut buffer = vec![0u8; 1 << 20];
    let mut count = 0;
    loop {
        let read = reader.read(&mut buffer).expect("readable");
        if read == 0 {
            return count;
        }
        count += memchr::memchr_iter(b'\n', &buffer[..read]).count() as u64;
    }
}
