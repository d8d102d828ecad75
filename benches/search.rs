//! Search benchmark with a national-scale generation published:
//! - full index build (goal ≤ 60 s), incremental update for the day+1 import (goal ≤ 5 s),
//!   reported beside the import's own time;
//! - p99 at 4 concurrent clients of `GET /v1/professionals` for a mix of typeahead
//!   (`dup`, `dupont jea`), typo (`dupnot`), filtered (`cardio` + département 69) and id
//!   queries (goal ≤ 10 ms);
//! - the same mix against a Postgres `pg_trgm` index of the same names, same run, same
//!   concurrency: the ratio of the p99s (goal ≥ 10×).
//!
//! `cargo bench --bench search` (same variables as the import benchmark).

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use annuaire::store::embedded::EmbeddedCluster;
use common::{annuaire, generate, measure};

mod common;

const CLIENTS: usize = 4;
const SECONDS: u64 = 10;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// The query mix, as API query strings; ids are cycled through.
fn mix(ids: &[String], i: usize) -> String {
    match i % 5 {
        0 => "q=dup".to_owned(),
        1 => "q=dupont%20jea".to_owned(),
        2 => "q=dupnot".to_owned(),
        3 => "q=cardio&departement=69".to_owned(),
        _ => format!("q={}", ids[i % ids.len()]),
    }
}

/// The same mix in SQL over a trigram index of the same names.
async fn trigram(pool: &sqlx::PgPool, ids: &[String], i: usize) {
    let rows = match i % 5 {
        0 => sqlx::query("SELECT national_id FROM bench_names WHERE name ILIKE 'dup%' OR name ILIKE '% dup%' LIMIT 20").fetch_all(pool).await,
        1 => sqlx::query("SELECT national_id FROM bench_names WHERE name ILIKE '%dupont%' AND name ILIKE '%jea%' LIMIT 20").fetch_all(pool).await,
        2 => sqlx::query("SELECT national_id FROM bench_names WHERE name % 'dupnot' ORDER BY similarity(name, 'dupnot') DESC LIMIT 20").fetch_all(pool).await,
        3 => sqlx::query("SELECT national_id FROM bench_names WHERE name % 'cardio' AND departement = '69' LIMIT 20").fetch_all(pool).await,
        _ => sqlx::query("SELECT national_id FROM bench_names WHERE national_id = $1").bind(&ids[i % ids.len()]).fetch_all(pool).await,
    };
    rows.expect("trigram query");
}

/// How many segments the index the server opens holds (a search visits each one): its
/// meta.json lists them.
fn segment_count(index: &std::path::Path) -> usize {
    let meta = std::fs::read_to_string(index.join("meta.json")).expect("meta.json");
    let meta: serde_json::Value = serde_json::from_str(&meta).expect("meta.json is JSON");
    meta["segments"].as_array().map_or(0, Vec::len)
}

fn main() {
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
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let (client, base, key, ids) = (client.clone(), base.clone(), key.clone(), Arc::clone(&ids));
            tasks.push(tokio::spawn(async move {
                let until = Instant::now() + Duration::from_secs(SECONDS);
                let mut latencies = Vec::new();
                let mut i = c;
                while Instant::now() < until {
                    let started = Instant::now();
                    let response = client
                        .get(format!("{base}/v1/professionals?{}", mix(&ids, i)))
                        .bearer_auth(&key)
                        .send()
                        .await
                        .expect("search");
                    assert_eq!(response.status(), 200);
                    response.bytes().await.expect("body");
                    latencies.push(started.elapsed());
                    i += 1;
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
    });
    let _ = server.kill();
    let _ = server.wait();

    let trigram_latencies = runtime.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(CLIENTS as u32)
            .connect(&url)
            .await
            .expect("pool");
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let (pool, ids) = (pool.clone(), Arc::clone(&ids));
            tasks.push(tokio::spawn(async move {
                let until = Instant::now() + Duration::from_secs(SECONDS);
                let mut latencies = Vec::new();
                let mut i = c;
                while Instant::now() < until {
                    let started = Instant::now();
                    trigram(&pool, &ids, i).await;
                    latencies.push(started.elapsed());
                    i += 1;
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("client"));
        }
        all.sort();
        pool.close().await;
        all
    });
    runtime.block_on(pool.close());
    let _ = common::psql(&cluster, "postgres", &format!("DROP DATABASE IF EXISTS {database}")).status();
    let _ = std::fs::remove_dir_all(&home);

    println!();
    println!(
        "import day 0 {:.1} s; full index build {:.1} s   (goal ≤ 60 s)",
        import0.wall.as_secs_f64(),
        full_build.as_secs_f64()
    );
    println!(
        "import day 1 {:.1} s; incremental index update {:.2} s   (goal ≤ 5 s)",
        import1.wall.as_secs_f64(),
        incremental.as_secs_f64()
    );
    println!(
        "API, {CLIENTS} clients, {SECONDS} s, {} queries, {segments} index segments: p50 {:.2} ms, p99 {:.2} ms   (goal p99 ≤ 10 ms)",
        api.len(),
        percentile(&api, 0.5),
        percentile(&api, 0.99)
    );
    println!(
        "pg_trgm (index built in {:.1} s), {CLIENTS} clients, {SECONDS} s, {} queries: p50 {:.2} ms, p99 {:.2} ms; ratio of p99s {:.1}×   (goal ≥ 10×)",
        trigram_build.as_secs_f64(),
        trigram_latencies.len(),
        percentile(&trigram_latencies, 0.5),
        percentile(&trigram_latencies, 0.99),
        percentile(&trigram_latencies, 0.99) / percentile(&api, 0.99)
    );
}
