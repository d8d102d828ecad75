//! Job definitions: one TOML file per scheduled job in the jobs folder, validated at start-up
//! (and by a test) so that a bad cron expression or an unknown key is found before the
//! night it would have mattered, with the file name and the reason. A file cannot make a
//! job hammer its source: retries and fire times have floors (tests that need faster ones
//! set them on the definition in code).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::download::RetryPolicy;
use crate::import::GateThresholds;
use crate::settings::{BACKOFF_SECONDS, Bounds, PERCENT, RETENTION_DAYS, RETRY_ATTEMPTS, RETRY_SECONDS, SHARE};
use crate::store::retention::DEFAULT_RETENTION_DAYS;

/// What a job imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// The PS_LibreAcces zip (the directory itself).
    PsLibreacces,
    /// The MSSanté mailbox extract.
    Mssante,
    /// Retention: purges the professionals removed longer ago than `retention_days`, with
    /// their history. Downloads nothing.
    Purge,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    name: String,
    kind: JobKind,
    /// Cron with seconds: `sec min hour day-of-month month day-of-week`.
    schedule: String,
    #[serde(default = "paris")]
    time_zone: String,
    /// Official URL first, mirrors after: each is tried in turn (none for a purge).
    #[serde(default)]
    sources: Vec<String>,
    /// A purge's retention period, in days (default 400).
    retention_days: Option<i32>,
    #[serde(default = "enabled")]
    enabled: bool,
    /// Where a failed or held run is announced (a JSON POST).
    notify_url: Option<String>,
    #[serde(default)]
    gate: GateFile,
    #[serde(default)]
    retry: RetryFile,
    /// Refuse a download smaller than this share of the last published extract.
    #[serde(default = "min_size_ratio")]
    min_size_ratio: f64,
}

fn paris() -> String {
    "Europe/Paris".to_owned()
}

fn enabled() -> bool {
    true
}

