//! Prometheus metrics, kept by hand (a few counters and one histogram do not need a
//! registry crate): requests and latency per route and status, the published generation
//! and its age, the last import's status.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::request_log;
use tracing::Instrument;

/// Latency buckets in seconds: fine below a millisecond, where the claims route lives.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default, Clone)]
struct RouteStats {
    count_by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    sum_seconds: f64,
    count: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    fn record(&self, route: &str, status: u16, seconds: f64) {
        let Ok(mut routes) = self.routes.lock() else { return };
        let stats = match routes.get_mut(route) {
            Some(stats) => stats,
            None => routes.entry(route.to_owned()).or_default(),
        };
        *stats.count_by_status.entry(status).or_default() += 1;
        for (bucket, bound) in stats.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        stats.sum_seconds += seconds;
        stats.count += 1;
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self, state: &AppState) -> String {
        let mut out = String::new();
        self.render_requests(&mut out);
        render_generation(&mut out, state);
        render_health(&mut out, state);
        render_connections(&mut out, state);
        out
    }

    /// Requests by route and status, and the latency histogram per route.
    fn render_requests(&self, out: &mut String) {
        // Copied out, so that the lock is not held while formatting.
        let routes: Vec<(String, RouteStats)> = self
            .routes
            .lock()
            .map(|r| r.iter().map(|(route, s)| (route.clone(), s.clone())).collect())
            .unwrap_or_default();
        family(
            out,
            "annuaire_http_requests_total",
            "counter",
            "HTTP requests by route and status.",
        );
        for (route, stats) in &routes {
            for (status, count) in &stats.count_by_status {
                let _ = writeln!(
                    out,
                    "annuaire_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
                );
            }
        }
        let histogram = "annuaire_http_request_duration_seconds";
        family(out, histogram, "histogram", "Request latency by route.");
        for (route, stats) in &routes {
            let (sum, count) = (stats.sum_seconds, stats.count);
            for (bound, n) in BUCKETS.iter().zip(stats.buckets) {
                let _ = writeln!(out, "{histogram}_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "{histogram}_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "{histogram}_sum{{route=\"{route}\"}} {sum}");
            let _ = writeln!(out, "{histogram}_count{{route=\"{route}\"}} {count}");
        }
    }
}

/// The `# HELP` and `# TYPE` lines that open a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The published generation this server holds.
fn render_generation(out: &mut String, state: &AppState) {
    let snapshot = state.snapshot.load();
    let name = "annuaire_generation_run_id";
    family(out, name, "gauge", "The published generation served (import run id).");
    let _ = writeln!(out, "{name} {}", snapshot.generation.map_or(0, |g| g.0));
    let name = "annuaire_generation_age_seconds";
    family(out, name, "gauge", "Age of the served generation's extract.");
    if let Some(ts) = snapshot.extract_ts.or(snapshot.published_at) {
        let _ = writeln!(out, "{name} {}", (chrono::Utc::now() - ts).num_seconds());
    }
    let name = "annuaire_generation_professionals";
    family(out, name, "gauge", "Professionals in the served snapshot.");
    let _ = writeln!(out, "{name} {}", snapshot.len());
}

/// The store, the last import, the background tasks and the search index.
/// The listener's connections: how many are open, and those it closed to protect the rest.
fn render_connections(out: &mut String, state: &AppState) {
    let name = "annuaire_connections_open";
    family(out, name, "gauge", "Client connections open now.");
    let _ = writeln!(out, "{name} {}", state.connections.open());
    let name = "annuaire_connections_closed_total";
    family(
        out,
        name,
        "counter",
        "Connections the server closed to protect the others: over_share (a client address at its share of the cap), evicted (idle, to admit a new one at the cap), no_request (no request head within the header timeout of accept).",
    );
    for (reason, count) in state.connections.closed() {
        let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {count}");
    }
}

fn render_health(out: &mut String, state: &AppState) {
    let name = "annuaire_store_up";
    family(out, name, "gauge", "Whether Postgres answered the last probe.");
    let _ = writeln!(out, "{name} {}", u8::from(state.status.reachable()));
    let name = "annuaire_last_import_status";
    family(out, name, "gauge", "The status of the latest finished import run.");
    if let Some(status) = state.status.last_import_status() {
        let _ = writeln!(out, "{name}{{status=\"{status}\"}} 1");
    }
    let tasks = state.tasks.snapshot();
    let name = "annuaire_task_restarts_total";
    family(out, name, "counter", "Restarts of a background task after it failed.");
    for (task, s) in &tasks {
        let _ = writeln!(out, "{name}{{task=\"{task}\"}} {}", s.restarts);
    }
    let name = "annuaire_task_up";
    family(
        out,
        name,
        "gauge",
        "Whether a background task is running (0 while it waits to restart).",
    );
    for (task, s) in &tasks {
        let _ = writeln!(out, "{name}{{task=\"{task}\"}} {}", u8::from(s.up));
    }
    // Each configured job has a series from the start (`none` before its first run), so
    // that alerts on them hold from the start.
    let ops = state.status.ops();
    let name = "annuaire_job_last_run_status";
    family(
        out,
        name,
        "gauge",
        "The status of each job's latest finished run (1 on its status).",
    );
    for job in state.jobs.iter() {
        let status = ops.job_status.get(&job.name).map_or("none", String::as_str);
        let _ = writeln!(out, "{name}{{job=\"{}\",status=\"{status}\"}} 1", job.name);
    }
    let name = "annuaire_last_import_phase_seconds";
    family(out, name, "gauge", "Seconds of each phase of the last finished import.");
    for (phase, seconds) in &ops.import_phases {
        let _ = writeln!(out, "{name}{{phase=\"{phase}\"}} {seconds}");
    }
    let name = "annuaire_last_import_changes";
    family(
        out,
        name,
        "gauge",
        "Professionals added, changed and removed by the last finished import.",
    );
    for (change, count) in &ops.import_changes {
        let _ = writeln!(out, "{name}{{change=\"{change}\"}} {count}");
    }
    let name = "annuaire_process_resident_memory_bytes";
    family(out, name, "gauge", "Resident memory of this process.");
    if let Some(bytes) = resident_bytes() {
        let _ = writeln!(out, "{name} {bytes}");
    }
    let name = "annuaire_search_index_ready";
    family(
        out,
        name,
        "gauge",
        "Whether the search index is in place (absent where search is off).",
    );
    if state.search_enabled {
        let _ = writeln!(out, "{name} {}", u8::from(state.search.load().is_some()));
    }
    let name = "annuaire_search_stale";
    family(
        out,
        name,
        "gauge",
        "Whether the search index served is behind the published generation after a failed update, or for over ten minutes (absent where search is off).",
    );
    if state.search_enabled {
        let stale = state.search.load().is_some() && state.search_health.stale();
        let _ = writeln!(out, "{name} {}", u8::from(stale));
    }
}

/// Records every request under its route pattern (never the raw path: ids would make
/// unbounded label values), and logs it with its id (`request_log`).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let id = request_log::request_id(request.headers());
    let id_text = id.to_str().unwrap_or_default();
    let method = request.method().clone();
    let quiet = request_log::high_volume(route);
    // At `info` for every route, so that whatever is logged while serving a claim (an
    // internal error, say) carries its id; only the end-of-request line is quieter.
    let span = tracing::info_span!("request", request_id = id_text, route);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    state.metrics.record(route, status, seconds);
    let latency_ms = seconds * 1000.0;
    span.in_scope(|| {
        if quiet {
            tracing::debug!(%method, status, latency_ms, "request");
        } else {
            tracing::info!(%method, status, latency_ms, "request");
        }
    });
    response.headers_mut().insert(request_log::X_REQUEST_ID.clone(), id);
    response
}

/// This process's resident memory, from /proc (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
