//! Scheduled jobs against a local server playing the publisher: a nightly run end to end,
//! unchanged extracts skipped without a download, every way the source can misbehave, one
//! run per fleet, the webhook, shutdown, and the admin API.

mod common;

use std::path::Path;
use std::time::Duration;

use annuaire::download::{DownloadSettings, Downloader, RetryPolicy};
use annuaire::http::HookSettings;
use annuaire::jobs::{JobDefinition, RunnerSettings, Trigger, runner};
use annuaire::keys::{self, Scope};
use annuaire::server::ServerConfig;
use common::server::{TestServer, wait_for};
use common::source::{Reply, SourceServer};
use common::{migrated_db, samples};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const ZIP_NAME: &str = "PS_LibreAcces_202611250900.zip";

fn zip_of(sample: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.zip");
    common::fixtures::zip_dir(&samples().join(sample), &path);
    std::fs::read(path).unwrap()
}

fn job(sources: &[&str], extra: &str) -> JobDefinition {
    let list: Vec<String> = sources.iter().map(|s| format!("{s:?}")).collect();
    let text = format!(
        "name = \"nightly-test\"\nkind = \"ps_libreacces\"\nschedule = \"0 45 10 * * *\"\nsources = [{}]\n{extra}\n",
        list.join(", ")
    );
    let mut job = JobDefinition::parse(Path::new("nightly-test.toml"), &text).expect("valid job");
    // Below the job files' floor of a second, which is for the real publisher: set in code.
    job.retry = RetryPolicy {
        attempts: 4,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(2),
        total: Duration::from_secs(30),
    };
    job
}

/// `job` firing every second: under the job files' floor of a minute, so set in code.
fn every_second(mut job: JobDefinition) -> JobDefinition {
    job.schedule_text = "* * * * * *".to_owned();
    job.schedule = job.schedule_text.parse().expect("a cron expression");
    job
}

fn settings() -> RunnerSettings {
    RunnerSettings {
        work_dir: std::env::temp_dir(),
        downloader: Downloader::new(DownloadSettings {
            read_timeout: Duration::from_millis(700),
            ..DownloadSettings::default()
        })
        .expect("client"),
        nice: 10,
    }
}

async fn run(pool: &PgPool, job: &JobDefinition) -> runner::JobRun {
    runner::run(pool, job, Trigger::Manual, None, &settings(), &CancellationToken::new())
        .await
        .expect("recorded")
}

async fn published(pool: &PgPool) -> Option<annuaire::store::RunId> {
    annuaire::store::runs::current_generation(pool).await.unwrap()
}

#[test]
fn shipped_job_definitions_are_valid() {
    let jobs = annuaire::jobs::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs")).expect("jobs/ validates");
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["nightly-mssante", "nightly-ps-libreacces", "retention-purge"]
    );
    assert_eq!(jobs[2].retention_days, 400, "the documented default");
    assert!(
        jobs.iter()
            .all(|j| j.enabled && j.time_zone == chrono_tz::Europe::Paris)
    );
    assert!(
        jobs[1].sources[0].starts_with("https://service.annuaire.sante.fr/"),
        "official source first"
    );
}

#[test]
fn a_bad_definition_fails_with_its_file_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        "name = \"x\"\nkind = \"ps_libreacces\"\nschedule = \"61 * * * * *\"\nsources = [\"https://a.invalid/\"]\n",
    )
    .unwrap();
    let error = annuaire::jobs::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("broken.toml") && error.contains("schedule \"61 * * * * *\""),
        "{error}"
    );
    std::fs::write(dir.path().join("broken.toml"), "name = \"x\"\nkind = \"ps_libreacces\"\nschedule = \"0 0 1 * * *\"\nsources = [\"https://a.invalid/\"]\nretries = 3\n").unwrap();
    let error = annuaire::jobs::load_dir(dir.path()).unwrap_err().to_string();
    assert!(error.contains("broken.toml") && error.contains("retries"), "{error}");
}

