//! The bounds of a search, checked once for the API and the command line: query length and
//! words, page size and result window (out of range is refused, never clamped), and the
//! guard that runs search work with a concurrency limit and a time limit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::query::{self, SearchRequest};
use super::workers::Workers;

/// What one search may ask and use. The defaults follow Elasticsearch's
/// `max_result_window` (10,000) and what a person types (a name, an id, a few words).
#[derive(Debug, Clone)]
pub struct SearchLimits {
    /// Characters of `q` (after `structure` is added to it).
    pub max_query_chars: usize,
    /// Words of `q` as the index sees them: each word costs a few term automata.
    pub max_query_words: usize,
    /// Characters of one filter value (filters are exact codes).
    pub max_filter_chars: usize,
    pub max_per_page: usize,
    /// `page × per_page`: deeper pages cost memory in proportion; narrow the search instead.
    pub max_window: usize,
    /// Searches running at once: one per core, and at least `MIN_CONCURRENCY`. Search is
    /// CPU-bound, but a typeahead search is short and a few clients typing at once would
    /// otherwise wait in line behind each other; the search threads are niced, so the
    /// claims path keeps the cores it wants either way.
    pub concurrency: usize,
    /// How long a search waits for a free slot before it is refused (503, retry).
    pub queue_wait: Duration,
    /// How long a search may run before its caller gets a 503; the work itself cannot be
    /// interrupted and keeps its slot until it ends, so runaway work stays bounded.
    pub time_limit: Duration,
    /// Niceness of the search threads: the claims path wins every core it wants.
    pub nice: i32,
}

/// The fewest searches that run at once, whatever the cores: four clients typing never
/// queue behind each other.
pub const MIN_CONCURRENCY: usize = 4;

impl Default for SearchLimits {
    fn default() -> SearchLimits {
        SearchLimits {
            max_query_chars: 1_000,
            max_query_words: 32,
            max_filter_chars: 100,
            max_per_page: 100,
            max_window: 10_000,
            concurrency: std::thread::available_parallelism().map_or(MIN_CONCURRENCY, |n| n.get().max(MIN_CONCURRENCY)),
            queue_wait: Duration::from_secs(1),
            time_limit: Duration::from_secs(2),
            nice: 10,
        }
    }
}

/// A search outside its bounds; each message names the parameter and the bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundError {
    #[error("q is {chars} characters long; at most {max} are allowed")]
    QueryTooLong { chars: usize, max: usize },
    #[error("q has more than {max} words; at most {max} are allowed")]
    TooManyWords { max: usize },
    #[error("{name} is longer than {max} characters")]
    FilterTooLong { name: String, max: usize },
    #[error("per_page must be between 1 and {max}")]
    PerPage { max: usize },
    #[error("page must be 1 or more")]
    Page,
    #[error("page × per_page must be at most {max}: narrow the search to reach later results")]
    Window { max: usize },
}

impl SearchRequest {
    /// Checks the request against `limits`; the first bound it breaks is the error.
    pub fn validate(&self, limits: &SearchLimits) -> Result<(), BoundError> {
        let chars = self.q.chars().count();
        if chars > limits.max_query_chars {
            return Err(BoundError::QueryTooLong {
                chars,
                max: limits.max_query_chars,
            });
        }
        if query::query_words(&self.q).len() > limits.max_query_words {
            return Err(BoundError::TooManyWords {
                max: limits.max_query_words,
            });
        }
        if let Some((name, _)) = self
            .filters
            .iter()
            .find(|(_, value)| value.chars().count() > limits.max_filter_chars)
        {
            return Err(BoundError::FilterTooLong {
                name: name.clone(),
                max: limits.max_filter_chars,
            });
        }
        if self.per_page == 0 || self.per_page > limits.max_per_page {
            return Err(BoundError::PerPage {
                max: limits.max_per_page,
            });
        }
        if self.page == 0 {
            return Err(BoundError::Page);
        }
        if self.page.saturating_mul(self.per_page) > limits.max_window {
            return Err(BoundError::Window { max: limits.max_window });
        }
        Ok(())
    }
}

/// Why search work did not give its answer.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("every search slot is busy; retry in a moment")]
    Busy,
    #[error("the search took longer than {0:?}")]
    TimedOut(Duration),
    /// The work panicked or was cancelled: a failure of ours, for this request only.
    #[error("search work failed: {0}")]
    Failed(String),
}

/// Runs search work off the async workers, a bounded number at a time, within a time limit.
/// Held once per process (the server's state) and shared by every search.
#[derive(Debug)]
pub struct SearchGuard {
    limits: SearchLimits,
    slots: Arc<Semaphore>,
    workers: Workers,
}

