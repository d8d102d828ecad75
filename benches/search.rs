//! Search benchmark with a national-scale generation published:
//! - full index build (goal ≤ 30 s, and the build's peak memory), incremental update for
//!   the day+1 import (goal ≤ 2 s), reported beside the import's own time;
//! - p50 and p99 of `GET /v1/professionals` at 4 clients for the typeahead mix
//!   (prefixes on every word, typos, filters, a national id), after one unmeasured pass of
//!   the mix, without facets (what the page asks while one types) and with them (goal p99
//!   ≤ 10 ms);
//! - the same mix against a Postgres `pg_trgm` index of the same names, same run, same
//!   clients and rate: the ratio of the p99s (goal ≥ 10×).
//!
//! Each client sends at a fixed rate and a latency counts from the moment its request was
//! due, not sent (an open-loop load, as wrk2 does): a server that falls behind shows its
//! queue in the figures instead of slowing the clients down.
//!
//! `cargo bench --bench search` (same variables as the import benchmark).

use std::future::Future;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use annuaire::store::embedded::EmbeddedCluster;
use common::{annuaire, generate, measure};

mod common;

/// The build runs in this process: with the allocator of `annuaire serve`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLIENTS: usize = 4;
const SECONDS: u64 = 10;
/// Requests per second per client: a person typing sends a few; four such clients at 25
/// each is a busy admin team, and light enough that a fast server queues nothing.
const RATE_PER_CLIENT: u64 = 25;
/// How long past its `SECONDS` a side that falls behind may run before it is cut off.
const GRACE_SECONDS: u64 = 10;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// The mix, as API query strings (without `facets`); ids are cycled through.
const MIX: [&str; 12] = [
    "q=dup",
    "q=dupont%20jea",
    "q=dupnot",
    "q=cardio&departement=69",
    "",
    "q=lefe%20hel",
    "q=martin",
    "q=marie%20claire",
    "q=hel",
    "q=paris",
    "q=lefevre%20helene",
    "q=pharmacie&departement=75",
];

fn mix(ids: &[String], i: usize) -> String {
    match MIX[i % MIX.len()] {
        "" => format!("q={}", ids[i % ids.len()]),
        query => query.to_owned(),
    }
}

/// The same mix in SQL over a trigram index of the same names: each word a prefix of a
/// word of the name (`ILIKE`, which the trigram index serves), a typo by similarity.
async fn trigram(pool: &sqlx::PgPool, ids: &[String], i: usize) {
    const PREFIXES: &str = "SELECT national_id FROM bench_names WHERE ' ' || name ILIKE $1 LIMIT 20";
    let prefixes = |words: &[&str]| -> String { words.iter().map(|w| format!("% {w}%")).collect::<Vec<_>>().join("") };
    let by_prefixes = |words: &[&str]| sqlx::query(PREFIXES).bind(prefixes(words));
    let rows = match i % MIX.len() {
        0 => by_prefixes(&["dup"]).fetch_all(pool).await,
        1 => by_prefixes(&["dupont", "jea"]).fetch_all(pool).await,
        2 => sqlx::query("SELECT national_id FROM bench_names WHERE name % 'dupnot' ORDER BY similarity(name, 'dupnot') DESC LIMIT 20").fetch_all(pool).await,
        3 => sqlx::query("SELECT national_id FROM bench_names WHERE name ILIKE '%cardio%' AND departement = '69' LIMIT 20").fetch_all(pool).await,
        4 => sqlx::query("SELECT national_id FROM bench_names WHERE national_id = $1").bind(&ids[i % ids.len()]).fetch_all(pool).await,
        5 => by_prefixes(&["lefe", "hel"]).fetch_all(pool).await,
        6 => by_prefixes(&["martin"]).fetch_all(pool).await,
        7 => by_prefixes(&["marie", "claire"]).fetch_all(pool).await,
        8 => by_prefixes(&["hel"]).fetch_all(pool).await,
        9 => by_prefixes(&["paris"]).fetch_all(pool).await,
        10 => by_prefixes(&["lefevre", "helene"]).fetch_all(pool).await,
        _ => sqlx::query("SELECT national_id FROM bench_names WHERE name ILIKE '%pharmacie%' AND departement = '75' LIMIT 20").fetch_all(pool).await,
    };
    rows.expect("trigram query");
}

