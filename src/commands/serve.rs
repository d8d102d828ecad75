//! `annuaire serve`: the claims API (and the scheduler), until SIGINT or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::http::{self, ServerConfig};

pub async fn run(pool: PgPool, listen: SocketAddr, config: ServerConfig) -> anyhow::Result<Outcome> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    if config.scheduler {
        tracing::info!(jobs = config.jobs.len(), "scheduler on");
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    http::run(pool, listener, config, shutdown)
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