impl Default for SearchGuard {
    fn default() -> SearchGuard {
        SearchGuard::new(SearchLimits::default())
    }
}

impl SearchGuard {
    pub fn new(limits: SearchLimits) -> SearchGuard {
        let slots = Arc::new(Semaphore::new(limits.concurrency.max(1)));
        let workers = Workers::start(limits.concurrency, limits.nice);
        SearchGuard { limits, slots, workers }
    }

    pub fn limits(&self) -> &SearchLimits {
        &self.limits
    }

    /// Runs `work` on a search thread once a slot is free. The slot moves into the
    /// work: a search that outlives its caller's time limit keeps it until it
    /// really ends, so abandoned work can never pile up past the limit.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Refused>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let slot = tokio::time::timeout(self.limits.queue_wait, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| Refused::Busy)?
            // The semaphore is never closed; a closed one means no more searches anyway.
            .map_err(|_| Refused::Busy)?;
        let task = self.workers.run(move || {
            let answer = work();
            drop(slot);
            answer
        });
        match tokio::time::timeout(self.limits.time_limit, task).await {
            Err(_) => Err(Refused::TimedOut(self.limits.time_limit)),
            Ok(Err(panicked)) => Err(Refused::Failed(panicked.to_string())),
            Ok(Ok(answer)) => Ok(answer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(q: &str, page: usize, per_page: usize) -> SearchRequest {
        SearchRequest {
            q: q.to_owned(),
            filters: Vec::new(),
            page,
            per_page,
            facets: true,
        }
    }

    #[test]
    fn bounds_name_the_parameter_and_are_not_clamped() {
        let limits = SearchLimits::default();
        // Four clients typing never wait in line, whatever the cores.
        assert!(limits.concurrency >= MIN_CONCURRENCY);
        assert_eq!(request("dupont", 1, 20).validate(&limits), Ok(()));
        assert_eq!(request("", 100, 100).validate(&limits), Ok(()));
        assert_eq!(
            request("", 101, 100).validate(&limits),
            Err(BoundError::Window { max: 10_000 })
        );
        assert_eq!(
            request("", 1_000_000_000, 20).validate(&limits),
            Err(BoundError::Window { max: 10_000 })
        );
        assert_eq!(
            request("", usize::MAX, usize::MAX).validate(&limits),
            Err(BoundError::PerPage { max: 100 })
        );
        assert_eq!(request("", 0, 20).validate(&limits), Err(BoundError::Page));
        assert_eq!(
            request("", 1, 0).validate(&limits),
            Err(BoundError::PerPage { max: 100 })
        );
        assert_eq!(
            request("", 1, 101).validate(&limits),
            Err(BoundError::PerPage { max: 100 })
        );
        let long = "é".repeat(1_001);
        assert_eq!(
            request(&long, 1, 20).validate(&limits),
            Err(BoundError::QueryTooLong {
                chars: 1_001,
                max: 1_000
            })
        );
        assert_eq!(request(&"é".repeat(1_000), 1, 20).validate(&limits), Ok(()));
        let words = vec!["a"; 33].join(" ");
        assert_eq!(
            request(&words, 1, 20).validate(&limits),
            Err(BoundError::TooManyWords { max: 32 })
        );
        // Words as the index splits them: punctuation separates too.
        assert!(request(&vec!["a"; 33].join("-"), 1, 20).validate(&limits).is_err());
        assert!(
            BoundError::Window { max: 10_000 }
                .to_string()
                .contains("page × per_page")
        );
    }

    #[tokio::test]
    async fn guard_turns_a_panic_into_an_error_and_refuses_when_busy() {
        let guard = SearchGuard::new(SearchLimits {
            concurrency: 1,
            queue_wait: Duration::from_millis(50),
            time_limit: Duration::from_secs(2),
            ..SearchLimits::default()
        });
        assert_eq!(guard.run(|| 7).await.ok(), Some(7));
        // Search work runs niced, beside a claims path at full priority.
        assert_eq!(guard.run(crate::priority::current).await.ok(), Some(10));
        let panicked = guard.run(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(panicked, Err(Refused::Failed(_))), "{panicked:?}");
        // A search that outlives the time limit keeps its slot until it ends.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let slow = guard.run(move || wait.recv().is_ok()).await;
        assert!(matches!(slow, Err(Refused::TimedOut(_))), "{slow:?}");
        assert!(matches!(guard.run(|| 1).await, Err(Refused::Busy)));
        release.send(()).expect("the slow search still waits");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match guard.run(|| 2).await {
                Ok(2) => break,
                other => assert!(std::time::Instant::now() < deadline, "slot never freed: {other:?}"),
            }
        }
    }
}
