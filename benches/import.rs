//! Import benchmark at national scale, against a baseline measured in the same run:
//! (a) `psql \copy` of the Personne_activite file into an unlogged table of 57 text columns,
//! (b) `annuaire import` of the day-0 zip into an empty store,
//! (c) `annuaire import` of the day-1 zip on top of it,
//! each with the extract's lines grouped by professional and shuffled (`gen-sample --order`).
//! Prints wall times, b/a, c/a and the importer's peak RSS. Goals: b/a ≤ 3, c/a ≤ 1, RSS ≤ 512 MiB.
//!
//! `cargo bench --bench import` (ANNUAIRE_BENCH_PROFESSIONALS, default 1700000;
//! ANNUAIRE_BENCH_DIR, default target/bench-import: must be reachable by the postgres user).

use std::path::{Path, PathBuf};

use annuaire::store::embedded::EmbeddedCluster;
use common::{Measure, Order, annuaire, generate_ordered, measure, psql};

mod common;

fn unzip_personne_activite(zip_path: &Path, dir: &Path) -> PathBuf {
    // Named after the generated extract's folder, which names its scale, order and data
    // version: a cache of other data is never taken for this one.
    let extract = zip_path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .expect("the extract's folder");
    let target = dir.join(format!("personne_activite-{extract}.txt"));
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

/// The two imports of one order, into a database of their own.
struct Imports {
    order: Order,
    day0: Measure,
    day1: Measure,
    runs: serde_json::Value,
}

fn import_both_days(
    cluster: &EmbeddedCluster,
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    professionals: u64,
    order: Order,
) -> Imports {
    let day0 = generate_ordered(dir, professionals, 0, order);
    let day1 = generate_ordered(dir, professionals, 1, order);
    let database = format!("bench_{}_{}", order.as_str(), std::process::id());
    runtime
        .block_on(cluster.create_database_if_missing(&database))
        .expect("database");
    let url = cluster.url(&database);
    let import = |source: &Path| {
        measure(
            annuaire()
                .env("DATABASE_URL", &url)
                .env("RUST_LOG", "warn")
                .arg("import")
                .arg(source),
        )
    };
    let (day0, day1) = (import(&day0), import(&day1));
    let runs = annuaire()
        .env("DATABASE_URL", &url)
        .args(["imports", "list", "--json"])
        .output()
        .expect("imports list");
    let runs = serde_json::from_slice(&runs.stdout).expect("json");
    let _ = psql(cluster, "postgres", &format!("DROP DATABASE IF EXISTS {database}")).status();
    Imports {
        order,
        day0,
        day1,
        runs,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let professionals = common::professionals();
    let dir = common::work_dir();
    println!(
        "import benchmark: {professionals} professionals, work dir {}",
        dir.display()
    );

    let day0 = generate_ordered(&dir, professionals, 0, Order::Grouped);
    let txt = unzip_personne_activite(&day0, &dir);
    let txt_mb = std::fs::metadata(&txt).expect("txt").len() as f64 / 1e6;

    let cluster = EmbeddedCluster::ensure_running(&dir.join("pg")).expect("embedded cluster");
    let database = format!("bench_{}", std::process::id());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(cluster.create_database_if_missing(&database))
        .expect("database");

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
    let _ = psql(&cluster, "postgres", &format!("DROP DATABASE IF EXISTS {database}")).status();

    // (b) and (c): the importer, as operators run it, on the extract in both orders.
    let imports: Vec<Imports> = Order::ALL
        .into_iter()
        .map(|order| import_both_days(&cluster, &runtime, &dir, professionals, order))
        .collect();

    let secs = |m: &Measure| m.wall.as_secs_f64();
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!();
    println!("Personne_activite: {txt_mb:.0} MB");
    println!("(a) psql \\copy baseline                 {:>8.1} s", secs(&a));
    for i in &imports {
        let (b, c) = (&i.day0, &i.day1);
        let label = i.order.as_str();
        println!(
            "(b) annuaire import day 0, {label:<8}   {:>8.1} s   b/a = {:.2} (goal <= 3: {})   peak RSS {:>5} MiB",
            secs(b),
            secs(b) / secs(&a),
            verdict(secs(b) / secs(&a) <= 3.0),
            b.peak_rss_kib / 1024
        );
        println!(
            "(c) annuaire import day 1, {label:<8}   {:>8.1} s   c/a = {:.2} (goal <= 1: {})   peak RSS {:>5} MiB",
            secs(c),
            secs(c) / secs(&a),
            verdict(secs(c) / secs(&a) <= 1.0),
            c.peak_rss_kib / 1024
        );
    }
    let peak = imports
        .iter()
        .map(|i| i.day0.peak_rss_kib.max(i.day1.peak_rss_kib))
        .max()
        .unwrap_or(0);
    println!("peak RSS <= 512 MiB: {}", verdict(peak <= 512 * 1024));
    for i in &imports {
        for run in i.runs.as_array().into_iter().flatten().rev() {
            println!(
                "{} run {} {}: +{} ~{} -{} professionals {}; phases (ms) {}",
                i.order.as_str(),
                run["id"],
                run["status"],
                run["added"],
                run["changed"],
                run["removed"],
                run["professionals"],
                run["phases"]
            );
        }
    }
}
