//! The ranges of the numeric settings. One `Bounds` per kind of setting is its only parser:
//! clap uses it for the flag and the environment (and so for the config file, whose values
//! go through the flag's parser), the job files for their thresholds, so that a value is
//! refused alike wherever it is written, with the setting's name. Not-a-number and the
//! infinities are refused with the out-of-range values: a NaN threshold compares false with
//! everything, and the safety gate it sets would never hold a run.

use std::fmt::Display;
use std::str::FromStr;

/// A value outside its setting's range, or not a number at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} is not {expected}")]
pub struct OutOfRange {
    pub value: String,
    pub expected: &'static str,
}

/// The inclusive range of one kind of setting, and how an error describes it.
#[derive(Debug, Clone, Copy)]
pub struct Bounds<T> {
    pub min: T,
    pub max: T,
    pub expected: &'static str,
}

/// The safety gate's thresholds (removed, changed) and the rejected lines' share, in percent.
pub const PERCENT: Bounds<f64> = Bounds {
    min: 0.0,
    max: 100.0,
    expected: "a percentage from 0 to 100",
};

/// A job's `min_size_ratio`: a share of the last published extract's size.
pub const SHARE: Bounds<f64> = Bounds {
    min: 0.0,
    max: 1.0,
    expected: "a share from 0 to 1",
};

/// The CPU niceness of imports (Linux's range for an unprivileged process to lower itself).
pub const NICE: Bounds<i32> = Bounds {
    min: 0,
    max: 19,
    expected: "a niceness from 0 to 19",
};

/// The longest extract line read (real lines are about 400 bytes; one line of this size
/// is the most an import holds in memory at once).
pub const LINE_BYTES: Bounds<usize> = Bounds {
    min: 4 << 10,
    max: 64 << 20,
    expected: "a number of bytes from 4096 (4 KiB) to 67108864 (64 MiB)",
};

/// The lifetime of a signed claims document.
pub const JWT_TTL_SECONDS: Bounds<u64> = Bounds {
    min: 30,
    max: 86_400,
    expected: "a number of seconds from 30 to 86400 (a day)",
};

/// How long a removed professional is kept before the purge.
pub const RETENTION_DAYS: Bounds<i32> = Bounds {
    min: 1,
    max: 36_500,
    expected: "a number of days from 1 to 36500",
};

/// A job's download retries' total time: a nightly job's retries end within the day.
pub const RETRY_SECONDS: Bounds<f64> = Bounds {
    min: 0.0,
    max: 86_400.0,
    expected: "a number of seconds from 0 to 86400 (a day)",
};

/// A job's download back-off delays (initial and cap). At least a second: a zero back-off
/// once sent about 680 requests a second to the publisher.
pub const BACKOFF_SECONDS: Bounds<f64> = Bounds {
    min: 1.0,
    max: 86_400.0,
    expected: "a number of seconds from 1 to 86400 (a day)",
};

/// A job's download attempts per source, the first one included: with the back-off's
/// floor, a source is asked at most this many times a run.
pub const RETRY_ATTEMPTS: Bounds<u32> = Bounds {
    min: 1,
    max: 20,
    expected: "a number of attempts from 1 to 20",
};

