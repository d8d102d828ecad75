//! The scheduler: sleeps until the next fire time of the enabled jobs, then runs them. Each
//! replica may run one; the job's lock makes sure only one run happens across the fleet. On
//! shutdown, running jobs are told to stop at a safe point and are waited for.

use std::sync::Arc;

use chrono::Utc;
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

impl Scheduler {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut running = JoinSet::new();
        loop {
            let now = Utc::now();
            let next = self
                .jobs
                .iter()
                .enumerate()
                .filter(|(_, job)| job.enabled)
                .filter_map(|(i, job)| job.next_fire(now).map(|at| (at, i)))
                .min();
            let Some((at, index)) = next else {
                tracing::info!("no enabled job: the scheduler idles");
                shutdown.cancelled().await;
                break;
            };
            let wait = (at - now).to_std().unwrap_or_default();
            tracing::debug!(job = %self.jobs[index].name, at = %at, "next job");
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                // Reap finished runs so that the set does not grow.
                Some(_) = running.join_next(), if !running.is_empty() => continue,
            }
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
            // Fire times are whole seconds: step past this one before computing the next.
            let after = (at - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(1000);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(after.min(std::time::Duration::from_millis(1000))) => {}
            }
        }
        tracing::info!(
            jobs = running.len(),
            "scheduler stopping; waiting for running jobs to reach a safe point"
        );
        while running.join_next().await.is_some() {}
    }
}