#[tokio::test]
async fn nightly_run_end_to_end_then_the_same_extract_is_skipped_without_download() {
    let db = migrated_db().await;
    let pool = db.pool.clone();
    let source = SourceServer::start(ZIP_NAME, zip_of("ps-libreacces"), vec![]).await;
    let job = job(&[&source.url], "");
    let first = run(&pool, &job).await;
    assert_eq!(first.status, "published", "{:?}", first.message);
    assert_eq!(first.bytes, Some(zip_of("ps-libreacces").len() as i64));
    assert!(first.import_run_id.is_some());
    assert_eq!(source.count("GET"), 1);
    let key = keys::create(&pool, "idp", &[Scope::Claims]).await.unwrap().1;
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;
    assert_eq!(
        server.get("/v1/claims/810003456125", &key).await.status(),
        200,
        "the claims API serves it"
    );
    server.stop().await;

    let second = run(&pool, &job).await;
    assert_eq!(second.status, "skipped", "{:?}", second.message);
    assert!(second.message.unwrap().contains("unchanged"));
    assert_eq!(source.count("GET"), 1, "no second download: {:?}", source.requests());
    assert_eq!(source.count("HEAD"), 2);
}

#[tokio::test]
async fn rate_limits_unavailability_and_cut_connections_are_retried() {
    for (script, gets) in [
        (
            vec![Reply::Status {
                status: 429,
                retry_after: Some("1"),
            }],
            2,
        ),
        (
            vec![
                Reply::Status {
                    status: 503,
                    retry_after: None
                };
                3
            ],
            4,
        ),
        (vec![Reply::CutAfter(400)], 2),
    ] {
        let db = migrated_db().await;
        let pool = db.pool.clone();
        let source = SourceServer::start(ZIP_NAME, zip_of("ps-libreacces"), script.clone()).await;
        let outcome = run(&pool, &job(&[&source.url], "")).await;
        assert_eq!(outcome.status, "published", "{script:?}: {:?}", outcome.message);
        assert_eq!(source.count("GET"), gets, "{script:?}");
    }
}

/// Each failure ends in a clear run record, and the published generation stays served.
#[tokio::test]
async fn broken_sources_fail_clearly_and_keep_the_published_generation() {
    let db = migrated_db().await;
    let pool = db.pool.clone();
    let day1 = SourceServer::start(ZIP_NAME, zip_of("ps-libreacces"), vec![]).await;
    assert_eq!(run(&pool, &job(&[&day1.url], "")).await.status, "published");
    let generation = published(&pool).await;
    let day2 = zip_of("ps-libreacces-day2");
    let stall = Reply::Stall(Duration::from_secs(3));
    for (script, expected) in [
        (vec![stall.clone(), stall.clone(), stall.clone(), stall], "timed out"),
        (vec![Reply::Html], "HTML page"),
        (vec![Reply::Truncated(day2.len() * 3 / 4)], "not a readable zip"),
        (
            vec![Reply::Status {
                status: 404,
                retry_after: None,
            }],
            "answered 404",
        ),
    ] {
        let source = SourceServer::start("PS_LibreAcces_202611260900.zip", day2.clone(), script.clone()).await;
        let outcome = run(&pool, &job(&[&source.url], "")).await;
        assert_eq!(outcome.status, "failed", "{script:?}");
        let message = outcome.message.unwrap_or_default();
        assert!(message.contains(expected), "{script:?}: {message}");
        assert_eq!(
            published(&pool).await,
            generation,
            "{script:?} changed the published generation"
        );
    }
    // A zip of something else, and a file far smaller than the last published one.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.zip");
    std::fs::create_dir(dir.path().join("content")).unwrap();
    let text = samples().join("ps-libreacces-day2/PS_LibreAcces_Personne_activite_202611260900.txt");
    std::fs::copy(text, dir.path().join("content/notes.txt")).unwrap();
    common::fixtures::zip_dir(&dir.path().join("content"), &other);
    let source = SourceServer::start("PS_LibreAcces_202611260900.zip", std::fs::read(&other).unwrap(), vec![]).await;
    let outcome = run(&pool, &job(&[&source.url], "")).await;
    assert_eq!(outcome.status, "failed");
    assert!(outcome.message.unwrap().contains("no extract file found"));
    let tiny = SourceServer::start("PS_LibreAcces_202611260900.zip", b"PK\x03\x04tiny".to_vec(), vec![]).await;
    let outcome = run(&pool, &job(&[&tiny.url], "")).await;
    assert!(
        outcome
            .message
            .unwrap()
            .contains("far smaller than the last published extract")
    );
}

