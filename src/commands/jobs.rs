//! `annuaire jobs list|run`: the scheduled jobs, their next fire times, and a run now.

use anyhow::Context;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{Outcome, print_json};
use crate::jobs::{JobDefinition, RunnerSettings, Trigger, runner};
use crate::store::JobRunStatus;

pub async fn list(pool: &PgPool, jobs: &[JobDefinition], json: bool) -> anyhow::Result<Outcome> {
    let now = chrono::Utc::now();
    let recent = runner::recent(pool, 200).await?;
    let rows: Vec<serde_json::Value> = jobs
        .iter()
        .map(|job| {
            let last = recent.iter().find(|r| r.job == job.name);
            serde_json::json!({
                "name": job.name,
                "kind": job.kind,
                "enabled": job.enabled,
                "schedule": job.schedule_text,
                "time_zone": job.time_zone.name(),
                "next_fire": job.enabled.then(|| job.next_fire(now)).flatten(),
                "last_run": last,
            })
        })
        .collect();
    if json {
        print_json(&rows)?;
        return Ok(Outcome::Success);
    }
    for job in jobs {
        let next = match job.enabled.then(|| job.next_fire(now)).flatten() {
            Some(at) => format!(
                "{} ({})",
                at.with_timezone(&job.time_zone).format("%Y-%m-%d %H:%M %Z"),
                at.format("%H:%M UTC")
            ),
            None => "disabled".to_owned(),
        };
        let last = recent
            .iter()
            .find(|r| r.job == job.name)
            .map_or("never run".to_owned(), |r| {
                format!(
                    "last run {} {} at {}",
                    r.id,
                    r.status,
                    r.started_at.format("%Y-%m-%d %H:%M UTC")
                )
            });
        crate::out!(
            "{:<24} {:<14} {:<18} next {next}; {last}",
            job.name,
            format!("{:?}", job.kind),
            job.schedule_text
        )?;
    }
    Ok(Outcome::Success)
}

pub async fn run(
    pool: &PgPool,
    jobs: &[JobDefinition],
    name: &str,
    source: Option<&str>,
    settings: &RunnerSettings,
    json: bool,
) -> anyhow::Result<Outcome> {
    let job = jobs.iter().find(|j| j.name == name).with_context(|| {
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        format!("no job named {name:?} (jobs: {})", names.join(", "))
    })?;
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::warn!("interrupted: stopping the job at its next safe point");
            on_signal.cancel();
        }
    });
    let run = runner::run(pool, job, Trigger::Manual, source, settings, &cancel).await?;
    if json {
        print_json(&run)?;
    } else {
        crate::out!("job run {} of {}: {}", run.id, run.job, run.status)?;
        if let Some(message) = &run.message {
            crate::out!("  {message}")?;
        }
    }
    Ok(match run.status {
        JobRunStatus::Published | JobRunStatus::Skipped => Outcome::Success,
        JobRunStatus::Held => Outcome::Held,
        _ => Outcome::Failure,
    })
}
