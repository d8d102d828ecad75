//! The connections of batch work (imports): few, and kept from competing with the claims
//! path. Each session plans without parallel workers (extra backends an import would
//! otherwise start beside the servers), and, on a local server reached through its Unix
//! socket, its backend process is niced like the importer itself: the COPY, sorts and
//! index builds of an import are the claims path's main competitor for CPU on a machine
//! that runs both. A remote server's backends are out of reach, and left as they are.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgConnection, PgPool};

/// Connections of an import's own pool: the import lock, the COPY of the step under way,
/// and the queries beside it (the published hashes load while the extract is read).
const CONNECTIONS: u32 = 4;

/// A pool for one import: `CONNECTIONS` sessions, each set up as above, its backend niced
/// by `nice` (0 leaves it alone). Lazy: nothing connects until the import asks.
pub fn pool(connect: &PgConnectOptions, nice: i32) -> PgPool {
    niced_pool(connect, nice, CONNECTIONS, Duration::from_secs(30))
}

/// A pool of `connections` sessions set up as an import's are (no parallel workers, the
/// backend niced by `nice` on a local server), for other work that must yield the CPU to
/// the claims path: the server's reads of the past (histories, claims at an instant).
pub fn niced_pool(connect: &PgConnectOptions, nice: i32, connections: u32, acquire: Duration) -> PgPool {
    let local = connect.get_socket().is_some();
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(acquire)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute("SET max_parallel_workers_per_gather = 0").await?;
                if local && nice > 0 {
                    lower_backend(conn, nice).await?;
                }
                Ok(())
            })
        })
        .connect_lazy_with(connect.clone())
}

/// Warned once per process: an import without the right to nice its backends still runs.
static WARNED: AtomicBool = AtomicBool::new(false);

async fn lower_backend(conn: &mut PgConnection, nice: i32) -> Result<(), sqlx::Error> {
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(conn).await?;
    let Ok(pid) = u32::try_from(pid) else {
        return Ok(());
    };
    // The socket is local, but check that the pid is a Postgres process of this machine
    // (not, say, a server in another pid namespace sharing the socket) before touching it.
    let lowered = if is_postgres(pid) {
        crate::priority::lower_process(pid, nice)
    } else {
        Err(std::io::Error::other("not a local postgres process"))
    };
    if let Err(error) = lowered
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(pid, nice, %error, "cannot lower the priority of a batch or admin Postgres backend");
    }
    Ok(())
}

fn is_postgres(pid: u32) -> bool {
    std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("comm"))
        .is_ok_and(|comm| comm.trim_end().starts_with("postgres"))
}
