//! The accept loop: hyper-util's connection builder with a header read timeout, an idle
//! timeout, a cap on open connections with eviction of idle ones at the cap, a share of the
//! cap per client address, and a bounded graceful shutdown. Idle, silent or trickling
//! clients are cut, and no one client can hold the sockets the IdP needs; connections
//! other than the IdP's are served by niced threads (`lane`).

mod connection;
mod counted;
mod lane;
mod registry;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::lane::admin_runtime;

use self::connection::Deadlines;
use self::registry::{ClientKey, Refusal, Registry};
use super::limits::{MAX_HEADER_BYTES, MAX_URI_BYTES};

/// What the listener did, for `/metrics`: one value per process, shared with the state.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicU64,
    over_share: AtomicU64,
    evicted: AtomicU64,
    no_request: AtomicU64,
}

impl ConnectionStats {
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections the server closed, by reason: `over_share` (its client address held
    /// its share), `evicted` (idle, closed to make room at the cap), `no_request` (no
    /// request head within the header timeout of accept).
    pub fn closed(&self) -> [(&'static str, u64); 3] {
        [
            ("over_share", self.over_share.load(Ordering::Relaxed)),
            ("evicted", self.evicted.load(Ordering::Relaxed)),
            ("no_request", self.no_request.load(Ordering::Relaxed)),
        ]
    }
}

/// The cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4_096;

/// How connections are bounded. Public fields so that tests (and settings) set their own.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once. At the cap, the connection idle the longest (no request
    /// in flight) is closed to admit a new one; with none idle, new ones wait.
    pub max_connections: usize,
    /// Connections one client address (an IPv6 /64) may hold at once; one more is closed
    /// at once. 0: no share. Behind a proxy or a NAT every client is one address.
    pub max_per_client: usize,
    /// A connection's first request head must arrive within this from accept; a later one
    /// within this from its first byte, or from the end of the previous answer.
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
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_per_client: DEFAULT_MAX_CONNECTIONS / 4,
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
    stats: Arc<ConnectionStats>,
    admin: tokio::runtime::Handle,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let registry = Registry::new(limits.max_connections, limits.max_per_client, Arc::clone(&stats));
    let builder = Arc::new(builder(&limits));
    let deadlines = Deadlines {
        first_request: limits.header_read_timeout,
        idle: limits.idle_timeout,
    };
    let connections = TaskTracker::new();
    let mut refused = RefusalLog::default();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::error!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // At the cap this waits for an idle connection to close (or any to end): the one
        // accepted waits here rather than in the listen queue.
        let entry = match registry.admit(ClientKey::of(peer.ip()), &shutdown).await {
            Ok(entry) => entry,
            Err(Refusal::OverShare) => {
                // Closed at once: dropping the stream.
                stats.over_share.fetch_add(1, Ordering::Relaxed);
                refused.over_share(peer.ip(), limits.max_per_client);
                continue;
            }
            Err(Refusal::ShuttingDown) => break,
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection::serve(
            Arc::clone(&builder),
            stream,
            app.clone(),
            deadlines,
            shutdown.clone(),
            entry,
            admin.clone(),
        ));
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(limits.drain_timeout, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?limits.drain_timeout, "connections still open at shutdown; closing them");
    }
    Ok(())
}

fn builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
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
    builder
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Says at most once a minute that connections were refused, and how many: a flood must
/// not flood the log too.
#[derive(Default)]
struct RefusalLog {
    since: Option<Instant>,
    count: u64,
}

impl RefusalLog {
    fn over_share(&mut self, peer: std::net::IpAddr, share: usize) {
        self.count += 1;
        if self
            .since
            .is_some_and(|since| since.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        tracing::warn!(
            client = %peer,
            share,
            refused = self.count,
            "connections closed: a client address over its share of the connection cap (--max-connections-per-client)"
        );
        self.since = Some(Instant::now());
        self.count = 0;
    }
}
