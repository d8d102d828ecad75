//! Claims API benchmark with a national-scale generation published, on loopback:
//! - start-up to ready, and resident memory of `annuaire serve` (goals: ≤ 10 s, ≤ 1 GiB);
//! - throughput of `GET /v1/claims/{random known id}` against `/healthz`, same server, same
//!   `wrk` settings, same run (goal: ≥ 0.7);
//! - latency at a fixed 5,000 requests/s (goal: p99 ≤ 1 ms), and again while a full import of
//!   the day+1 extract runs (goal: p99 ≤ 2 ms).
//!
//! `cargo bench --bench serve` (needs `wrk`: `apt-get install wrk`; same variables as the
//! import benchmark).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::published::Published;
use common::serving::{RATE, Server, fixed_rate, free_port, percentile, rss_mib, server_histogram, server_p99};
use common::{annuaire, generate};

mod common;

const FIXED_RATE_SECONDS: u64 = 10;
const WRK_SECONDS: &str = "10s";

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

fn main() {
    // Dropped last: the database goes once the server and the import are done with it.
    let published = Published::set_up("serve");
    let (dir, url, runtime, ids) = (&published.dir, &published.url, &published.runtime, &published.ids);
    let day1 = generate(dir, published.professionals, 1);
    let key = published.key("bench", "claims");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let server = Server(
        annuaire()
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts"),
    );
    annuaire::install_crypto_provider();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let startup = runtime.block_on(async {
        loop {
            if client
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return started.elapsed();
            }
            assert!(started.elapsed() < Duration::from_secs(120), "serve never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
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

    let urls: Vec<String> = ids.iter().map(|id| format!("{base}/v1/claims/{id}")).collect();
    let before = runtime.block_on(server_histogram(&client, &base));
    let quiet = runtime.block_on(fixed_rate(&client, &urls, &key, FIXED_RATE_SECONDS));
    let after_quiet = runtime.block_on(server_histogram(&client, &base));
    let quiet_server = server_p99(&before, &after_quiet);
    let rss_loaded = rss_mib(&server.0);

    let mut import = annuaire()
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .arg("import")
        .arg(&day1)
        .stdout(Stdio::null())
        .spawn()
        .expect("day 1 import");
    let import_started = Instant::now();
    let mut busy = Vec::new();
    while import.try_wait().expect("import status").is_none() && import_started.elapsed() < Duration::from_secs(300) {
        busy.extend(runtime.block_on(fixed_rate(&client, &urls, &key, 5)));
    }
    let import_seconds = import_started.elapsed().as_secs_f64();
    let busy_server = server_p99(&after_quiet, &runtime.block_on(server_histogram(&client, &base)));
    assert!(import.wait().expect("import").success(), "the day 1 import failed");
    busy.sort();
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
    drop(server);

    println!();
    println!(
        "start-up to ready          {:>8.2} s   (goal ≤ 10 s)",
        startup.as_secs_f64()
    );
    println!("RSS ready / after load / after switch  {rss_ready} / {rss_loaded} / {rss_after} MiB   (goal ≤ 1024 MiB)");
    println!(
        "wrk -t1 -c32 -d{WRK_SECONDS}: /healthz {healthz_rps:.0} req/s, /v1/claims {claims_rps:.0} req/s, ratio {:.2}   (goal ≥ 0.7)",
        claims_rps / healthz_rps
    );
    println!(
        "fixed {RATE} req/s, {} s: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (client side, loopback); server histogram p99 {quiet_server}   (goal p99 ≤ 1 ms)",
        FIXED_RATE_SECONDS,
        percentile(&quiet, 0.5),
        percentile(&quiet, 0.99),
        percentile(&quiet, 1.0)
    );
    println!(
        "fixed {RATE} req/s during the day+1 import ({import_seconds:.1} s, {} requests): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (client side); server histogram p99 {busy_server}   (goal p99 ≤ 2 ms); generation now {generation}",
        busy.len(),
        percentile(&busy, 0.5),
        percentile(&busy, 0.99),
        percentile(&busy, 1.0)
    );
}
