//! `annuaire serve`: the claims API, until SIGINT or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::http::{self, HookSettings};

pub async fn run(pool: PgPool, listen: SocketAddr, hooks: HookSettings) -> anyhow::Result<Outcome> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    http::run(pool, listener, hooks, shutdown)
        .await
        .context("while serving")?;
    tracing::info!("stopped");
    Ok(Outcome::Success)
}

/// One shutdown signal for everything: the server drains its requests, the follower stops.
async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
