//! `annuaire doctor`: what is wrong with this set-up, and what to do about it. Opens the
//! store without migrating it and never starts the embedded cluster: it looks, it does not
//! fix. Exit 0 when no check is an error (warnings allowed), 1 otherwise.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::cli::DatabaseArgs;
use super::{Outcome, print_json};
use crate::signing::{KeyProblem, SealError, Sealing, SigningState};
use crate::store::embedded::EmbeddedCluster;
use crate::store::{EMBEDDED_DATABASE, JobRunStatus, MIGRATOR};

/// A published generation older than this is an error: the nightly refresh stopped.
const MAX_GENERATION_AGE_HOURS: i64 = 36;
/// Free space of the home under this share is a warning.
const MIN_FREE_DISK_PCT: f64 = 10.0;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Error,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Level,
    pub detail: String,
    /// What to do, when something is to be done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

#[derive(Default)]
struct Report(Vec<Check>);

impl Report {
    fn add(&mut self, check: &str, status: Level, detail: impl Into<String>, action: Option<&str>) {
        self.0.push(Check {
            check: check.to_owned(),
            status,
            detail: detail.into(),
            action: action.map(str::to_owned),
        });
    }
}

pub async fn run(database: &DatabaseArgs, json: bool) -> anyhow::Result<Outcome> {
    let mut report = Report::default();
    let url = database_url(database, &mut report);
    let pool = match url {
        Some(url) => connect(&url, &mut report).await,
        None => None,
    };
    let migrated = match &pool {
        Some(pool) => migrations(pool, &mut report).await,
        None => false,
    };
    let published = match (&pool, migrated) {
        (Some(pool), true) => generation(pool, &mut report).await,
        _ => None,
    };
    if let (Some(pool), true) = (&pool, migrated) {
        signing_keys(pool, &mut report).await;
    }
    let jobs = jobs(&database.jobs_dir, &mut report);
    if let (Some(pool), true) = (&pool, migrated) {
        last_runs(pool, &jobs, &mut report).await;
    }
    ca_bundle(database.ca_bundle.as_deref(), &mut report);
    search_index(&database.home, published, &mut report).await;
    disk(&database.home, &mut report);

    let worst = report.0.iter().map(|c| c.status).max().unwrap_or(Level::Ok);
    if json {
        print_json(&serde_json::json!({ "status": worst, "checks": report.0 }))?;
    } else {
        print_table(&report.0)?;
    }
    Ok(if worst == Level::Error {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}

/// The database's URL: the explicit one, or the embedded cluster's if it runs.
fn database_url(database: &DatabaseArgs, report: &mut Report) -> Option<String> {
    if let Some(url) = &database.database_url {
        return Some(url.clone());
    }
    if database.embedded == "off" {
        report.add(
            "database",
            Level::Error,
            "DATABASE_URL is not set and the embedded cluster is off (ANNUAIRE_EMBEDDED=off)",
            Some("set DATABASE_URL to the PostgreSQL server"),
        );
        return None;
    }
    let check = "embedded cluster";
    match EmbeddedCluster::status(&database.home) {
        Ok(status) if !status.initialized => {
            report.add(
                check,
                Level::Error,
                format!("no cluster under {}", status.data_dir.display()),
                Some("run any command that needs the database (annuaire migrate) to create it, or set DATABASE_URL"),
            );
            None
        }
        Ok(status) => match status.pid {
            Some(pid) => {
                report.add(
                    check,
                    Level::Ok,
                    format!("running (pid {pid}, {})", status.data_dir.display()),
                    None,
                );
                Some(status.url(EMBEDDED_DATABASE))
            }
            None => {
                report.add(
                    check,
                    Level::Error,
                    format!("stopped ({})", status.data_dir.display()),
                    Some("start it: annuaire db url (or any command that needs the database)"),
                );
                None
            }
        },
        Err(error) => {
            report.add(
                check,
                Level::Error,
                error.to_string(),
                Some("check ANNUAIRE_HOME, or set DATABASE_URL"),
            );
            None
        }
    }
}

async fn connect(url: &str, report: &mut Report) -> Option<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect(url)
        .await;
    match pool {
        Ok(pool) => {
            let version: Result<String, _> = sqlx::query_scalar("SHOW server_version").fetch_one(&pool).await;
            report.add(
                "database",
                Level::Ok,
                format!("reachable, PostgreSQL {}", version.unwrap_or_default()),
                None,
            );
            Some(pool)
        }
        Err(error) => {
            // sqlx's message names the host, never the password.
            report.add(
                "database",
                Level::Error,
                format!("unreachable: {error}"),
                Some("check DATABASE_URL (host, port, user, database) and that the server runs"),
            );
            None
        }
    }
}

/// Whether every migration of this binary is applied.
async fn migrations(pool: &PgPool, report: &mut Report) -> bool {
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await
        .unwrap_or_default();
    let pending: Vec<String> = MIGRATOR
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| format!("{:04} {}", m.version, m.description))
        .collect();
    if pending.is_empty() {
        report.add("migrations", Level::Ok, format!("{} applied", applied.len()), None);
        true
    } else {
        report.add(
            "migrations",
            Level::Error,
            format!("{} pending: {}", pending.len(), pending.join(", ")),
            Some("apply them: annuaire migrate (every server and import also does)"),
        );
        false
    }
}

