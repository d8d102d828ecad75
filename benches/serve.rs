//! Claims API benchmark with a national-scale generation published, on loopback, each
//! figure beside its baseline (`/healthz`: same server, same client work, only the route
//! differs) and its goal (issue 10):
//! - start-up to ready, and resident memory of `annuaire serve` (goals: ≤ 10 s, ≤ 1 GiB);
//! - throughput of `GET /v1/claims/{random known id}` ÷ `/healthz` with `wrk` (32
//!   connections, 2,000 ids; goal ≥ 0.8);
//! - latency at a fixed 5,000 requests/s over 16 connections, claims beside `/healthz`
//!   (goal: p50 and p99 ≤ 1.2× `/healthz`'s);
//! - the same while the day+1 extract is imported (the nightly case; goal: claims p99 ≤ 1.5×
//!   its quiet p99), and while a first, full import runs into another database of the same
//!   cluster (reported, no goal).
//!
//! `cargo bench --bench serve` (needs `wrk`: `apt-get install wrk`; same variables as the
//! import benchmark). The imports nice their own Postgres backends on this local cluster
//! (`store/batch.rs`); `ANNUAIRE_BENCH_NICE_IMPORT_BACKENDS=<nice>` also nices, from
//! outside, any other backend of the imports' databases while they run (autovacuum, say).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::published::Published;
use common::serving::{
    self, BackendNicer, RATE, Server, backends, free_port, open_loop, percentile, rss_mib, server_histogram,
    server_histogram_of, server_p99,
};
use common::{annuaire, generate, psql};

mod common;

const FIXED_RATE_SECONDS: u64 = 10;
const WRK_SECONDS: &str = "10s";
/// The load: 2,000 random ids, 32 connections for throughput, 16 at a fixed rate.
const IDS: usize = 2_000;
const FIXED_RATE_CONNECTIONS: usize = 16;
/// Measurement slices while an import runs, alternating claims and `/healthz`.
const SLICE_SECONDS: u64 = 5;

/// `wrk` with a fixed setting and a request script (the same client work for every route);
/// returns requests per second.
fn wrk(url: &str, script: &std::path::Path) -> f64 {
    let output = Command::new("wrk")
        .args(["-t1", "-c32", "-d", WRK_SECONDS, "-s"])
        .arg(script)
        .arg(url)
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    let non_2xx = text.lines().find(|l| l.contains("Non-2xx"));
    assert!(non_2xx.is_none(), "wrk saw errors: {text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no throughput in wrk's output: {text}"))
}

/// Latencies of claims and of `/healthz`, each at the fixed rate.
#[derive(Default)]
struct Pair {
    claims: Vec<Duration>,
    healthz: Vec<Duration>,
}

impl Pair {
    fn sort(mut self) -> Pair {
        self.claims.sort();
        self.healthz.sort();
        self
    }
}

/// Alternates claims and `/healthz` slices at the fixed rate until `child` exits (or 300 s);
/// returns the latencies and the child's wall time.
fn while_running(
    child: &mut std::process::Child,
    load: &dyn Fn(&[String], u64) -> Vec<Duration>,
    claims: &[String],
    healthz: &[String],
) -> (Pair, f64) {
    let started = Instant::now();
    let mut pair = Pair::default();
    while child.try_wait().expect("child status").is_none() && started.elapsed() < Duration::from_secs(300) {
        pair.claims.extend(load(claims, SLICE_SECONDS));
        if child.try_wait().expect("child status").is_some() {
            break;
        }
        pair.healthz.extend(load(healthz, SLICE_SECONDS));
    }
    // An import still running after 300 s is stuck (a plan gone wrong has been seen): it is
    // stopped, and reported as failed beside the figures measured meanwhile.
    if child.try_wait().expect("child status").is_none() {
        let _ = child.kill();
    }
    (pair.sort(), started.elapsed().as_secs_f64())
}

fn line(label: &str, l: &[Duration]) -> String {
    if l.is_empty() {
        return format!("{label}: no sample");
    }
    format!(
        "{label}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} requests)",
        percentile(l, 0.5),
        percentile(l, 0.99),
        percentile(l, 1.0),
        l.len()
    )
}