fn min_size_ratio() -> f64 {
    0.5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct GateFile {
    max_removed_pct: f64,
    max_changed_pct: f64,
    max_reject_pct: f64,
}

impl Default for GateFile {
    fn default() -> Self {
        let gate = GateThresholds::default();
        GateFile {
            max_removed_pct: gate.max_removed_pct,
            max_changed_pct: gate.max_changed_pct,
            max_reject_pct: 0.1,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RetryFile {
    attempts: u32,
    initial_backoff_seconds: f64,
    max_backoff_seconds: f64,
    total_seconds: f64,
}

impl Default for RetryFile {
    fn default() -> Self {
        let retry = RetryPolicy::default();
        RetryFile {
            attempts: retry.attempts,
            initial_backoff_seconds: retry.initial_backoff.as_secs_f64(),
            max_backoff_seconds: retry.max_backoff.as_secs_f64(),
            total_seconds: retry.total.as_secs_f64(),
        }
    }
}

/// A validated job.
#[derive(Debug, Clone)]
pub struct JobDefinition {
    pub name: String,
    pub kind: JobKind,
    pub schedule: cron::Schedule,
    pub schedule_text: String,
    pub time_zone: Tz,
    pub sources: Vec<String>,
    pub enabled: bool,
    pub notify_url: Option<String>,
    pub gate: GateThresholds,
    pub max_reject_pct: f64,
    pub retry: RetryPolicy,
    pub min_size_ratio: f64,
    /// A purge's retention period, in days.
    pub retention_days: i32,
    pub file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("jobs folder {dir}: {reason}")]
    Folder { dir: String, reason: String },
}

impl JobDefinition {
    /// The next fire time after `now`, in UTC (daylight saving handled in the job's zone).
    pub fn next_fire(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&now.with_timezone(&self.time_zone))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn parse(file: &Path, text: &str) -> Result<JobDefinition, DefinitionError> {
        let invalid = |reason: String| DefinitionError::Invalid {
            file: file.display().to_string(),
            reason,
        };
        let raw: JobFile = toml::from_str(text).map_err(|e| invalid(e.to_string().trim().replace('\n', " ")))?;
        if raw.name.is_empty()
            || !raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(format!(
                "name {:?}: use letters, digits, '-' and '_'",
                raw.name
            )));
        }
        let schedule = cron::Schedule::from_str(&raw.schedule).map_err(|e| {
            invalid(format!(
                "schedule {:?} is not a cron expression with seconds ({e})",
                raw.schedule
            ))
        })?;
        let time_zone: Tz = raw
            .time_zone
            .parse()
            .map_err(|_| invalid(format!("unknown time zone {:?}", raw.time_zone)))?;
        if let Some((first, second)) = fires_too_close(&schedule, time_zone) {
            return Err(invalid(format!(
                "schedule {:?} fires at {} and again at {}: fire times must be at least {} s apart",
                raw.schedule,
                first.to_rfc3339(),
                second.to_rfc3339(),
                MIN_FIRE_INTERVAL.num_seconds()
            )));
        }
        let purge = raw.kind == JobKind::Purge;
        if purge && !raw.sources.is_empty() {
            return Err(invalid("sources: a purge downloads nothing; remove them".to_owned()));
        }
        if !purge && raw.sources.is_empty() {
            return Err(invalid("sources: at least one URL".to_owned()));
        }
        if !purge && raw.retention_days.is_some() {
            return Err(invalid("retention_days: only a purge job has one".to_owned()));
        }
        let retention_days = bounded(
            RETENTION_DAYS,
            "retention_days",
            raw.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS),
        )
        .map_err(invalid)?;
        for url in raw.sources.iter().chain(raw.notify_url.iter()) {
            if !crate::download::is_remote(url) {
                return Err(invalid(format!("{url:?} is not an http(s) URL")));
            }
        }
        let gate = GateThresholds {
            max_removed_pct: bounded(PERCENT, "gate.max_removed_pct", raw.gate.max_removed_pct).map_err(invalid)?,
            max_changed_pct: bounded(PERCENT, "gate.max_changed_pct", raw.gate.max_changed_pct).map_err(invalid)?,
        };
        let max_reject_pct = bounded(PERCENT, "gate.max_reject_pct", raw.gate.max_reject_pct).map_err(invalid)?;
        // Bounded first: `Duration::from_secs_f64` panics on a value too large for it.
        let seconds =
            |bounds: Bounds<f64>, name: &str, value: f64| bounded(bounds, name, value).map(Duration::from_secs_f64);
        let retry = RetryPolicy {
            attempts: bounded(RETRY_ATTEMPTS, "retry.attempts", raw.retry.attempts).map_err(invalid)?,
            initial_backoff: seconds(
                BACKOFF_SECONDS,
                "retry.initial_backoff_seconds",
                raw.retry.initial_backoff_seconds,
            )
            .map_err(invalid)?,
            max_backoff: seconds(
                BACKOFF_SECONDS,
                "retry.max_backoff_seconds",
                raw.retry.max_backoff_seconds,
            )
            .map_err(invalid)?,
            total: seconds(RETRY_SECONDS, "retry.total_seconds", raw.retry.total_seconds).map_err(invalid)?,
        };
        let min_size_ratio = bounded(SHARE, "min_size_ratio", raw.min_size_ratio).map_err(invalid)?;
        Ok(JobDefinition {
            name: raw.name,
            kind: raw.kind,
            schedule,
            schedule_text: raw.schedule,
            time_zone,
            sources: raw.sources,
            enabled: raw.enabled,
            notify_url: raw.notify_url,
            gate,
            max_reject_pct,
            retry,
            min_size_ratio,
            retention_days,
            file: file.to_owned(),
        })
    }
}

/// The shortest time allowed between two fire times of a schedule: a cron of every second
/// once ran 40 jobs and 21 full downloads in 20 s.
const MIN_FIRE_INTERVAL: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// How many fire times of a schedule are compared.
const CHECKED_FIRES: usize = 1000;
/// Where the comparison starts (2026-01-01T00:00:00Z): a fixed instant, so that a file is
/// judged alike whatever the day and the host.
const CHECK_FROM_SECONDS: i64 = 1_767_225_600;

/// The first two consecutive fire times of the schedule's next [`CHECKED_FIRES`] (from a
/// fixed start, in the job's time zone) that are under [`MIN_FIRE_INTERVAL`] apart.
fn fires_too_close(schedule: &cron::Schedule, time_zone: Tz) -> Option<(DateTime<Tz>, DateTime<Tz>)> {
    let start = DateTime::from_timestamp(CHECK_FROM_SECONDS, 0)
        .unwrap_or_default()
        .with_timezone(&time_zone);
    let mut previous: Option<DateTime<Tz>> = None;
    for fire in schedule.after(&start).take(CHECKED_FIRES) {
        if let Some(before) = previous
            && fire - before < MIN_FIRE_INTERVAL
        {
            return Some((before, fire));
        }
        previous = Some(fire);
    }
    None
}