/// The published generation and its age; returns its id.
async fn generation(pool: &PgPool, report: &mut Report) -> Option<i64> {
    let publication = crate::store::published::publication(pool).await.unwrap_or_default();
    let Some(id) = publication.generation.map(|g| g.0) else {
        report.add(
            "published generation",
            Level::Error,
            "nothing is published: the claims API has nothing to serve",
            Some("import an extract: annuaire import <zip, folder or URL>, or run the nightly job"),
        );
        return None;
    };
    let age = publication.published_at.map(|at| Utc::now() - at);
    let hours = age.map_or(i64::MAX, |a| a.num_hours());
    let detail = format!(
        "generation {id}, extract of {}, published {} h ago",
        publication
            .extract_ts
            .map_or("?".to_owned(), |t| t.format("%Y-%m-%d %H:%M").to_string()),
        hours
    );
    if hours > MAX_GENERATION_AGE_HOURS {
        report.add(
            "published generation",
            Level::Error,
            format!("{detail} (more than {MAX_GENERATION_AGE_HOURS} h)"),
            Some(
                "look at the nightly job's last runs (annuaire jobs list) and the held imports (annuaire imports list)",
            ),
        );
    } else {
        report.add("published generation", Level::Ok, detail, None);
    }
    Some(id)
}

/// Whether every stored signing key opens under this environment's
/// ANNUAIRE_SIGNING_KEY_SECRET, as it must on the servers: one that does not never signs,
/// and blocks rotations.
async fn signing_keys(pool: &PgPool, report: &mut Report) {
    let check = "signing keys";
    let rows = match crate::store::signing_keys::list(pool).await {
        Ok(rows) => rows,
        Err(error) => {
            report.add(check, Level::Error, format!("cannot read them: {error}"), None);
            return;
        }
    };
    if rows.is_empty() {
        let detail = "none: signed claims are off, or no server with ANNUAIRE_ISSUER started yet";
        report.add(check, Level::Ok, detail, None);
        return;
    }
    let sealing = match std::env::var("ANNUAIRE_SIGNING_KEY_SECRET") {
        Ok(secret) if !secret.is_empty() => match Sealing::from_secret(&secret) {
            Ok(sealing) => sealing,
            Err(error) => {
                report.add(check, Level::Error, error, Some("set the servers' secret"));
                return;
            }
        },
        _ => Sealing::Unsealed,
    };
    let unopened = crate::signing::unopenable(&sealing, &rows);
    let Some(newest) = unopened.first() else {
        report.add(
            check,
            Level::Ok,
            format!("{} stored, each opens here", rows.len()),
            None,
        );
        return;
    };
    if unopened
        .iter()
        .all(|bad| bad.why == KeyProblem::Seal(SealError::NoSecret))
    {
        report.add(
            check,
            Level::Warning,
            format!(
                "{} sealed, not checked: ANNUAIRE_SIGNING_KEY_SECRET is not set here",
                unopened.len()
            ),
            Some("run the doctor with the servers' ANNUAIRE_SIGNING_KEY_SECRET"),
        );
        return;
    }
    let more = match unopened.len() {
        1 => String::new(),
        n => format!(", and {} more", n - 1),
    };
    report.add(
        check,
        Level::Error,
        format!("{}{more}", SigningState::Unusable(newest.clone())),
        Some(
            "if this is the servers' ANNUAIRE_SIGNING_KEY_SECRET, remove the key: annuaire signing-keys retire <kid>; otherwise set the right secret",
        ),
    );
}

fn jobs(dir: &Path, report: &mut Report) -> Vec<String> {
    match crate::jobs::load_dir(dir) {
        Ok(jobs) if jobs.is_empty() => {
            report.add(
                "jobs",
                Level::Warning,
                format!("{}: no job definition", dir.display()),
                Some("add the nightly jobs (see jobs/ in the repository)"),
            );
            Vec::new()
        }
        Ok(jobs) => {
            for job in &jobs {
                let next = job
                    .next_fire(Utc::now())
                    .map_or("never".to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string());
                let state = if job.enabled { "enabled" } else { "disabled" };
                report.add(
                    &format!("job {}", job.name),
                    Level::Ok,
                    format!("{state}, \"{}\" ({}), next {next}", job.schedule_text, job.time_zone),
                    None,
                );
            }
            jobs.into_iter().map(|j| j.name).collect()
        }
        Err(error) => {
            report.add(
                "jobs",
                Level::Error,
                error.to_string(),
                Some("fix the file named, or point ANNUAIRE_JOBS_DIR (--jobs-dir) at the jobs folder"),
            );
            Vec::new()
        }
    }
}