fn ratio(a: &[Duration], b: &[Duration], p: f64) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    percentile(a, p) / percentile(b, p)
}
fn main() {
    // Dropped last: the database goes once the server and the import are done with it.
    let published = Published::set_up("serve");
    let (dir, url, runtime) = (&published.dir, &published.url, &published.runtime);
    let ids = &published.ids[..IDS.min(published.ids.len())];
    let day1 = generate(dir, published.professionals, 1);
    let key = published.key("bench", "claims");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The follower's own log says how long each snapshot load took.
    let log = dir.join("serve-bench.log");
    let started = Instant::now();
    let server = Server(
        annuaire()
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn,annuaire::server::follower=info")
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("serve starts"),
    );
    let client = serving::client();
    let startup = runtime.block_on(serving::ready(&client, &base, started));
    let rss_ready = rss_mib(&server.0);

    // Both runs pick a random id and send the key: only the route differs.
    let script = |name: &str, path: &str| {
        let file = dir.join(name);
        let mut lua = std::fs::File::create(&file).expect("lua");
        writeln!(lua, "local ids = {{").unwrap();
        for id in ids {
            writeln!(lua, "\"{id}\",").unwrap();
        }
        writeln!(lua, "}}\nwrk.headers[\"Authorization\"] = \"Bearer {key}\"").unwrap();
        writeln!(lua, "request = function()\n  return wrk.format(\"GET\", {path})\nend").unwrap();
        file
    };
    let healthz_rps = wrk(
        &base,
        &script("healthz.lua", "\"/healthz?id=\" .. ids[math.random(#ids)]"),
    );
    let claims_rps = wrk(
        &base,
        &script("claims.lua", "\"/v1/claims/\" .. ids[math.random(#ids)]"),
    );

    let claims_urls: Vec<String> = ids.iter().map(|id| format!("{base}/v1/claims/{id}")).collect();
    let healthz_urls: Vec<String> = ids.iter().map(|id| format!("{base}/healthz?id={id}")).collect();
    let load = |urls: &[String], seconds: u64| {
        runtime.block_on(open_loop(&client, urls, &key, seconds, Some(FIXED_RATE_CONNECTIONS)))
    };
    let histogram = || runtime.block_on(server_histogram(&client, &base));
    let healthz_histogram = || runtime.block_on(server_histogram_of(&client, &base, "/healthz"));
    let (before, healthz_before) = (histogram(), healthz_histogram());
    let quiet = Pair {
        claims: load(&claims_urls, FIXED_RATE_SECONDS),
        healthz: load(&healthz_urls, FIXED_RATE_SECONDS),
    };
    let (after_quiet, healthz_after_quiet) = (histogram(), healthz_histogram());
    let quiet_server = server_p99(&before, &after_quiet);
    let quiet_healthz_server = server_p99(&healthz_before, &healthz_after_quiet);
    let rss_loaded = rss_mib(&server.0);

    let nice_backends: Option<i32> = std::env::var("ANNUAIRE_BENCH_NICE_IMPORT_BACKENDS")
        .ok()
        .and_then(|v| v.parse().ok());
    let nicer = nice_backends.map(|nice| {
        let server_backends = backends(&published.cluster, &published.database);
        BackendNicer::start(&published.cluster, &published.database, server_backends, nice)
    });
    let mut import = annuaire()
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .arg("import")
        .arg(&day1)
        .stdout(Stdio::null())
        .spawn()
        .expect("day 1 import");
    let (busy, import_seconds) = while_running(&mut import, &load, &claims_urls, &healthz_urls);
    let busy_server = server_p99(&after_quiet, &histogram());
    let niced_day1 = nicer.map(|n| n.count());
    let day1_ok = import.wait().expect("import").success();
    let generation = runtime.block_on(async {
        let ready: serde_json::Value = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json");
        ready["generation"].clone()
    });
    let rss_after = rss_mib(&server.0);

    // A first import: the whole day-0 extract into an empty database of the same cluster,
    // while this server keeps answering from its own.
    let first_db = format!("{}_first", published.database);
    runtime
        .block_on(published.cluster.create_database_if_missing(&first_db))
        .expect("second database");
    let day0 = generate(dir, published.professionals, 0);
    let mut first = annuaire()
        .env("DATABASE_URL", published.cluster.url(&first_db))
        .env("RUST_LOG", "warn")
        .arg("import")
        .arg(&day0)
        .stdout(Stdio::null())
        .spawn()
        .expect("first import");
    let nicer = nice_backends.map(|nice| BackendNicer::start(&published.cluster, &first_db, Vec::new(), nice));
    let before_first = histogram();
    let (first_load, first_seconds) = while_running(&mut first, &load, &claims_urls, &healthz_urls);
    let first_server = server_p99(&before_first, &histogram());
    let first_ok = first.wait().expect("first import").success();
    let niced_first = nicer.map(|n| n.count());
    let _ = psql(
        &published.cluster,
        "postgres",
        &format!("DROP DATABASE IF EXISTS {first_db}"),
    )
    .status();
    drop(server);

    println!();
    println!(
        "start-up to ready          {:>8.2} s   (goal ≤ 10 s)",
        startup.as_secs_f64()
    );
    println!("RSS ready / after load / after switch  {rss_ready} / {rss_loaded} / {rss_after} MiB   (goal ≤ 1024 MiB)");
    println!(
        "wrk -t1 -c32 -d{WRK_SECONDS}, {} ids: /healthz {healthz_rps:.0} req/s, /v1/claims {claims_rps:.0} req/s, ratio {:.2}   (goal ≥ 0.8)",
        ids.len(),
        claims_rps / healthz_rps
    );
    let (p50, p99) = (
        ratio(&quiet.claims, &quiet.healthz, 0.5),
        ratio(&quiet.claims, &quiet.healthz, 0.99),
    );
    println!(
        "fixed {RATE} req/s, {FIXED_RATE_CONNECTIONS} connections, {FIXED_RATE_SECONDS} s each (client side, loopback):"
    );
    println!("  {}; server p99 {quiet_server}", line("/v1/claims", &quiet.claims));
    println!(
        "  {}; server p99 {quiet_healthz_server}",
        line("/healthz  ", &quiet.healthz)
    );
    println!("  claims ÷ /healthz: p50 {p50:.2}×, p99 {p99:.2}×   (goal ≤ 1.2× each)");
    println!(
        "fixed {RATE} req/s during the day+1 import ({import_seconds:.1} s, {}), {SLICE_SECONDS} s slices:",
        if day1_ok { "succeeded" } else { "FAILED or stopped" }
    );
    println!("  {}; server p99 {busy_server}", line("/v1/claims", &busy.claims));
    println!("  {}", line("/healthz  ", &busy.healthz));
    println!(
        "  claims p99 during ÷ without: {:.2}×   (goal ≤ 1.5×); /healthz {:.2}×; generation now {generation}",
        ratio(&busy.claims, &quiet.claims, 0.99),
        ratio(&busy.healthz, &quiet.healthz, 0.99)
    );
    println!(
        "fixed {RATE} req/s during a first, full import into another database ({first_seconds:.1} s, {}):",
        if first_ok { "succeeded" } else { "FAILED or stopped" }
    );
    println!(
        "  {}; server p99 {first_server}",
        line("/v1/claims", &first_load.claims)
    );
    println!("  {}", line("/healthz  ", &first_load.healthz));
    println!(
        "  claims p99 during ÷ without: {:.2}×   (reported); /healthz {:.2}×",
        ratio(&first_load.claims, &quiet.claims, 0.99),
        ratio(&first_load.healthz, &quiet.healthz, 0.99)
    );
    if let Some(nice) = nice_backends {
        println!(
            "imports' Postgres backends niced to {nice} from outside: {} during day+1, {} during the first import",
            niced_day1.unwrap_or(0),
            niced_first.unwrap_or(0)
        );
    }
    let loads = std::fs::read_to_string(&log).unwrap_or_default();
    for l in loads.lines().filter(|l| l.contains("claims snapshot loaded")) {
        println!("  server: {l}");
    }
}
