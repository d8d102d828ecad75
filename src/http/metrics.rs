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

/// Latency buckets in seconds: fine below a millisecond, where the claims route lives.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default)]
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
        out.push_str("# HELP annuaire_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE annuaire_http_requests_total counter\n");
        let routes = self.routes.lock().map(|r| {
            r.iter()
                .map(|(route, s)| {
                    (
                        route.clone(),
                        s.count_by_status.clone(),
                        s.buckets,
                        s.sum_seconds,
                        s.count,
                    )
                })
                .collect::<Vec<_>>()
        });
        let routes = routes.unwrap_or_default();
        for (route, by_status, ..) in &routes {
            for (status, count) in by_status {
                let _ = writeln!(
                    out,
                    "annuaire_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
                );
            }
        }
        out.push_str("# HELP annuaire_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE annuaire_http_request_duration_seconds histogram\n");
        for (route, _, buckets, sum, count) in &routes {
            for (bound, n) in BUCKETS.iter().zip(buckets) {
                let _ = writeln!(
                    out,
                    "annuaire_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "annuaire_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "annuaire_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "annuaire_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        let snapshot = state.snapshot.load();
        out.push_str("# HELP annuaire_generation_run_id The published generation served (import run id).\n");
        out.push_str("# TYPE annuaire_generation_run_id gauge\n");
        let _ = writeln!(
            out,
            "annuaire_generation_run_id {}",
            snapshot.generation.map_or(0, |g| g.0)
        );
        out.push_str("# HELP annuaire_generation_age_seconds Age of the served generation's extract.\n");
        out.push_str("# TYPE annuaire_generation_age_seconds gauge\n");
        if let Some(ts) = snapshot.extract_ts.or(snapshot.published_at) {
            let _ = writeln!(
                out,
                "annuaire_generation_age_seconds {}",
                (chrono::Utc::now() - ts).num_seconds()
            );
        }
        out.push_str("# HELP annuaire_generation_professionals Professionals in the served snapshot.\n");
        out.push_str("# TYPE annuaire_generation_professionals gauge\n");
        let _ = writeln!(out, "annuaire_generation_professionals {}", snapshot.len());
        out.push_str("# HELP annuaire_store_up Whether Postgres answered the last probe.\n");
        out.push_str("# TYPE annuaire_store_up gauge\n");
        let _ = writeln!(out, "annuaire_store_up {}", u8::from(state.status.reachable()));
        out.push_str("# HELP annuaire_last_import_status The status of the latest finished import run.\n");
        out.push_str("# TYPE annuaire_last_import_status gauge\n");
        if let Some(status) = state.status.last_import_status() {
            let _ = writeln!(out, "annuaire_last_import_status{{status=\"{status}\"}} 1");
        }
        let tasks = state.tasks.snapshot();
        out.push_str("# HELP annuaire_task_restarts_total Restarts of a background task after it failed.\n");
        out.push_str("# TYPE annuaire_task_restarts_total counter\n");
        for (task, s) in &tasks {
            let _ = writeln!(out, "annuaire_task_restarts_total{{task=\"{task}\"}} {}", s.restarts);
        }
        out.push_str("# HELP annuaire_task_up Whether a background task is running (0 while it waits to restart).\n");
        out.push_str("# TYPE annuaire_task_up gauge\n");
        for (task, s) in &tasks {
            let _ = writeln!(out, "annuaire_task_up{{task=\"{task}\"}} {}", u8::from(s.up));
        }
        out.push_str(
            "# HELP annuaire_search_index_ready Whether the search index is in place (absent where search is off).\n",
        );
        out.push_str("# TYPE annuaire_search_index_ready gauge\n");
        if state.search_enabled {
            let _ = writeln!(
                out,
                "annuaire_search_index_ready {}",
                u8::from(state.search.load().is_some())
            );
        }
        out
    }
}

/// Records every request under its route pattern (never the raw path: ids would make
/// unbounded label values).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .record(&route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}
