//! The accept loop: hyper-util's connection builder with a header read timeout, an idle
//! timeout, a cap on open connections (a permit each), and a bounded graceful shutdown.
//! Idle or trickling clients are cut, so they cannot hold the sockets the IdP needs.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::limits::{MAX_HEADER_BYTES, MAX_URI_BYTES};

/// How connections are bounded. Public fields so that tests (and settings) set their own.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once; beyond it new ones wait in the listen backlog.
    pub max_connections: usize,
    /// A request's headers must arrive within this (from its first byte, or from the end
    /// of the previous answer on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// A connection with no byte read or written for this long is closed (gracefully: an
    /// answer in progress is finished first).
    pub idle_timeout: Duration,
    /// At shutdown, how long open connections get to finish their requests.
    pub drain_timeout: Duration,
    /// Hyper's read buffer: a request head larger than this gets hyper's bare 431/414.
    /// Kept above our own URI and header limits, so those answer with a problem first.
    pub max_buf_size: usize,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 4_096,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(10),
            max_buf_size: 2 * (MAX_HEADER_BYTES + MAX_URI_BYTES),
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then stops accepting and lets open
/// connections finish for at most `drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_buf_size.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_buf_size).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::error!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            Arc::clone(&builder),
            stream,
            app.clone(),
            limits.idle_timeout,
            shutdown.clone(),
            permit,
        ));
    }
    drop(listener);
    // Every connection holds a permit: all of them back means all connections ended.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain_timeout, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?limits.drain_timeout, "connections still open at shutdown; closing them");
    }
    Ok(())
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

async fn connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    app: Router,
    idle_timeout: Duration,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let served = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(app));
    tokio::pin!(served);
    let mut closing = false;
    // Once asked to close, an answer in progress gets one more idle period to finish (a
    // client that stops reading it must not keep the connection forever).
    let mut cut_at = tokio::time::Instant::now();
    loop {
        let idle_at = tokio::time::Instant::from_std(activity.last() + idle_timeout);
        tokio::select! {
            _ = tokio::time::sleep_until(cut_at), if closing => return,
            ended = served.as_mut() => {
                if let Err(error) = ended {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.cancelled(), if !closing => {
                served.as_mut().graceful_shutdown();
                closing = true;
                cut_at = tokio::time::Instant::now() + idle_timeout;
            }
            _ = tokio::time::sleep_until(idle_at), if !closing => {
                if activity.last().elapsed() >= idle_timeout {
                    served.as_mut().graceful_shutdown();
                    closing = true;
                    cut_at = tokio::time::Instant::now() + idle_timeout;
                }
            }
        }
    }
}

/// When the connection last moved a byte, in milliseconds since it opened.
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// The TCP stream, noting each read or write in `activity`.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
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
            self.activity.touch();
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