impl<T> Bounds<T>
where
    T: Copy + PartialOrd + FromStr + Display + Send + Sync + 'static,
{
    /// `value` if it is within the bounds.
    pub fn check(self, value: T) -> Result<T, OutOfRange> {
        // `contains` compares with `<=`, false for NaN whatever the bounds.
        if (self.min..=self.max).contains(&value) {
            Ok(value)
        } else {
            Err(OutOfRange {
                value: value.to_string(),
                expected: self.expected,
            })
        }
    }

    /// The text as a number within the bounds.
    pub fn parse(self, text: &str) -> Result<T, OutOfRange> {
        let value = text.parse::<T>().map_err(|_| OutOfRange {
            value: format!("{text:?}"),
            expected: self.expected,
        })?;
        self.check(value)
    }

    /// For clap's `value_parser`: it names the flag in front of the error.
    pub fn parser(self) -> impl Fn(&str) -> Result<T, OutOfRange> + Clone + Send + Sync + 'static {
        move |text| self.parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_number_and_the_infinities_are_refused() {
        for text in [
            "nan", "NaN", "inf", "-inf", "infinity", "101", "-1", "100.0001", "", "ten",
        ] {
            let error = PERCENT.parse(text).unwrap_err();
            assert_eq!(error.expected, "a percentage from 0 to 100", "{text}");
        }
        assert_eq!(
            PERCENT.parse("nan").unwrap_err().to_string(),
            "NaN is not a percentage from 0 to 100"
        );
        assert!(SHARE.check(f64::NAN).is_err());
        assert!(SHARE.check(f64::INFINITY).is_err());
    }

    #[test]
    fn the_bounds_themselves_are_accepted() {
        assert_eq!(PERCENT.parse("0"), Ok(0.0));
        assert_eq!(PERCENT.parse("100"), Ok(100.0));
        assert_eq!(PERCENT.parse("0.1"), Ok(0.1));
        assert_eq!(SHARE.parse("1"), Ok(1.0));
        assert_eq!(NICE.parse("0"), Ok(0));
        assert_eq!(NICE.parse("19"), Ok(19));
        assert!(NICE.parse("20").is_err() && NICE.parse("-1").is_err());
        assert_eq!(LINE_BYTES.parse("4096"), Ok(4096));
        assert_eq!(LINE_BYTES.parse("67108864"), Ok(64 << 20));
        assert!(LINE_BYTES.parse("4095").is_err() && LINE_BYTES.parse("67108865").is_err());
        assert!(LINE_BYTES.parse("0").is_err());
        assert_eq!(JWT_TTL_SECONDS.parse("30"), Ok(30));
        assert_eq!(JWT_TTL_SECONDS.parse("86400"), Ok(86_400));
        assert!(JWT_TTL_SECONDS.parse("29").is_err() && JWT_TTL_SECONDS.parse("86401").is_err());
        assert_eq!(RETENTION_DAYS.parse("1"), Ok(1));
        assert_eq!(RETENTION_DAYS.parse("36500"), Ok(36_500));
        assert!(RETENTION_DAYS.parse("0").is_err() && RETENTION_DAYS.parse("36501").is_err());
        assert_eq!(BACKOFF_SECONDS.parse("1"), Ok(1.0));
        assert_eq!(BACKOFF_SECONDS.parse("86400"), Ok(86_400.0));
        assert!(BACKOFF_SECONDS.parse("0").is_err() && BACKOFF_SECONDS.parse("0.999").is_err());
        assert_eq!(RETRY_ATTEMPTS.parse("1"), Ok(1));
        assert_eq!(RETRY_ATTEMPTS.parse("20"), Ok(20));
        assert!(RETRY_ATTEMPTS.parse("0").is_err() && RETRY_ATTEMPTS.parse("21").is_err());
    }

    #[test]
    fn the_defaults_are_within_their_bounds() {
        let gate = crate::import::GateThresholds::default();
        assert!(PERCENT.check(gate.max_removed_pct).is_ok() && PERCENT.check(gate.max_changed_pct).is_ok());
        assert!(LINE_BYTES.check(crate::extract::DEFAULT_MAX_LINE_BYTES).is_ok());
        assert!(
            RETENTION_DAYS
                .check(crate::store::retention::DEFAULT_RETENTION_DAYS)
                .is_ok()
        );
        let retry = crate::download::RetryPolicy::default();
        assert!(RETRY_ATTEMPTS.check(retry.attempts).is_ok());
        assert!(BACKOFF_SECONDS.check(retry.initial_backoff.as_secs_f64()).is_ok());
        assert!(BACKOFF_SECONDS.check(retry.max_backoff.as_secs_f64()).is_ok());
    }
}