#[tokio::test]
async fn the_mirror_is_used_when_the_official_source_fails() {
    let db = migrated_db().await;
    let pool = db.pool.clone();
    let official = SourceServer::start(
        ZIP_NAME,
        Vec::new(),
        vec![Reply::Status {
            status: 500,
            retry_after: None,
        }],
    )
    .await;
    let mirror = SourceServer::start(ZIP_NAME, zip_of("ps-libreacces"), vec![]).await;
    let outcome = run(&pool, &job(&[&official.url, &mirror.url], "")).await;
    assert_eq!(outcome.status, "published", "{:?}", outcome.message);
    assert_eq!(outcome.source_url.as_deref(), Some(mirror.url.as_str()));
}

#[tokio::test]
async fn two_schedulers_firing_at_once_make_exactly_one_run() {
    let db = migrated_db().await;
    let pool = db.pool.clone();
    let source = SourceServer::start(
        ZIP_NAME,
        zip_of("ps-libreacces"),
        vec![Reply::Stall(Duration::from_millis(400))],
    )
    .await;
    let job = job(&[&source.url], "");
    let (a, b) = tokio::join!(run(&pool, &job), run(&pool, &job));
    let mut statuses = vec![a.status.clone(), b.status.clone()];
    statuses.sort();
    assert_eq!(statuses, vec!["published", "skipped"]);
    let skipped = if a.status == "skipped" { a } else { b };
    assert!(
        skipped
            .message
            .unwrap()
            .contains("another run of nightly-test is in progress")
    );
    let imports: i64 = sqlx::query_scalar("SELECT count(*) FROM import_run")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(imports, 1);
}