/// `CLIENTS` clients, each calling `request(i)` at `RATE_PER_CLIENT` for `SECONDS`; the
/// latencies, sorted, each from the moment its request was due.
async fn fixed_rate<F, R>(request: F) -> Vec<Duration>
where
    F: Fn(usize) -> R + Clone + Send + 'static,
    R: Future<Output = ()> + Send,
{
    let interval = Duration::from_micros(1_000_000 / RATE_PER_CLIENT);
    let count = (SECONDS * RATE_PER_CLIENT) as usize;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            // Clients start spread over one interval, not in lockstep.
            let start = Instant::now() + interval * c as u32 / CLIENTS as u32;
            // A side that falls far behind is cut off: what it did not send by then counts
            // as late as that moment (a lower bound of what it would have waited).
            let cutoff = start + Duration::from_secs(SECONDS + GRACE_SECONDS);
            let mut latencies = Vec::with_capacity(count);
            for n in 0..count {
                let due = start + interval * n as u32;
                if Instant::now() >= cutoff {
                    latencies.push(cutoff.saturating_duration_since(due));
                    continue;
                }
                tokio::time::sleep_until(due.into()).await;
                request(c + n * CLIENTS).await;
                latencies.push(due.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client"));
    }
    all.sort();
    all
}

fn report(what: &str, latencies: &[Duration]) -> String {
    format!(
        "{what}: {CLIENTS} clients × {RATE_PER_CLIENT}/s, {SECONDS} s, {} queries: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        percentile(latencies, 1.0)
    )
}

/// This process's peak resident memory so far, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// How many segments the index the server opens holds (a search visits each one): its
/// meta.json lists them.
fn segment_count(index: &std::path::Path) -> usize {
    let meta = std::fs::read_to_string(index.join("meta.json")).expect("meta.json");
    let meta: serde_json::Value = serde_json::from_str(&meta).expect("meta.json is JSON");
    meta["segments"].as_array().map_or(0, Vec::len)
}

fn main() {
    annuaire::allocator::release_freed_memory_at_once();
    let professionals = common::professionals();
    let dir = common::work_dir();
    println!(
        "search benchmark: {professionals} professionals, work dir {}",
        dir.display()
    );
    let day0 = generate(&dir, professionals, 0);
    let day1 = generate(&dir, professionals, 1);
    let cluster = EmbeddedCluster::ensure_running(&dir.join("pg")).expect("embedded cluster");
    let database = format!("bench_search_{}", std::process::id());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(cluster.create_database_if_missing(&database))
        .expect("database");
    let url = cluster.url(&database);
    let home = dir.join(format!("search-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).expect("home");
    let import0 = measure(
        annuaire()
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .arg("import")
            .arg(&day0),
    );
    let pool = runtime.block_on(sqlx::PgPool::connect(&url)).expect("pool");

    let started = Instant::now();
    let index = runtime
        .block_on(annuaire::search::rebuild(&pool, &home.join("search")))
        .expect("full build");
    let full_build = started.elapsed();
    // The bench process holds little else: its peak is the build's (the writer's heap, the
    // decoding, the merge), what a server adds beside its claims snapshot.
    let build_rss = peak_rss_mib();
    let import1 = measure(
        annuaire()
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .arg("import")
            .arg(&day1),
    );
    let started = Instant::now();
    let index = runtime
        .block_on(annuaire::search::update(&pool, index, &home.join("search")))
        .expect("update");
    let incremental = started.elapsed();
    drop(index);
    let segments = segment_count(&home.join("search").join("current"));

    // The trigram baseline: the same names, a GIN trigram index. The département is not in
    // the name table (it lives in the compressed documents): its filtered query is then
    // cheaper for Postgres, which only favours the baseline.
    let trigram_build = runtime.block_on(async {
        let started = Instant::now();
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute(&pool).await.expect("pg_trgm");
        sqlx::query("DROP TABLE IF EXISTS bench_names").execute(&pool).await.expect("drop");
        sqlx::query(
            "CREATE TABLE bench_names AS
             SELECT r.national_id, lower(r.given_name || ' ' || r.family_name) AS name,
                    ''::text AS departement
             FROM professional p JOIN professional_record r ON r.national_id = p.national_id AND r.run_id = p.record_run_id",
        )
        .execute(&pool)
        .await
        .expect("names");
        sqlx::query("CREATE INDEX bench_names_trgm ON bench_names USING gin (name gin_trgm_ops)").execute(&pool).await.expect("gin");
        sqlx::query("CREATE INDEX bench_names_id ON bench_names (national_id)").execute(&pool).await.expect("btree");
        sqlx::query("ANALYZE bench_names").execute(&pool).await.expect("analyze");
        started.elapsed()
    });
    let ids: Vec<String> = runtime
        .block_on(
            sqlx::query_scalar("SELECT national_id FROM bench_names ORDER BY random() LIMIT 5000").fetch_all(&pool),
        )
        .expect("ids");

    // The API, as admins' tools call it.
    let key = annuaire()
        .env("DATABASE_URL", &url)
        .args(["keys", "create", "--name", "bench", "--scope", "search"])
        .output()
        .expect("key");
    let key = String::from_utf8_lossy(&key.stdout).trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = annuaire()
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .arg("--home")
        .arg(&home)
        .args(["serve", "--scheduler", "off", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    annuaire::install_crypto_provider();
    let client = reqwest::Client::new();
    let ids = Arc::new(ids);
    let api = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !client
            .get(format!("{base}/v1/professionals?q=dup"))
            .bearer_auth(&key)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(Instant::now() < deadline, "search never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Warm-up, unmeasured: each query of the mix once, as a server that has run a while
        // has (the index's pages mapped, first-use costs paid); the figures are of the steady
        // state, not of a restart.
        for facets in [false, true] {
            for i in 0..MIX.len() {
                let url = format!("{base}/v1/professionals?{}&facets={facets}", mix(&ids, i));
                let response = client.get(url).bearer_auth(&key).send().await.expect("search");
                assert_eq!(response.status(), 200);
                response.bytes().await.expect("body");
            }
        }
        let mut runs = Vec::new();
        for facets in [false, true] {
            let (client, base, key, ids) = (client.clone(), base.clone(), key.clone(), Arc::clone(&ids));
            runs.push(
                fixed_rate(move |i| {
                    let (client, key) = (client.clone(), key.clone());
                    let url = format!("{base}/v1/professionals?{}&facets={facets}", mix(&ids, i));
                    async move {
                        let response = client.get(url).bearer_auth(&key).send().await.expect("search");
                        assert_eq!(response.status(), 200);
                        response.bytes().await.expect("body");
                    }
                })
                .await,
            );
        }
        runs
    });
    let _ = server.kill();
    let _ = server.wait();

    let trigram_latencies = runtime.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(CLIENTS as u32)
            .connect(&url)
            .await
            .expect("pool");
        let latencies = {
            let (pool, ids) = (pool.clone(), Arc::clone(&ids));
            fixed_rate(move |i| {
                let (pool, ids) = (pool.clone(), Arc::clone(&ids));
                async move { trigram(&pool, &ids, i).await }
            })
            .await
        };
        pool.close().await;
        latencies
    });
    runtime.block_on(pool.close());
    let _ = common::psql(&cluster, "postgres", &format!("DROP DATABASE IF EXISTS {database}")).status();
    let _ = std::fs::remove_dir_all(&home);

    let (typeahead, faceted) = (&api[0], &api[1]);
    let trigram_p99 = percentile(&trigram_latencies, 0.99);
    println!();
    println!(
        "import day 0 {:.1} s; full index build {:.1} s, bench process peak RSS {build_rss:.0} MiB   (goal ≤ 30 s; server ≤ 1 GiB with its snapshot)",
        import0.wall.as_secs_f64(),
        full_build.as_secs_f64()
    );
    println!(
        "import day 1 {:.1} s; incremental index update {:.2} s   (goal ≤ 2 s)",
        import1.wall.as_secs_f64(),
        incremental.as_secs_f64()
    );
    println!("index segments served: {segments}");
    for (what, latencies) in [("API facets=false", typeahead), ("API with facets", faceted)] {
        println!(
            "{}; p99 {:.1}× faster than pg_trgm   (goal p99 ≤ 10 ms, ≥ 10×)",
            report(what, latencies),
            trigram_p99 / percentile(latencies, 0.99)
        );
    }
    println!(
        "{} (baseline; trigram index built in {:.1} s)",
        report("pg_trgm", &trigram_latencies),
        trigram_build.as_secs_f64()
    );
}
