//! The scheduler: sleeps until the next fire time of the enabled jobs, then runs every job
//! due at that instant. Each replica may run one; the job's lock makes sure only one run
//! happens across the fleet. On shutdown, running jobs are told to stop at a safe point and
//! are waited for.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::definition::JobDefinition;
use super::runner::{self, RunnerSettings, Trigger};

#[derive(Clone)]
pub struct Scheduler {
    pub pool: PgPool,
    pub jobs: Arc<Vec<JobDefinition>>,
    pub settings: RunnerSettings,
}

/// The enabled jobs (their indexes) with a fire time in `(from, until]`.
pub fn due_between(jobs: &[JobDefinition], from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<usize> {
    jobs.iter()
        .enumerate()
        .filter(|(_, job)| job.enabled)
        .filter(|(_, job)| job.next_fire(from).is_some_and(|at| at <= until))
        .map(|(i, _)| i)
        .collect()
}

/// The first instant after `from` at which an enabled job fires, with every job due then.
pub fn next_batch(jobs: &[JobDefinition], from: DateTime<Utc>) -> Option<(DateTime<Utc>, Vec<usize>)> {
    let at = jobs
        .iter()
        .filter(|job| job.enabled)
        .filter_map(|job| job.next_fire(from))
        .min()?;
    Some((at, due_between(jobs, from, at)))
}

impl Scheduler {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut running = JoinSet::new();
        // Fire times already handled: the next batch is strictly after it, so a wake-up a
        // little early by the wall clock never fires the same instant twice.
        let mut cursor = Utc::now();
        loop {
            let now = Utc::now();
            let Some((at, due)) = next_batch(&self.jobs, cursor.max(now)) else {
                tracing::info!("no enabled job: the scheduler idles");
                shutdown.cancelled().await;
                break;
            };
            let wait = (at - now).to_std().unwrap_or_default();
            tracing::debug!(at = %at, jobs = due.len(), "next jobs");
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                // Reap finished runs so that the set does not grow.
                Some(_) = running.join_next(), if !running.is_empty() => continue,
            }
            for index in due {
                let (pool, jobs, settings, cancel) = (
                    self.pool.clone(),
                    Arc::clone(&self.jobs),
                    self.settings.clone(),
                    shutdown.clone(),
                );
                running.spawn(async move {
                    let job = &jobs[index];
                    if let Err(error) = runner::run(&pool, job, Trigger::Schedule, None, &settings, &cancel).await {
                        tracing::error!(job = %job.name, %error, "job run could not be recorded");
                    }
                });
            }
            cursor = at;
        }
        tracing::info!(
            jobs = running.len(),
            "scheduler stopping; waiting for running jobs to reach a safe point"
        );
        while running.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn job(name: &str, schedule: &str, enabled: bool) -> JobDefinition {
        let text = format!(
            "name = {name:?}\nkind = \"ps_libreacces\"\nschedule = {schedule:?}\ntime_zone = \"UTC\"\nsources = [\"https://a.invalid/\"]\nenabled = {enabled}\n"
        );
        JobDefinition::parse(Path::new("t.toml"), &text).expect("valid job")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("a UTC time")
    }

    #[test]
    fn every_job_due_at_the_same_second_fires() {
        let jobs = [
            job("a", "0 0 3 * * *", true),
            job("b", "0 0 3 * * *", true),
            job("c", "0 30 3 * * *", true),
            job("d", "0 0 3 * * *", false),
        ];
        let (at, due) = next_batch(&jobs, utc("2026-12-01T12:00:00Z")).expect("a batch");
        assert_eq!(at, utc("2026-12-02T03:00:00Z"));
        assert_eq!(due, vec![0, 1]);
        // From that instant on, the next batch is the later job alone.
        let (at, due) = next_batch(&jobs, at).expect("a batch");
        assert_eq!((at, due), (utc("2026-12-02T03:30:00Z"), vec![2]));
        assert_eq!(
            due_between(&jobs, utc("2026-12-02T02:00:00Z"), utc("2026-12-02T04:00:00Z")),
            vec![0, 1, 2]
        );
        assert!(due_between(&jobs, utc("2026-12-02T03:00:00Z"), utc("2026-12-02T03:29:59Z")).is_empty());
    }

    #[test]
    fn no_enabled_job_means_no_batch() {
        assert_eq!(next_batch(&[job("d", "0 * * * * *", false)], Utc::now()), None);
    }
}