/// A job file's number checked by its setting's bounds, the ones the flags use; the error
/// names the key as the file writes it (`gate.max_removed_pct = NaN is not ...`).
fn bounded<T>(bounds: Bounds<T>, name: &str, value: T) -> Result<T, String>
where
    T: Copy + PartialOrd + FromStr + std::fmt::Display + Send + Sync + 'static,
{
    bounds.check(value).map_err(|e| format!("{name} = {e}"))
}

/// Every `*.toml` of the folder, validated; names must be unique.
pub fn load_dir(dir: &Path) -> Result<Vec<JobDefinition>, DefinitionError> {
    let folder = |reason: String| DefinitionError::Folder {
        dir: dir.display().to_string(),
        reason,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| folder(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut jobs: Vec<JobDefinition> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| DefinitionError::Invalid {
            file: file.display().to_string(),
            reason: e.to_string(),
        })?;
        let job = JobDefinition::parse(&file, &text)?;
        if let Some(other) = jobs.iter().find(|j| j.name == job.name) {
            return Err(DefinitionError::Invalid {
                file: file.display().to_string(),
                reason: format!("job name {:?} is also used by {}", job.name, other.file.display()),
            });
        }
        jobs.push(job);
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = r#"
        name = "nightly"
        kind = "ps_libreacces"
        schedule = "0 30 10 * * *"
        sources = ["https://example.invalid/PS_LibreAcces"]
    "#;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_fire_follows_paris_time_across_daylight_saving_changes() {
        let job = JobDefinition::parse(Path::new("nightly.toml"), JOB).unwrap();
        // Winter: 10:30 Paris is 09:30 UTC; the clocks go forward on 2027-03-28.
        assert_eq!(
            job.next_fire(utc("2027-03-27T09:31:00Z")).unwrap(),
            utc("2027-03-28T08:30:00Z")
        );
        assert_eq!(
            job.next_fire(utc("2027-03-26T12:00:00Z")).unwrap(),
            utc("2027-03-27T09:30:00Z")
        );
        // And back on 2027-10-31.
        assert_eq!(
            job.next_fire(utc("2027-10-30T08:31:00Z")).unwrap(),
            utc("2027-10-31T09:30:00Z")
        );
    }

    #[test]
    fn an_hour_that_does_not_exist_is_not_fired_twice_nor_lost_forever() {
        let text = JOB.replace("0 30 10 * * *", "0 30 2 * * *");
        let job = JobDefinition::parse(Path::new("night.toml"), &text).unwrap();
        // 02:30 does not exist in Paris on 2027-03-28: the next fire is a real instant.
        let next = job.next_fire(utc("2027-03-27T02:00:00Z")).unwrap();
        assert!(next > utc("2027-03-27T02:00:00Z"));
        let after = job.next_fire(next).unwrap();
        assert!(after > next);
    }

    #[test]
    fn errors_name_the_file_and_the_reason() {
        let bad_cron =
            JobDefinition::parse(Path::new("jobs/a.toml"), &JOB.replace("0 30 10 * * *", "every night")).unwrap_err();
        let text = bad_cron.to_string();
        assert!(text.starts_with("jobs/a.toml: schedule \"every night\""), "{text}");
        let unknown = JobDefinition::parse(Path::new("jobs/b.toml"), &format!("{JOB}\ncolour = \"blue\"")).unwrap_err();
        assert!(
            unknown.to_string().contains("jobs/b.toml") && unknown.to_string().contains("colour"),
            "{unknown}"
        );
        let zone =
            JobDefinition::parse(Path::new("c.toml"), &format!("{JOB}\ntime_zone = \"Mars/Olympus\"")).unwrap_err();
        assert!(
            zone.to_string().contains("unknown time zone \"Mars/Olympus\""),
            "{zone}"
        );
        let source = JobDefinition::parse(
            Path::new("d.toml"),
            &JOB.replace("https://example.invalid/PS_LibreAcces", "ftp://x"),
        )
        .unwrap_err();
        assert!(source.to_string().contains("not an http(s) URL"), "{source}");
    }

    #[test]
    fn a_purge_job_downloads_nothing_and_keeps_400_days_unless_told() {
        let purge = "name = \"purge\"\nkind = \"purge\"\nschedule = \"0 30 4 * * *\"\n";
        let job = JobDefinition::parse(Path::new("p.toml"), purge).unwrap();
        assert_eq!((job.kind, job.retention_days), (JobKind::Purge, 400));
        let job = JobDefinition::parse(Path::new("p.toml"), &format!("{purge}retention_days = 30\n")).unwrap();
        assert_eq!(job.retention_days, 30);
        let sources = JobDefinition::parse(
            Path::new("p.toml"),
            &format!("{purge}sources = [\"https://x.invalid/\"]\n"),
        );
        assert!(sources.unwrap_err().to_string().contains("a purge downloads nothing"));
        let zero = JobDefinition::parse(Path::new("p.toml"), &format!("{purge}retention_days = 0\n"));
        assert!(zero.unwrap_err().to_string().contains("retention_days = 0 is not"));
        let import = JobDefinition::parse(Path::new("i.toml"), &format!("{JOB}retention_days = 30\n"));
        assert!(import.unwrap_err().to_string().contains("only a purge job"));
    }

    fn error_of(file: &str, text: &str) -> String {
        JobDefinition::parse(Path::new(file), text).unwrap_err().to_string()
    }

    #[test]
    fn retries_cannot_hammer_the_source() {
        // The probe's settings: a million attempts without a pause.
        let flood = format!("{JOB}[retry]\nattempts = 1000000\ninitial_backoff_seconds = 0\n");
        let error = error_of("jobs/flood.toml", &flood);
        assert_eq!(
            error,
            "jobs/flood.toml: retry.attempts = 1000000 is not a number of attempts from 1 to 20"
        );
        let error = error_of("jobs/a.toml", &format!("{JOB}[retry]\nattempts = 0\n"));
        assert!(error.contains("retry.attempts = 0 is not"), "{error}");
        for key in ["initial_backoff_seconds", "max_backoff_seconds"] {
            for value in ["0", "0.5"] {
                let error = error_of("jobs/b.toml", &format!("{JOB}[retry]\n{key} = {value}\n"));
                assert_eq!(
                    error,
                    format!("jobs/b.toml: retry.{key} = {value} is not a number of seconds from 1 to 86400 (a day)")
                );
            }
        }
        let edge = format!("{JOB}[retry]\nattempts = 20\ninitial_backoff_seconds = 1\nmax_backoff_seconds = 1\n");
        let job = JobDefinition::parse(Path::new("c.toml"), &edge).unwrap();
        assert_eq!(
            (job.retry.attempts, job.retry.initial_backoff, job.retry.max_backoff),
            (20, Duration::from_secs(1), Duration::from_secs(1))
        );
    }

    #[test]
    fn a_schedule_firing_twice_within_a_minute_is_refused_with_the_two_times() {
        let every_second = JOB.replace("0 30 10 * * *", "* * * * * *");
        assert_eq!(
            error_of("jobs/fast.toml", &every_second),
            "jobs/fast.toml: schedule \"* * * * * *\" fires at 2026-01-01T01:00:01+01:00 and again at \
             2026-01-01T01:00:02+01:00: fire times must be at least 60 s apart"
        );
        // Rare but close: two fires 30 s apart once a day, found among the next 1,000.
        let pair = JOB.replace("0 30 10 * * *", "0,30 0 3 * * *");
        let error = error_of("jobs/pair.toml", &pair);
        assert!(
            error.contains("fires at 2026-01-01T03:00:00+01:00 and again at 2026-01-01T03:00:30+01:00"),
            "{error}"
        );
        let half_minutes = format!(
            "{}time_zone = \"UTC\"\n",
            JOB.replace("0 30 10 * * *", "*/30 * * * * *")
        );
        assert!(
            error_of("jobs/half.toml", &half_minutes)
                .contains("fires at 2026-01-01T00:00:30+00:00 and again at 2026-01-01T00:01:00+00:00")
        );
        // Once a minute is the floor itself, and passes.
        let minutely = JOB.replace("0 30 10 * * *", "0 * * * * *");
        assert!(JobDefinition::parse(Path::new("m.toml"), &minutely).is_ok());
        // Daylight saving repeats 02:30 on the night clocks go back: an hour apart, allowed.
        let night = JOB.replace("0 30 10 * * *", "0 30 2 * * *");
        assert!(JobDefinition::parse(Path::new("n.toml"), &night).is_ok());
    }
}