async fn last_runs(pool: &PgPool, jobs: &[String], report: &mut Report) {
    let latest = crate::store::job_runs::latest_finished(pool).await.unwrap_or_default();
    for job in jobs {
        let check = format!("last run of {job}");
        match latest.iter().find(|run| &run.job == job) {
            None => report.add(&check, Level::Ok, "never run yet", None),
            Some(run) => {
                let detail = format!(
                    "{} at {}{}",
                    run.status,
                    run.started_at.format("%Y-%m-%d %H:%M UTC"),
                    run.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
                );
                let level = if matches!(run.status, JobRunStatus::Failed | JobRunStatus::Held) {
                    Level::Warning
                } else {
                    Level::Ok
                };
                let action = (level == Level::Warning).then_some(
                    "a held run waits for approval (annuaire imports diff, then approve); a failed one says why",
                );
                report.add(&check, level, detail, action);
            }
        }
    }
}

fn ca_bundle(path: Option<&Path>, report: &mut Report) {
    let Some(path) = path else {
        report.add("CA bundle", Level::Ok, "none: public roots only", None);
        return;
    };
    let settings = crate::download::DownloadSettings {
        extra_ca_bundle: Some(path.to_owned()),
        ..Default::default()
    };
    match crate::download::Downloader::new(settings) {
        Ok(_) => report.add("CA bundle", Level::Ok, format!("{} read", path.display()), None),
        Err(error) => report.add(
            "CA bundle",
            Level::Error,
            error.to_string(),
            Some("point ANNUAIRE_CA_BUNDLE at a readable PEM file of certificates"),
        ),
    }
}

async fn search_index(home: &Path, published: Option<i64>, report: &mut Report) {
    let current = home.join("search").join("current");
    let opened = tokio::task::spawn_blocking(move || crate::search::SearchIndex::open(&current))
        .await
        .ok()
        .flatten();
    let check = "search index";
    match (opened.and_then(|i| i.generation()), published) {
        (None, _) => report.add(
            check,
            Level::Warning,
            format!("none usable under {}", home.join("search").display()),
            Some("a server with admin routes builds it at start (a minute at national scale)"),
        ),
        (Some(indexed), Some(published)) if indexed.0 < published => report.add(
            check,
            Level::Warning,
            format!("generation {indexed}, behind the published {published}"),
            Some("a running server catches up by itself; otherwise start one (annuaire serve)"),
        ),
        (Some(indexed), _) => report.add(check, Level::Ok, format!("generation {indexed}"), None),
    }
}

fn disk(home: &Path, report: &mut Report) {
    let check = "disk";
    let probe = if home.exists() { home } else { Path::new(".") };
    match free_share(probe) {
        Some((free, total)) => {
            let pct = free as f64 * 100.0 / total.max(1) as f64;
            let detail = format!(
                "{:.1} GB free of {:.1} GB ({pct:.0} %) at {}",
                free as f64 / 1e9,
                total as f64 / 1e9,
                probe.display()
            );
            if pct < MIN_FREE_DISK_PCT {
                report.add(
                    check,
                    Level::Warning,
                    detail,
                    Some("free space: an import needs a few times the extract's size"),
                );
            } else {
                report.add(check, Level::Ok, detail, None);
            }
        }
        None => report.add(
            check,
            Level::Warning,
            format!("cannot read the free space of {}", probe.display()),
            None,
        ),
    }
}

/// Free and total bytes of the file system holding `path`.
#[allow(unsafe_code)] // statvfs: std has no file system statistics
fn free_share(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the plain struct it is given; the path is NUL-terminated.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return None;
    }
    let unit = stats.f_frsize as u64;
    Some((stats.f_bavail as u64 * unit, stats.f_blocks as u64 * unit))
}

fn print_table(checks: &[Check]) -> std::io::Result<()> {
    let width = checks.iter().map(|c| c.check.chars().count()).max().unwrap_or(0);
    for check in checks {
        let status = match check.status {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "ERROR",
        };
        crate::out!("{:<width$}  {status:<7}  {}", check.check, check.detail)?;
        if let Some(action) = &check.action {
            crate::out!("{:<width$}  {:<7}  → {action}", "", "")?;
        }
    }
    Ok(())
}
