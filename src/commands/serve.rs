//! `annuaire serve`: the claims API (and the scheduler), until SIGINT or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::server::{self, ServerConfig};

pub async fn run(pool: PgPool, listen: SocketAddr, config: ServerConfig) -> anyhow::Result<Outcome> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    // Partial downloads of a server or an import killed mid-way: gone before the jobs start.
    let work_dir = config.runner.work_dir.clone();
    match tokio::task::spawn_blocking(move || crate::download::remove_leftovers(&work_dir)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "cannot remove the partial downloads left in the work directory"),
        Err(error) => tracing::warn!(%error, "the removal of partial downloads failed"),
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    server::run(pool, listener, config, shutdown)
        .await
        .context("while serving")?;
    tracing::info!("stopped");
    Ok(Outcome::Success)
}

/// One shutdown signal for everything: the server drains its requests, the follower and
/// the scheduler stop, running jobs stop at a safe point.
async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}

/// The jobs of `dir`; a missing folder means no scheduled jobs (said once), so that a
/// server starts anywhere. A folder that exists must be valid: a bad job stops the start.
pub fn jobs_of(dir: &std::path::Path) -> anyhow::Result<Vec<crate::jobs::JobDefinition>> {
    if !dir.exists() {
        tracing::info!(jobs_dir = %dir.display(), "no jobs folder: no scheduled jobs");
        return Ok(Vec::new());
    }
    Ok(crate::jobs::load_dir(dir)?)
}
