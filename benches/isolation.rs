//! Isolation benchmark at national scale, on loopback:
//! - a fresh replica (empty `ANNUAIRE_HOME`): time to claims-ready (goal ≤ 10 s) and to
//!   search-ready, and its peak memory while the index builds in the background (≤ 1 GiB);
//!   then the same replica restarted with its index on disk;
//! - claims latency at a fixed 5,000 req/s, quiet and then while an abusive admin client
//!   runs (heavy searches, absurd paging, 60 kB queries, bad hook bodies, 200 idle
//!   connections, 40 clients walking professionals' histories, and a flood of silent
//!   sockets from a second loopback address, more than the whole connection cap, reopened
//!   as fast as a rate allows), in the same run; the server's memory under the abuse.
//!
//! `cargo bench --bench isolation` (same variables as the import benchmark;
//! `ANNUAIRE_BENCH_ABUSE=admin,history,flood` chooses the abuses, all by default).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::annuaire;
use common::published::Published;
use common::serving::{
    RATE, Server, fixed_rate, free_port, peak_rss_mib, percentile, rss_mib, rss_mib_of, server_histogram, server_p99,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

const FIXED_RATE_SECONDS: u64 = 10;

/// The idle-socket flood: more silent sockets than the server's whole cap (4,096), from
/// 127.0.0.2, each reopened when the server closes it, at most `FLOOD_RATE` a second.
const FLOOD_SOCKETS: usize = 4_150;
const FLOOD_RATE: u64 = 500;

/// Clients walking histories at once (the probe's 40 parallel calls).
const HISTORY_CLIENTS: usize = 40;

/// What a start-up took.
struct Startup {
    claims_ready: Duration,
    search_ready: Duration,
    peak_rss_mib: u64,
}

fn serve(url: &str, home: &std::path::Path, port: u16) -> Server {
    Server(
        annuaire()
            .env("DATABASE_URL", url)
            .env("ANNUAIRE_HOME", home)
            .env("ANNUAIRE_JOBS_DIR", home.join("no-jobs"))
            .env("RUST_LOG", "warn")
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--scheduler", "off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts"),
    )
}

/// Polls `/readyz` until both claims and search are ready.
async fn start_up(client: &reqwest::Client, base: &str, server: &Server) -> Startup {
    let started = Instant::now();
    let mut claims_ready = None;
    loop {
        let ready: Option<serde_json::Value> = match client.get(format!("{base}/readyz")).send().await {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        if let Some(ready) = ready {
            if claims_ready.is_none() && ready["claims"] == "ready" {
                claims_ready = Some(started.elapsed());
            }
            if let Some(claims_ready) = claims_ready
                && ready["search"] == "ready"
            {
                return Startup {
                    claims_ready,
                    search_ready: started.elapsed(),
                    peak_rss_mib: peak_rss_mib(&server.0),
                };
            }
        }
        assert!(started.elapsed() < Duration::from_secs(900), "serve never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Answers the abuse got, by status.
#[derive(Default)]
struct AbuseTally {
    ok: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    failed: AtomicU64,
}

impl AbuseTally {
    fn count(&self, answer: Result<reqwest::Response, reqwest::Error>) {
        self.count_status(answer.ok().map(|r| r.status().as_u16()));
    }

    /// An answer's status, or `None` when the request failed.
    fn count_status(&self, status: Option<u16>) {
        let counter = match status {
            Some(200..=299) => &self.ok,
            Some(400..=499) => &self.client_errors,
            Some(_) => &self.server_errors,
            None => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// An admin client that searches hard and a hostile one, until `stop`. They run on
/// `runtime`, apart from the claims client: on this one machine they stand for other
/// machines, and must not delay the claims client's own requests in its task queue.
fn abuse(
    runtime: &tokio::runtime::Handle,
    base: &str,
    search_key: &str,
    claims_key: &str,
    stop: &Arc<AtomicBool>,
    tally: &Arc<AbuseTally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let long_query = "bertrand ".repeat(60_000 / 9);
    let hostile = [
        format!("{base}/v1/professionals?q=bertrand&page=1000000000"),
        format!("{base}/v1/professionals?q=bertrand&per_page=1000000"),
        format!("{base}/v1/professionals?q={long_query}"),
        format!("{base}/v1/professionals?page=abc&removed=maybe"),
    ];
    let mut tasks = Vec::new();
    for worker in 0..6u64 {
        let (client, stop, tally) = (reqwest::Client::new(), Arc::clone(stop), Arc::clone(tally));
        let (base, search_key, claims_key, hostile) = (
            base.to_owned(),
            search_key.to_owned(),
            claims_key.to_owned(),
            hostile.clone(),
        );
        tasks.push(runtime.spawn(async move {
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let answer = match worker {
                    // Heavy but legal: typeahead and fuzzy names, deep pages, facets.
                    0..=3 => {
                        let q = ["mar", "dubios", "bernard", "lefevre marie", "pharmacie", "75"][(i % 6) as usize];
                        let page = 1 + i % 500;
                        client
                            .get(format!("{base}/v1/professionals?q={q}&page={page}&per_page=20"))
                            .bearer_auth(&search_key)
                            .send()
                            .await
                    }
                    4 => {
                        client
                            .get(&hostile[(i % 4) as usize])
                            .bearer_auth(&search_key)
                            .send()
                            .await
                    }
                    _ => {
                        let body = if i % 2 == 0 {
                            b"{{{ not json".to_vec()
                        } else {
                            vec![b'x'; 2 << 20]
                        };
                        client
                            .post(format!("{base}/v1/hooks/hydra/token"))
                            .bearer_auth(&claims_key)
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await
                    }
                };
                tally.count(answer);
            }
        }));
    }
    tasks
}

/// What the idle-socket flood did.
#[derive(Default)]
struct FloodTally {
    opened: AtomicU64,
    closed_by_server: AtomicU64,
    failed: AtomicU64,
}

/// Keeps up to `FLOOD_SOCKETS` silent sockets from 127.0.0.2 open, opening at most
/// `FLOOD_RATE` a second, each held until the server closes it, until `stop`.
fn idle_flood(
    runtime: &tokio::runtime::Handle,
    port: u16,
    stop: &Arc<AtomicBool>,
    tally: &Arc<FloodTally>,
) -> tokio::task::JoinHandle<()> {
    let (stop, tally) = (Arc::clone(stop), Arc::clone(tally));
    let handle = runtime.clone();
    runtime.spawn(async move {
        let sockets = Arc::new(tokio::sync::Semaphore::new(FLOOD_SOCKETS));
        let mut pace = tokio::time::interval(Duration::from_nanos(1_000_000_000 / FLOOD_RATE));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let target: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let mut held = tokio::task::JoinSet::new();
        while !stop.load(Ordering::Relaxed) {
            let Ok(permit) = Arc::clone(&sockets).acquire_owned().await else {
                break;
            };
            pace.tick().await;
            let (stop, tally) = (Arc::clone(&stop), Arc::clone(&tally));
            held.spawn_on(
                async move {
                    let _permit = permit;
                    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                    socket.bind("127.0.0.2:0".parse().expect("address")).expect("bind");
                    let Ok(mut stream) = socket.connect(target).await else {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    tally.opened.fetch_add(1, Ordering::Relaxed);
                    let mut buf = [0u8; 64];
                    while !stop.load(Ordering::Relaxed) {
                        let read = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
                        if let Ok(Ok(0) | Err(_)) = read {
                            tally.closed_by_server.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                },
                &handle,
            );
        }
        held.shutdown().await;
    })
}

/// Clients reading histories as fast as they are answered, until `stop`.
fn history_flood(
    runtime: &tokio::runtime::Handle,
    base: &str,
    key: &str,
    ids: &[String],
    stop: &Arc<AtomicBool>,
    tally: &Arc<AbuseTally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..HISTORY_CLIENTS)
        .map(|worker| {
            let (client, stop, tally) = (reqwest::Client::new(), Arc::clone(stop), Arc::clone(tally));
            let (base, key, ids) = (base.to_owned(), key.to_owned(), ids.to_vec());
            runtime.spawn(async move {
                let mut i = worker;
                while !stop.load(Ordering::Relaxed) {
                    i += HISTORY_CLIENTS;
                    let id = &ids[i % ids.len()];
                    let answer = client
                        .get(format!("{base}/v1/professionals/{id}/history?limit=100"))
                        .bearer_auth(&key)
                        .send()
                        .await;
                    // Read whole: the server's work and memory are in the body.
                    let status = match answer {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            response.bytes().await.ok().map(|_| status)
                        }
                        Err(_) => None,
                    };
                    tally.count_status(status);
                }
            })
        })
        .collect()
}

/// Connections that open and then say nothing (half stop in the middle of a request head).
async fn idle_connections(address: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut idle = Vec::new();
    for i in 0..n {
        if let Ok(mut socket) = tokio::net::TcpStream::connect(address).await {
            if i % 2 == 0 {
                let _ = socket
                    .write_all(b"GET /v1/claims/810003456125 HTTP/1.1\r\nHost: x\r\n")
                    .await;
            }
            idle.push(socket);
        }
    }
    idle
}

fn main() {
    // Dropped last: the database goes once the servers are done with it.
    let published = Published::set_up("isolation");
    let (dir, url, runtime, ids) = (&published.dir, &published.url, &published.runtime, &published.ids);
    let claims_key = published.key("bench-idp", "claims");
    let search_key = published.key("bench-admin", "search,admin");

    let home = dir.join(format!("isolation-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).expect("home");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    annuaire::install_crypto_provider();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");

    // A fresh replica: nothing on disk.
    let server = serve(url, &home, port);
    let fresh = runtime.block_on(start_up(&client, &base, &server));
    let rss_indexed = rss_mib(&server.0);

    let urls: Vec<String> = ids.iter().map(|id| format!("{base}/v1/claims/{id}")).collect();
    let before = runtime.block_on(server_histogram(&client, &base));
    let quiet = runtime.block_on(fixed_rate(&client, &urls, &claims_key, FIXED_RATE_SECONDS));
    let after_quiet = runtime.block_on(server_histogram(&client, &base));

    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(AbuseTally::default()));
    let (history, flood) = (Arc::new(AbuseTally::default()), Arc::new(FloodTally::default()));
    // Which abuses run (to tell their effects apart): admin (searches, hostile requests,
    // bad hook bodies), history (the history flood), flood (the idle sockets). All by default.
    let chosen = std::env::var("ANNUAIRE_BENCH_ABUSE").unwrap_or_else(|_| "admin,history,flood".to_owned());
    let abuses: Vec<&str> = chosen.split(',').map(str::trim).collect();
    println!("abuses: {}", abuses.join(", "));
    // The abusers stand for other machines: on this one, their load generator must not
    // take the CPU the IdP's load generator needs to send and time its requests (the
    // server's own work for them stays at its normal priority).
    let abuse_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(|| annuaire::priority::lower(19))
        .enable_all()
        .build()
        .expect("abuse runtime");
    let (abused, idle, abuse_rss) = runtime.block_on(async {
        let idle = idle_connections(&format!("127.0.0.1:{port}"), 200).await;
        let mut tasks = Vec::new();
        if abuses.contains(&"admin") {
            tasks.extend(abuse(
                abuse_runtime.handle(),
                &base,
                &search_key,
                &claims_key,
                &stop,
                &tally,
            ));
        }
        if abuses.contains(&"history") {
            tasks.extend(history_flood(
                abuse_runtime.handle(),
                &base,
                &search_key,
                ids,
                &stop,
                &history,
            ));
        }
        if abuses.contains(&"flood") {
            tasks.push(idle_flood(abuse_runtime.handle(), port, &stop, &flood));
            // The flood fills its share before the measure starts.
            while flood.opened.load(Ordering::Relaxed) < FLOOD_SOCKETS as u64 / 2 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let sampling = Arc::new(AtomicU64::new(0));
        let pid = server.0.id();
        let sampler = {
            let (stop, sampling) = (Arc::clone(&stop), Arc::clone(&sampling));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    sampling.fetch_max(rss_mib_of(pid), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let latencies = fixed_rate(&client, &urls, &claims_key, FIXED_RATE_SECONDS).await;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        let _ = sampler.await;
        (latencies, idle.len(), sampling.load(Ordering::Relaxed))
    });
    let after_abuse = runtime.block_on(server_histogram(&client, &base));
    let peak_overall = peak_rss_mib(&server.0);
    drop(server);

    // The same replica restarted: its index is on disk.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = serve(url, &home, port);
    let warm = runtime.block_on(start_up(&client, &base, &server));
    drop(server);
    let _ = std::fs::remove_dir_all(&home);

    let line = |name: &str, l: &[Duration], server: String| {
        println!(
            "{name:<34} p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms (client, {} requests); server histogram p99 {server}",
            percentile(l, 0.5),
            percentile(l, 0.99),
            percentile(l, 1.0),
            l.len()
        );
    };
    println!();
    println!(
        "fresh replica: claims ready {:.2} s (goal ≤ 10 s), search ready {:.1} s, peak RSS {} MiB (goal ≤ 1024), RSS with index {rss_indexed} MiB",
        fresh.claims_ready.as_secs_f64(),
        fresh.search_ready.as_secs_f64(),
        fresh.peak_rss_mib
    );
    println!(
        "restart with the index on disk: claims ready {:.2} s, search ready {:.2} s, peak RSS {} MiB",
        warm.claims_ready.as_secs_f64(),
        warm.search_ready.as_secs_f64(),
        warm.peak_rss_mib
    );
    println!("claims at a fixed {RATE} req/s, {FIXED_RATE_SECONDS} s each, same server:");
    line("  quiet", &quiet, server_p99(&before, &after_quiet));
    line("  under abuse", &abused, server_p99(&after_quiet, &after_abuse));
    println!(
        "  ratio of client p99, abuse / quiet: {:.2}",
        percentile(&abused, 0.99) / percentile(&quiet, 0.99)
    );
    println!(
        "abuse: {} 2xx, {} 4xx, {} 5xx, {} failed requests; {idle} idle connections held; server RSS under abuse ≤ {abuse_rss} MiB, peak of the whole run {peak_overall} MiB",
        tally.ok.load(Ordering::Relaxed),
        tally.client_errors.load(Ordering::Relaxed),
        tally.server_errors.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    println!(
        "history flood ({HISTORY_CLIENTS} clients, limit=100): {} 2xx, {} 4xx, {} 5xx (503: no slot), {} failed",
        history.ok.load(Ordering::Relaxed),
        history.client_errors.load(Ordering::Relaxed),
        history.server_errors.load(Ordering::Relaxed),
        history.failed.load(Ordering::Relaxed),
    );
    println!(
        "idle-socket flood: {FLOOD_SOCKETS} silent sockets from 127.0.0.2 (the cap is 4,096), reopened at most {FLOOD_RATE}/s: {} opened, {} closed by the server, {} connects failed",
        flood.opened.load(Ordering::Relaxed),
        flood.closed_by_server.load(Ordering::Relaxed),
        flood.failed.load(Ordering::Relaxed),
    );
    // The load generator stops the run at the first claims request that fails or answers
    // anything but 200/410: reaching this line means none did.
    println!(
        "claims requests failed: 0 of {} (quiet) and {} (under abuse)",
        quiet.len(),
        abused.len()
    );
}
