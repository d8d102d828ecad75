//! One connection's task: its lane chosen, hyper serves it while this watches the deadlines
//! hyper does not keep (the first request head counted from accept, idleness), an
//! eviction, and shutdown.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::counted::Counted;
use super::lane::{self, Lane};
use super::registry::{Conn, Entry};

/// The deadlines a connection's task enforces.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// From accept to the first whole request head, first byte or not: hyper's own header
    /// timer starts only with the first byte, so a socket that sends nothing is cut here.
    pub first_request: Duration,
    /// No byte read or written for this long: closed gracefully.
    pub idle: Duration,
}

/// Serves one connection in its lane (see `lane`): here, or on the admin runtime.
pub async fn serve(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    app: Router,
    deadlines: Deadlines,
    shutdown: CancellationToken,
    entry: Entry,
    admin: tokio::runtime::Handle,
) {
    let conn = Arc::clone(entry.conn());
    let first_request_at = tokio::time::Instant::from_std(conn.opened() + deadlines.first_request);
    let chosen = tokio::select! {
        chosen = tokio::time::timeout_at(first_request_at, lane::choose(&stream)) => chosen,
        _ = conn.evicted() => return,
        _ = shutdown.cancelled() => return,
    };
    match chosen {
        Ok(Ok(Lane::Claims)) => serve_http(builder, stream, app, deadlines, shutdown, entry).await,
        Ok(Ok(Lane::Admin)) => {
            // Moved to the admin runtime's reactor: deregistered here, registered there.
            let Ok(stream) = stream.into_std() else { return };
            let served = admin.spawn(async move {
                if let Ok(stream) = TcpStream::from_std(stream) {
                    serve_http(builder, stream, app, deadlines, shutdown, entry).await;
                }
            });
            if let Err(error) = served.await {
                tracing::debug!(%error, "admin connection task ended abnormally");
            }
        }
        // The client closed or failed before its first request line.
        Ok(Err(_)) => {}
        Err(_) => {
            entry
                .stats()
                .no_request
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!("no request head within the header timeout; connection closed");
        }
    }
}

/// hyper serving the connection, with the deadlines it does not keep itself.
async fn serve_http(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    app: Router,
    deadlines: Deadlines,
    shutdown: CancellationToken,
    entry: Entry,
) {
    let conn = Arc::clone(entry.conn());
    let io = TokioIo::new(Tracked {
        inner: stream,
        conn: Arc::clone(&conn),
    });
    let service = Counted::new(app, Arc::clone(&conn), Arc::clone(entry.registry()));
    let served = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
    tokio::pin!(served);
    let first_request_at = tokio::time::Instant::from_std(conn.opened() + deadlines.first_request);
    let mut closing = false;
    // Once asked to close, an answer in progress gets one more idle period to finish (a
    // client that stops reading it must not keep the connection forever).
    let mut cut_at = tokio::time::Instant::now();
    loop {
        let idle_at = tokio::time::Instant::from_std(conn.last_activity() + deadlines.idle);
        tokio::select! {
            _ = tokio::time::sleep_until(cut_at), if closing => return,
            ended = served.as_mut() => {
                if let Err(error) = ended {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(first_request_at), if !conn.has_had_request() => {
                if !conn.has_had_request() {
                    entry.stats().no_request.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::debug!("no request head within the header timeout; connection closed");
                    return;
                }
            }
            _ = conn.evicted() => {
                if conn.is_idle() {
                    tracing::debug!("idle connection closed to make room for a new one");
                    return;
                }
                // A request arrived as it was chosen: let it finish, then close.
                if !closing {
                    served.as_mut().graceful_shutdown();
                    closing = true;
                    cut_at = tokio::time::Instant::now() + deadlines.idle;
                }
            }
            _ = shutdown.cancelled(), if !closing => {
                served.as_mut().graceful_shutdown();
                closing = true;
                cut_at = tokio::time::Instant::now() + deadlines.idle;
            }
            _ = tokio::time::sleep_until(idle_at), if !closing => {
                if conn.last_activity().elapsed() >= deadlines.idle {
                    served.as_mut().graceful_shutdown();
                    closing = true;
                    cut_at = tokio::time::Instant::now() + deadlines.idle;
                }
            }
        }
    }
    // `entry` drops here: the place and the client's share are given back.
}

/// The TCP stream, noting each read or write on its connection.
struct Tracked {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.conn.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.conn.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
