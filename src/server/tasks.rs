//! Supervised background tasks: each runs in its own tokio task, so that a panic stays
//! there; one that fails or ends before shutdown is restarted with back-off, and its
//! restarts and state are kept for `/readyz` and `/metrics`. Nothing dies silently.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// First wait before a restart; doubled on each failure in a row, up to `MAX_BACKOFF`.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run that lasted this long was healthy: the next failure starts the back-off again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// What one task's supervisor knows of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TaskState {
    /// Running now (false while it waits to be restarted).
    pub up: bool,
    pub restarts: u64,
    /// Why it last failed (the log has the detail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// The state of every supervised task of the process, by name.
#[derive(Debug, Default)]
pub struct TaskHealth {
    tasks: Mutex<BTreeMap<&'static str, TaskState>>,
}

impl TaskHealth {
    /// Registers a task before it starts, so that its series exist from the first scrape.
    pub fn register(&self, name: &'static str) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.entry(name).or_default();
        }
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, TaskState> {
        self.tasks.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn update(&self, name: &'static str, change: impl FnOnce(&mut TaskState)) {
        if let Ok(mut tasks) = self.tasks.lock() {
            change(tasks.entry(name).or_default());
        }
    }
}

/// Starts supervised tasks and waits for all of them at shutdown.
#[derive(Clone)]
pub struct Supervisor {
    pub health: Arc<TaskHealth>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Supervisor {
    pub fn new(health: Arc<TaskHealth>, shutdown: CancellationToken) -> Supervisor {
        Supervisor {
            health,
            tracker: TaskTracker::new(),
            shutdown,
        }
    }

    /// Runs `make()` until shutdown, restarting it with back-off whenever it panics, fails
    /// or returns early. A task is expected to watch the shutdown token and return `Ok`.
    pub fn spawn<F, Fut>(&self, name: &'static str, make: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.health.register(name);
        let health = Arc::clone(&self.health);
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            let mut backoff = INITIAL_BACKOFF;
            loop {
                health.update(name, |s| s.up = true);
                let started = Instant::now();
                let ended = tokio::spawn(make()).await;
                health.update(name, |s| s.up = false);
                if shutdown.is_cancelled() {
                    return;
                }
                let failure = match ended {
                    Ok(Ok(())) => "ended before shutdown".to_owned(),
                    Ok(Err(error)) => error,
                    Err(join) if join.is_panic() => "panicked".to_owned(),
                    Err(_) => "was cancelled".to_owned(),
                };
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = INITIAL_BACKOFF;
                }
                tracing::error!(task = name, %failure, retry_in_s = backoff.as_secs(), "background task failed; restarting");
                health.update(name, |s| {
                    s.restarts += 1;
                    s.last_failure = Some(failure);
                });
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
    }

    /// Waits until every supervised task has returned (after the shutdown token fired).
    pub async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_and_counted() {
        let shutdown = CancellationToken::new();
        let supervisor = Supervisor::new(Arc::default(), shutdown.clone());
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        let stop = shutdown.clone();
        supervisor.spawn("flaky", move || {
            let (runs, stop) = (Arc::clone(&counted), stop.clone());
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("boom");
                }
                stop.cancelled().await;
                Ok(())
            }
        });
        while runs.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let state = supervisor.health.snapshot()["flaky"].clone();
        assert_eq!(state.restarts, 2);
        assert_eq!(state.last_failure.as_deref(), Some("panicked"));
        shutdown.cancel();
        supervisor.wait().await;
        assert!(!supervisor.health.snapshot()["flaky"].up);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_is_recorded_with_its_reason() {
        let shutdown = CancellationToken::new();
        let supervisor = Supervisor::new(Arc::default(), shutdown.clone());
        supervisor.spawn("failing", || async { Err("store unreachable".to_owned()) });
        let health = Arc::clone(&supervisor.health);
        while health.snapshot()["failing"].restarts < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            health.snapshot()["failing"].last_failure.as_deref(),
            Some("store unreachable")
        );
        shutdown.cancel();
        supervisor.wait().await;
    }
}
