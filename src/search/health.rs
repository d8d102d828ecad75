//! Whether the index served is stale: behind the published generation and either its last
//! update failed (a full disk, the store down) or it has been behind for too long. The
//! search follower tells it; `/readyz` and `/metrics` read it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Behind for longer than this is stale even while no update has failed yet (a rebuild at
/// national scale takes a minute or two).
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Default)]
pub struct SearchHealth {
    state: Mutex<Catching>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Catching {
    /// Since when the index has had a generation or purge to catch up with.
    behind_since: Option<Instant>,
    /// The last attempt to catch up failed.
    failed: bool,
}

impl SearchHealth {
    /// The index has something to catch up with (it was not behind: from now).
    pub fn behind(&self) {
        self.change(|c| {
            if c.behind_since.is_none() {
                c.behind_since = Some(Instant::now());
            }
        });
    }

    /// The last attempt to catch up failed; the index stays behind.
    pub fn failed(&self) {
        self.change(|c| {
            if c.behind_since.is_none() {
                c.behind_since = Some(Instant::now());
            }
            c.failed = true;
        });
    }

    /// The index holds what is published.
    pub fn caught_up(&self) {
        self.change(|c| *c = Catching::default());
    }

    pub fn stale(&self) -> bool {
        self.stale_at(Instant::now())
    }

    fn stale_at(&self, now: Instant) -> bool {
        let catching = self.state.lock().map(|c| *c).unwrap_or_else(|e| *e.into_inner());
        catching
            .behind_since
            .is_some_and(|since| catching.failed || now.saturating_duration_since(since) > STALE_AFTER)
    }

    fn change(&self, change: impl FnOnce(&mut Catching)) {
        // Two plain fields, always whole: a poisoned lock still holds a usable state.
        change(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_when_behind_and_failed_or_behind_too_long() {
        let health = SearchHealth::default();
        let now = Instant::now();
        assert!(!health.stale_at(now), "up to date");
        health.behind();
        assert!(!health.stale_at(now), "an update under way");
        assert!(
            health.stale_at(now + STALE_AFTER + Duration::from_secs(1)),
            "too long behind"
        );
        health.failed();
        assert!(health.stale_at(now), "its update failed");
        health.caught_up();
        assert!(!health.stale_at(now + STALE_AFTER * 2), "caught up");
    }
}
