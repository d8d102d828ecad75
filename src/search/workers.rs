//! The threads search work runs on: as many as searches may run at once, niced, so that a
//! burst of heavy searches uses the cores the claims path leaves idle and never takes them
//! from it (a tokio blocking thread cannot be niced: it is reused for any blocking work).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug)]
pub struct Workers {
    jobs: mpsc::Sender<Job>,
}

/// Search work that panicked: a failure of that search alone.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Panicked(String);

impl Workers {
    /// Starts `threads` threads at `nice`. A thread that cannot start is logged; the work
    /// sent meanwhile waits for the others (its caller's time limit bounds the wait).
    pub fn start(threads: usize, nice: i32) -> Workers {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let started = std::thread::Builder::new().name(format!("search-{n}")).spawn(move || {
                crate::priority::lower(nice);
                while let Some(job) = next(&queue) {
                    job();
                }
            });
            if let Err(error) = started {
                tracing::error!(%error, "cannot start a search thread");
            }
        }
        Workers { jobs }
    }

    /// Runs `work` on a search thread; its answer, or its panic as an error.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Panicked>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(work)).map_err(|panic| {
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "search work panicked".to_owned());
                Panicked(text)
            });
            // The caller may have stopped waiting (time limit): the work is done either way.
            let _ = answer.send(outcome);
        });
        self.jobs
            .send(job)
            .map_err(|_| Panicked("no search thread is running".to_owned()))?;
        answered
            .await
            .map_err(|_| Panicked("the search thread stopped".to_owned()))?
    }
}

/// The next job, or None once the workers are dropped.
fn next(queue: &Mutex<mpsc::Receiver<Job>>) -> Option<Job> {
    queue.lock().ok()?.recv().ok()
}
