//! When and how long to wait before trying a download again: exponential back-off with
//! jitter, the server's `Retry-After` honoured, everything bounded. Pure.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The retry policy of one download.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// No retry starts after this much time since the first attempt.
    pub total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
            total: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `next` (2 for the first retry): `initial × 2^(next-2)`, capped,
    /// times a jitter factor in [0.5, 1.5) so that a fleet does not retry in step; a
    /// `Retry-After` from the server wins when it asks for longer (still capped).
    pub fn backoff(&self, next: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exponent = next.saturating_sub(2).min(20);
        let base = self.initial_backoff.saturating_mul(1 << exponent).min(self.max_backoff);
        let jittered = base.mul_f64(0.5 + jitter.clamp(0.0, 1.0));
        match retry_after {
            Some(asked) if asked > jittered => asked.min(self.max_backoff),
            _ => jittered.min(self.max_backoff),
        }
    }
}

/// `Retry-After` as seconds or as an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    (date - now).to_std().ok()
}

/// A jitter factor in [0, 1) from the clock's nanoseconds: no need for a random generator
/// to spread retries.
pub fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let policy = RetryPolicy {
            attempts: 10,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            total: Duration::from_secs(600),
        };
        assert_eq!(policy.backoff(2, None, 0.5), Duration::from_secs(2));
        assert_eq!(policy.backoff(3, None, 0.5), Duration::from_secs(4));
        assert_eq!(policy.backoff(4, None, 0.0), Duration::from_secs(4));
        assert_eq!(policy.backoff(9, None, 0.5), Duration::from_secs(60));
        assert_eq!(
            policy.backoff(2, Some(Duration::from_secs(30)), 0.5),
            Duration::from_secs(30)
        );
        assert_eq!(
            policy.backoff(2, Some(Duration::from_secs(3000)), 0.5),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 09:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
