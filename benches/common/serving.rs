//! Serving helpers the benchmarks share: a server child process stopped whatever happens,
//! its memory, and an open-loop client at a fixed rate.

use std::process::Child;
use std::time::{Duration, Instant};

/// The fixed rate of the latency measurements (requests per second).
pub const RATE: u64 = 5_000;

/// The load generator's client: enough idle connections for every request in flight.
pub fn client() -> reqwest::Client {
    annuaire::install_crypto_provider();
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client")
}

/// Waits until the server at `base` is ready (at most two minutes from `started`); returns
/// the time from `started`.
pub async fn ready(client: &reqwest::Client, base: &str, started: Instant) -> Duration {
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
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Stops the server whatever happens, so that a failed run leaves no process behind.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn rss_mib(child: &Child) -> u64 {
    rss_mib_of(child.id())
}

/// The resident memory of process `pid` now (for samplers that do not own the child).
pub fn rss_mib_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

/// Open-loop load at a fixed rate; latencies from each request's send to its full answer.
pub async fn fixed_rate(client: &reqwest::Client, urls: &[String], key: &str, seconds: u64) -> Vec<Duration> {
    open_loop(client, urls, key, seconds, None).await
}

/// Open-loop load at a fixed rate over at most `connections` requests in flight (the
/// issue's "16 connections"). A request is timed from when it is due, so one that waits
/// for a free connection because the server fell behind counts that wait: a closed loop
/// would hide it by sending less.
pub async fn open_loop(
    client: &reqwest::Client,
    urls: &[String],
    key: &str,
    seconds: u64,
    connections: Option<usize>,
) -> Vec<Duration> {
    open_loop_with(seconds, connections, |i| {
        client.get(&urls[i as usize % urls.len()]).bearer_auth(key)
    })
    .await
}

/// `open_loop` for any request: `make(i)` builds the i-th (method, headers, body).
pub async fn open_loop_with(
    seconds: u64,
    connections: Option<usize>,
    make: impl Fn(u64) -> reqwest::RequestBuilder,
) -> Vec<Duration> {
    let total = RATE * seconds;
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(
        connections.unwrap_or(tokio::sync::Semaphore::MAX_PERMITS),
    ));
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        tokio::time::sleep_until(started + Duration::from_nanos(i * 1_000_000_000 / RATE)).await;
        let request = make(i);
        let slots = std::sync::Arc::clone(&slots);
        tasks.push(tokio::spawn(async move {
            // From the wake-up, not the schedule: tokio's timer fires up to 1 ms late.
            let sent = Instant::now();
            let _slot = slots.acquire_owned().await.expect("semaphore open");
            let response = request.send().await.expect("request");
            // 410 once the day+1 generation removed the professional.
            assert!(
                matches!(response.status().as_u16(), 200 | 410),
                "answered {}",
                response.status()
            );
            response.bytes().await.expect("body");
            sent.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(task.await.expect("request task"));
    }
    latencies.sort();
    latencies
}

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// The server's cumulative latency histogram of the claims route: (upper bound, count).
pub async fn server_histogram(client: &reqwest::Client, base: &str) -> Vec<(f64, f64)> {
    server_histogram_of(client, base, "/v1/claims/{id}").await
}

/// The server's cumulative latency histogram of `route` (its pattern): (upper bound, count).
pub async fn server_histogram_of(client: &reqwest::Client, base: &str, route: &str) -> Vec<(f64, f64)> {
    let prefix = format!("annuaire_http_request_duration_seconds_bucket{{route=\"{route}\"");
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let count: f64 = l.rsplit(' ').next()?.parse().ok()?;
            Some((le.parse().unwrap_or(f64::INFINITY), count))
        })
        .collect()
}

/// The server's own p99 between two histogram readings (a bucket's upper bound).
pub fn server_p99(before: &[(f64, f64)], after: &[(f64, f64)]) -> String {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| (*le, n - before.iter().find(|(b, _)| b == le).map_or(0.0, |(_, m)| *m)))
        .collect();
    let total = delta.last().map_or(0.0, |b| b.1);
    delta
        .iter()
        .find(|(_, n)| *n >= total * 0.99)
        .map_or("?".to_owned(), |(le, _)| format!("≤ {} ms", le * 1000.0))
}

/// The peak resident memory of a process so far (the kernel's high-water mark).
pub fn peak_rss_mib(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

/// The backends (pids) connected to `database` now, parallel workers included.
pub fn backends(cluster: &annuaire::store::embedded::EmbeddedCluster, database: &str) -> Vec<u32> {
    let query = format!("SELECT pid FROM pg_stat_activity WHERE datname = '{database}'");
    let out = super::psql(cluster, "postgres", &query)
        .args(["-A", "-t"])
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// What issue 10 asks of the import on a local cluster (its Postgres backends niced, like
/// the importer itself), done from outside for a measurement of its effect: every half
/// second, each backend of `database` but the `spared` ones (the server's) gets `nice`.
/// Stops when dropped; `count` says how many backends it niced.
pub struct BackendNicer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    niced: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<u32>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackendNicer {
    pub fn start(
        cluster: &annuaire::store::embedded::EmbeddedCluster,
        database: &str,
        spared: Vec<u32>,
        nice: i32,
    ) -> BackendNicer {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let niced = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
        let (cluster, database) = (cluster.clone(), database.to_owned());
        let (stopped, seen) = (std::sync::Arc::clone(&stop), std::sync::Arc::clone(&niced));
        let thread = std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                for pid in backends(&cluster, &database) {
                    if !spared.contains(&pid) && annuaire::priority::lower_process(pid, nice).is_ok() {
                        seen.lock().expect("nicer's set").insert(pid);
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        BackendNicer {
            stop,
            niced,
            thread: Some(thread),
        }
    }

    pub fn count(&self) -> usize {
        self.niced.lock().map_or(0, |s| s.len())
    }
}

impl Drop for BackendNicer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