/// Two real schedulers on one database, due at the same second: one run imports, the other
/// is skipped by the job's lock and names the run in progress. Without the lock both would
/// download and import, and one would fail or publish twice.
#[tokio::test]
async fn two_real_schedulers_on_one_database_import_once() {
    use annuaire::jobs::scheduler::Scheduler;
    let db = migrated_db().await;
    let pool = db.pool.clone();
    let source = SourceServer::start(
        ZIP_NAME,
        zip_of("ps-libreacces"),
        vec![Reply::Stall(Duration::from_millis(300))],
    )
    .await;
    let mut once = JobDefinition::parse(
        Path::new("once.toml"),
        &format!(
            "name = \"once\"\nkind = \"ps_libreacces\"\nschedule = \"0 0 3 * * *\"\ntime_zone = \"UTC\"\nsources = [{:?}]\n",
            source.url
        ),
    )
    .unwrap();
    // Due once, two seconds from now, for both schedulers at the same instant.
    let due = chrono::Utc::now() + chrono::Duration::seconds(2);
    once.schedule_text = due.format("%S %M %H * * *").to_string();
    once.schedule = once.schedule_text.parse().expect("a cron expression");
    let shutdown = CancellationToken::new();
    let schedulers: Vec<_> = (0..2)
        .map(|_| {
            let scheduler = Scheduler {
                pool: pool.clone(),
                jobs: std::sync::Arc::new(vec![once.clone()]),
                settings: settings(),
            };
            tokio::spawn(scheduler.run(shutdown.clone()))
        })
        .collect();
    let watched = pool.clone();
    wait_for("both scheduled runs ended", Duration::from_secs(20), || {
        let pool = watched.clone();
        async move {
            let ended: i64 = sqlx::query_scalar("SELECT count(*) FROM job_run WHERE status <> 'running'")
                .fetch_one(&pool)
                .await
                .unwrap_or_default();
            ended >= 2
        }
    })
    .await;
    shutdown.cancel();
    for scheduler in schedulers {
        scheduler.await.unwrap();
    }
    let runs: Vec<(i64, String, Option<String>)> =
        sqlx::query_as("SELECT id, status::text, message FROM job_run ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let statuses: Vec<&str> = runs.iter().map(|(_, status, _)| status.as_str()).collect();
    assert!(!statuses.contains(&"failed"), "{runs:?}");
    let published: Vec<_> = runs.iter().filter(|(_, status, _)| status == "published").collect();
    let skipped: Vec<_> = runs.iter().filter(|(_, status, _)| status == "skipped").collect();
    assert_eq!((published.len(), skipped.len(), runs.len()), (1, 1, 2), "{runs:?}");
    assert_eq!(
        skipped[0].2.as_deref(),
        Some(
            format!(
                "another run of once is in progress (run {}, on this or another replica)",
                published[0].0
            )
            .as_str()
        ),
        "{runs:?}"
    );
    let imports: i64 = sqlx::query_scalar("SELECT count(*) FROM import_run WHERE status = 'published'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(imports, 1);
}

#[tokio::test]
async fn a_failed_run_notifies_the_webhook() {
    let db = migrated_db().await;
    let pool = db.pool.clone();
    let source = SourceServer::start(ZIP_NAME, Vec::new(), vec![Reply::Html]).await;
    let hook_url = source.hook_url();
    let outcome = run(&pool, &job(&[&source.url], &format!("notify_url = {hook_url:?}"))).await;
    assert_eq!(outcome.status, "failed");
    let watched = source.clone();
    wait_for("the webhook call", Duration::from_secs(10), || {
        let watched = watched.clone();
        async move { !watched.hook_bodies().is_empty() }
    })
    .await;
    let body: serde_json::Value = serde_json::from_str(&source.hook_bodies()[0]).unwrap();
    assert_eq!(
        (body["job"].as_str(), body["status"].as_str(), body["id"].as_i64()),
        (Some("nightly-test"), Some("failed"), Some(outcome.id))
    );
    assert!(body["message"].as_str().unwrap().contains("HTML"));
}

#[tokio::test]
async fn shutdown_stops_a_running_job_and_records_it_cancelled() {
    let db = migrated_db().await;
    let pool = db.pool.clone();
    let source = SourceServer::start(
        ZIP_NAME,
        zip_of("ps-libreacces"),
        vec![Reply::Status {
            status: 503,
            retry_after: Some("1"),
        }],
    )
    .await;
    let job = job(&[&source.url], "");
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    let watched = source.clone();
    tokio::spawn(async move {
        wait_for("the first attempt", Duration::from_secs(10), || {
            let watched = watched.clone();
            async move { watched.count("GET") >= 1 }
        })
        .await;
        stopper.cancel();
    });
    let outcome = runner::run(&pool, &job, Trigger::Schedule, None, &settings(), &cancel)
        .await
        .unwrap();
    assert_eq!(outcome.status, "cancelled", "{:?}", outcome.message);
    assert_eq!(published(&pool).await, None);
}

/// A server that runs the test job from `source`, once its admin API answers `admin`.
async fn job_server(pool: &PgPool, source: &SourceServer, admin: &str) -> TestServer {
    let config = ServerConfig {
        jobs: vec![job(&[&source.url], "")],
        runner: settings(),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_unready(pool.clone(), config).await;
    server.wait_for_status("the server", "/v1/jobs", admin, 200).await;
    server
}

/// `POST /v1/jobs/{name}/run` with `key`: the status it answers.
async fn run_through_api(server: &TestServer, name: &str, key: &str) -> u16 {
    let url = server.url(&format!("/v1/jobs/{name}/run"));
    server
        .client
        .post(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn admin_api_lists_jobs_runs_one_and_lists_imports() {
    let db = migrated_db().await;
    let pool = db.pool.clone();
    let source = SourceServer::start(ZIP_NAME, zip_of("ps-libreacces"), vec![]).await;
    let admin = keys::create(&pool, "ops", &[Scope::Admin]).await.unwrap().1;
    let claims = keys::create(&pool, "idp", &[Scope::Claims]).await.unwrap().1;
    let server = job_server(&pool, &source, &admin).await;
    let listed: serde_json::Value = server.get("/v1/jobs", &admin).await.json().await.unwrap();
    assert_eq!(listed["jobs"][0]["name"], "nightly-test");
    assert!(listed["jobs"][0]["next_fire"].is_string());
    assert_eq!(server.get("/v1/jobs", &claims).await.status(), 403);
    assert_eq!(run_through_api(&server, "nightly-test", &admin).await, 202);
    assert_eq!(run_through_api(&server, "nope", &admin).await, 404);
    server
        .wait_for_body(
            "the run to be published",
            "/v1/jobs",
            &admin,
            "\"status\":\"published\"",
        )
        .await;
    let imports: serde_json::Value = server.get("/v1/imports", &admin).await.json().await.unwrap();
    assert_eq!(imports[0]["status"], "published");
    assert_eq!(imports[0]["source"].as_str(), Some(source.url.as_str()));
    server.stop().await;
}

fn not_found() -> Vec<Reply> {
    vec![
        Reply::Status {
            status: 404,
            retry_after: None,
        };
        100
    ]
}

/// Two jobs on the same cron second: both run (the scheduler used to pick one).
#[tokio::test]
async fn two_jobs_due_in_the_same_second_both_run() {
    use annuaire::jobs::scheduler::Scheduler;
    let db = migrated_db().await;
    let pool = db.pool.clone();
    let source = SourceServer::start(ZIP_NAME, Vec::new(), not_found()).await;
    let fast = |name: &str| {
        every_second(
            JobDefinition::parse(
                Path::new("fast.toml"),
                &format!(
                    "name = {name:?}\nkind = \"ps_libreacces\"\nschedule = \"0 0 3 * * *\"\nsources = [{:?}]\n",
                    source.url
                ),
            )
            .unwrap(),
        )
    };
    let shutdown = CancellationToken::new();
    let scheduler = Scheduler {
        pool: pool.clone(),
        jobs: std::sync::Arc::new(vec![fast("first"), fast("second")]),
        settings: settings(),
    };
    let task = tokio::spawn(scheduler.run(shutdown.clone()));
    let watched = pool.clone();
    wait_for("a run of each job", Duration::from_secs(20), || {
        let pool = watched.clone();
        async move {
            let jobs: Vec<String> = sqlx::query_scalar("SELECT DISTINCT job FROM job_run ORDER BY job")
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
            jobs == ["first", "second"]
        }
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
}

/// A job run failing right after taking its lock releases it: the next run, on another
/// replica, is not skipped as "in progress".
#[tokio::test]
async fn a_job_run_failing_early_releases_its_lock() {
    let db = migrated_db().await;
    sqlx::query("ALTER TABLE job_run ADD CONSTRAINT test_refuses CHECK (status <> 'running')")
        .execute(&db.pool)
        .await
        .unwrap();
    let source = SourceServer::start(ZIP_NAME, Vec::new(), not_found()).await;
    let job = job(&[&source.url], "");
    let error = runner::run(
        &db.pool,
        &job,
        Trigger::Manual,
        None,
        &settings(),
        &CancellationToken::new(),
    )
    .await;
    assert!(error.is_err(), "the run could not be recorded");
    sqlx::query("ALTER TABLE job_run DROP CONSTRAINT test_refuses")
        .execute(&db.pool)
        .await
        .unwrap();
    let other = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&db.url)
        .await
        .unwrap();
    let outcome = run(&other, &job).await;
    assert_eq!(outcome.status, "failed", "{:?}", outcome.message);
}

/// A stale mirror (an older extract than the published one) is held, not published.
#[tokio::test]
async fn a_stale_mirror_is_held_by_the_freshness_guard() {
    let db = migrated_db().await;
    let pool = db.pool.clone();
    let day2 = SourceServer::start("PS_LibreAcces_202611260900.zip", zip_of("ps-libreacces-day2"), vec![]).await;
    assert_eq!(run(&pool, &job(&[&day2.url], "")).await.status, "published");
    let generation = published(&pool).await;
    let official = SourceServer::start(ZIP_NAME, Vec::new(), not_found()).await;
    let mirror = SourceServer::start(ZIP_NAME, zip_of("ps-libreacces"), vec![]).await;
    let lenient = "[gate]\nmax_removed_pct = 10.0\nmax_changed_pct = 10.0";
    let outcome = run(&pool, &job(&[&official.url, &mirror.url], lenient)).await;
    assert_eq!(outcome.status, "held", "{:?}", outcome.message);
    assert!(
        outcome
            .message
            .unwrap_or_default()
            .contains("is older than the published extract"),
        "the reason is recorded"
    );
    assert_eq!(published(&pool).await, generation);
}

#[tokio::test]
async fn a_run_started_through_the_api_is_awaited_and_recorded_cancelled_at_shutdown() {
    let db = migrated_db().await;
    let pool = db.pool.clone();
    let unavailable = Reply::Status {
        status: 503,
        retry_after: Some("1"),
    };
    let source = SourceServer::start(ZIP_NAME, zip_of("ps-libreacces"), vec![unavailable; 20]).await;
    let admin = keys::create(&pool, "ops", &[Scope::Admin]).await.unwrap().1;
    let server = job_server(&pool, &source, &admin).await;
    assert_eq!(run_through_api(&server, "nightly-test", &admin).await, 202);
    let watched = source.clone();
    wait_for("the run's first download attempt", Duration::from_secs(10), || {
        let watched = watched.clone();
        async move { watched.count("GET") >= 1 }
    })
    .await;

    // The server returns only once the run it started has stopped and said so.
    server.stop().await;
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM job_run")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(statuses, ["cancelled"]);
    assert_eq!(published(&pool).await, None);
}

/// A job file with `extra` (top-level keys first, then tables), parsed.
fn parsed(kind: &str, extra: &str) -> Result<JobDefinition, annuaire::jobs::DefinitionError> {
    let sources = if kind == "purge" {
        ""
    } else {
        "sources = [\"https://a.invalid/\"]\n"
    };
    let text = format!("name = \"x\"\nkind = \"{kind}\"\nschedule = \"0 0 1 * * *\"\n{sources}{extra}\n");
    JobDefinition::parse(Path::new("jobs/x.toml"), &text)
}

#[test]
fn a_threshold_out_of_its_range_in_a_job_file_is_refused_with_its_name() {
    for (kind, extra, name, value) in [
        (
            "ps_libreacces",
            "[gate]\nmax_removed_pct = nan",
            "gate.max_removed_pct",
            "NaN",
        ),
        (
            "ps_libreacces",
            "[gate]\nmax_changed_pct = inf",
            "gate.max_changed_pct",
            "inf",
        ),
        (
            "ps_libreacces",
            "[gate]\nmax_reject_pct = 101",
            "gate.max_reject_pct",
            "101",
        ),
        ("mssante", "[gate]\nmax_reject_pct = -1", "gate.max_reject_pct", "-1"),
        ("ps_libreacces", "min_size_ratio = nan", "min_size_ratio", "NaN"),
        ("ps_libreacces", "min_size_ratio = 1.5", "min_size_ratio", "1.5"),
        (
            "ps_libreacces",
            "[retry]\ntotal_seconds = 1e300",
            "retry.total_seconds",
            "1000000",
        ),
        (
            "ps_libreacces",
            "[retry]\nmax_backoff_seconds = nan",
            "retry.max_backoff_seconds",
            "NaN",
        ),
        ("purge", "retention_days = 36501", "retention_days", "36501"),
        ("purge", "retention_days = 0", "retention_days", "0"),
    ] {
        let error = parsed(kind, extra).unwrap_err().to_string();
        assert!(
            error.starts_with("jobs/x.toml: ") && error.contains(name) && error.contains(" is not "),
            "{extra}: {error}"
        );
        assert!(error.contains(value), "{extra}: {error}");
    }
}

#[test]
fn the_bounds_of_each_range_are_accepted_in_a_job_file() {
    let low = parsed(
        "ps_libreacces",
        "min_size_ratio = 0\n[gate]\nmax_removed_pct = 0\nmax_changed_pct = 0\nmax_reject_pct = 0\n[retry]\ntotal_seconds = 0\nattempts = 1\ninitial_backoff_seconds = 1\nmax_backoff_seconds = 1",
    )
    .unwrap();
    assert_eq!(
        (low.gate.max_removed_pct, low.max_reject_pct, low.min_size_ratio),
        (0.0, 0.0, 0.0)
    );
    let high = parsed(
        "ps_libreacces",
        "min_size_ratio = 1\n[gate]\nmax_removed_pct = 100\nmax_changed_pct = 100.0\nmax_reject_pct = 100\n[retry]\ntotal_seconds = 86400\nattempts = 20\ninitial_backoff_seconds = 86400\nmax_backoff_seconds = 86400",
    )
    .unwrap();
    assert_eq!(
        (high.gate.max_changed_pct, high.max_reject_pct, high.min_size_ratio),
        (100.0, 100.0, 1.0)
    );
    assert_eq!(high.retry.total, Duration::from_secs(86_400));
    assert_eq!(
        (low.retry.attempts, low.retry.initial_backoff, low.retry.max_backoff),
        (1, Duration::from_secs(1), Duration::from_secs(1))
    );
    assert_eq!(
        (high.retry.attempts, high.retry.initial_backoff, high.retry.max_backoff),
        (20, Duration::from_secs(86_400), Duration::from_secs(86_400))
    );
    assert_eq!(parsed("purge", "retention_days = 1").unwrap().retention_days, 1);
    assert_eq!(
        parsed("purge", "retention_days = 36500").unwrap().retention_days,
        36_500
    );
}

/// The probe's job files: a million attempts without back-off, a cron of every second.
/// Each is refused at load time, naming the file and the field.
#[test]
fn a_job_file_that_would_hammer_its_source_is_refused_with_its_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let head = "name = \"x\"\nkind = \"mssante\"\nsources = [\"https://a.invalid/\"]\n";
    let nightly = "schedule = \"0 0 1 * * *\"\n";
    for (body, field, reason) in [
        (
            format!("{nightly}[retry]\nattempts = 1000000\ninitial_backoff_seconds = 0\n"),
            "retry.attempts = 1000000",
            "is not a number of attempts from 1 to 20",
        ),
        (
            format!("{nightly}[retry]\nattempts = 0\n"),
            "retry.attempts = 0",
            "is not a number of attempts from 1 to 20",
        ),
        (
            format!("{nightly}[retry]\ninitial_backoff_seconds = 0\n"),
            "retry.initial_backoff_seconds = 0",
            "is not a number of seconds from 1 to 86400",
        ),
        (
            format!("{nightly}[retry]\nmax_backoff_seconds = 0.2\n"),
            "retry.max_backoff_seconds = 0.2",
            "is not a number of seconds from 1 to 86400",
        ),
        (
            "schedule = \"* * * * * *\"\n".to_owned(),
            "schedule \"* * * * * *\" fires at 2026-01-01T01:00:01+01:00 and again at 2026-01-01T01:00:02+01:00",
            "fire times must be at least 60 s apart",
        ),
        (
            // 59 s apart once a day.
            "schedule = \"0,59 0 4 * * *\"\ntime_zone = \"UTC\"\n".to_owned(),
            "schedule \"0,59 0 4 * * *\" fires at 2026-01-01T04:00:00+00:00 and again at 2026-01-01T04:00:59+00:00",
            "fire times must be at least 60 s apart",
        ),
    ] {
        std::fs::write(dir.path().join("hammer.toml"), format!("{head}{body}")).unwrap();
        let error = annuaire::jobs::load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("hammer.toml: ") && error.contains(field) && error.contains(reason),
            "{body}: {error}"
        );
    }
    // A minute apart is the floor itself: accepted.
    std::fs::write(
        dir.path().join("hammer.toml"),
        format!("{head}schedule = \"0 * * * * *\"\n[retry]\nattempts = 20\ninitial_backoff_seconds = 1\n"),
    )
    .unwrap();
    let jobs = annuaire::jobs::load_dir(dir.path()).expect("the floors themselves are accepted");
    assert_eq!(
        (jobs[0].retry.attempts, jobs[0].retry.initial_backoff),
        (20, Duration::from_secs(1))
    );
}

/// The import of a downloaded extract records the SHA-256 of the bytes served, the one the
/// download computed as they arrived (handed to the import, not computed again).
#[tokio::test]
async fn a_job_run_records_the_checksum_of_the_bytes_served() {
    use sha2::Digest;
    let db = migrated_db().await;
    let served = zip_of("ps-libreacces");
    let expected = hex::encode(sha2::Sha256::digest(&served));
    let source = SourceServer::start(ZIP_NAME, served, vec![]).await;
    let ran = run(&db.pool, &job(&[&source.url], "")).await;
    assert_eq!(ran.status, "published", "{:?}", ran.message);
    let import_run = ran.import_run_id.expect("an import run");
    let recorded = annuaire::store::runs::get(&db.pool, import_run)
        .await
        .unwrap()
        .expect("the import run");
    assert_eq!(recorded.checksum.as_deref(), Some(expected.as_str()));
}
