//! Import benchmark at national scale, against a baseline measured in the same run:
//! (a) `psql \copy` of the Personne_activite file into an unlogged table of 57 text columns,
//! (b) `annuaire import` of the day-0 zip into an empty store,
//! (c) `annuaire import` of the day-1 zip on top of it.
//! Prints wall times, b/a, c/a and the importer's peak RSS. Goals: b/a ≤ 3, c ≤ b, RSS ≤ 512 MiB.
//!
//! `cargo bench --bench import` (ANNUAIRE_BENCH_PROFESSIONALS, default 1700000;
//! ANNUAIRE_BENCH_DIR, default target/bench-import: must be reachable by the postgres user).

use std::path::{Path, PathBuf};

use annuaire::store::embedded::EmbeddedCluster;
use common::{Measure, annuaire, generate, measure, psql};

mod common;

fn unzip_personne_activite(zip_path: &Path, dir: &Path, professionals: u64) -> PathBuf {
    let target = dir.join(format!("personne_activite-{professionals}.txt"));
    if !target.exists() {
        let mut archive = zip::ZipArchive::new(std::fs::File::open(zip_path).expect("zip")).expect("readable zip");
        let index = (0..archive.len())
            .find(|i| {
                archive
                    .by_index(*i)
                    .expect("entry")
                    .name()
                    .is_ok_and(|n| n.starts_with("PS_LibreAcces_Personne_activite"))
            })
            .expect("Personne_activite entry");
        let mut entry = archive.by_index(index).expect("entry");
        let mut file = std::fs::File::create(&target).expect("txt");
        std::io::copy(&mut entry, &mut file).expect("unzip");
    }
    target
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let professionals = common::professionals();
    let dir = common::work_dir();
    println!(
        "import benchmark: {professionals} professionals, work dir {}",
        dir.display()
    );

    let day0 = generate(&dir, professionals, 0);
    let day1 = generate(&dir, professionals, 1);
    let txt = unzip_personne_activite(&day0, &dir, professionals);
    let txt_mb = std::fs::metadata(&txt).expect("txt").len() as f64 / 1e6;

    let cluster = EmbeddedCluster::ensure_running(&dir.join("pg")).expect("embedded cluster");
    let database = format!("bench_{}", std::process::id());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(cluster.create_database_if_missing(&database))
        .expect("database");
    let url = cluster.url(&database);

    // (a) the baseline: the server's own bulk load of the same file, nothing else.
    let columns: Vec<String> = (1..=57).map(|i| format!("c{i} text")).collect();
    let create = format!("CREATE UNLOGGED TABLE baseline ({})", columns.join(", "));
    measure(&mut psql(&cluster, &database, &create));
    // QUOTE is a byte that never occurs: the files have no quoting.
    let copy = format!(
        "\\copy baseline FROM '{}' WITH (FORMAT csv, DELIMITER '|', QUOTE E'\\x01', HEADER true)",
        txt.display()
    );
    let a = measure(&mut psql(&cluster, &database, &copy));
    measure(&mut psql(&cluster, &database, "DROP TABLE baseline"));

    // (b) and (c): the importer, as operators run it.
    let b = measure(
        annuaire()
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .arg("import")
            .arg(&day0),
    );
    let c = measure(
        annuaire()
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .arg("import")
            .arg(&day1),
    );

    let runs = annuaire()
        .env("DATABASE_URL", &url)
        .args(["imports", "list", "--json"])
        .output()
        .expect("imports list");
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("json");

    let secs = |m: &Measure| m.wall.as_secs_f64();
    println!();
    println!("Personne_activite: {txt_mb:.0} MB");
    println!("(a) psql \\copy baseline        {:>8.1} s", secs(&a));
    println!(
        "(b) annuaire import day 0      {:>8.1} s   b/a = {:.2}   peak RSS {:>5} MiB",
        secs(&b),
        secs(&b) / secs(&a),
        b.peak_rss_kib / 1024
    );
    println!(
        "(c) annuaire import day 1      {:>8.1} s   c/a = {:.2}   peak RSS {:>5} MiB",
        secs(&c),
        secs(&c) / secs(&a),
        c.peak_rss_kib / 1024
    );
    println!(
        "goals: b/a <= 3 ({}), c <= b ({}), peak RSS <= 512 MiB ({})",
        if secs(&b) / secs(&a) <= 3.0 { "met" } else { "MISSED" },
        if secs(&c) <= secs(&b) { "met" } else { "MISSED" },
        if b.peak_rss_kib.max(c.peak_rss_kib) <= 512 * 1024 {
            "met"
        } else {
            "MISSED"
        }
    );
    for run in runs.as_array().into_iter().flatten().rev() {
        println!(
            "run {} {}: +{} ~{} -{} professionals {}; phases (ms) {}",
            run["id"], run["status"], run["added"], run["changed"], run["removed"], run["professionals"], run["phases"]
        );
    }
    let drop = format!("DROP DATABASE IF EXISTS {database}");
    let _ = psql(&cluster, "postgres", &drop).status();
}
