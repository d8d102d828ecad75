//! A private PostgreSQL cluster run from the machine's PostgreSQL binaries.
//!
//! Used when `DATABASE_URL` is unset: the cluster lives under the application home
//! (`<home>/pgdata`), listens only on a Unix socket in a directory of its own, and is
//! started on demand and left running between invocations.
//!
//! Everything here is synchronous (`std::process`); async callers run it through
//! `spawn_blocking`.

mod binaries;
mod lifecycle;
// Calls libc (kill with signal 0) where std has no equivalent; the use says why it is sound.
#[allow(unsafe_code)]
mod pid_file;
mod socket;
// Calls libc (geteuid, getpwnam_r) where std has no equivalent; each use says why it is sound.
#[allow(unsafe_code)]
mod user;

use std::fmt::Write as _;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tracing::info;

/// Only names the socket file: the socket directory is private, so the port cannot clash
/// with another server on this machine (and nothing listens on TCP).
const PORT: u16 = 5432;
/// The role created by initdb; trust auth over a private socket, so no password.
const SUPERUSER: &str = "postgres";
/// How long to wait for a server to become ready (start, crash recovery) or to stop.
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH nor under \
         /usr/lib/postgresql/*/bin; install them (Debian/Ubuntu: \
         `apt-get update && apt-get install -y postgresql`) or set DATABASE_URL to use an \
         existing server"
    )]
    BinariesNotFound,
    #[error(
        "running as root, but there is no `postgres` system user to run PostgreSQL as \
         (it refuses to run as root); installing the postgresql package creates it"
    )]
    ServerUserMissing,
    #[error(
        "running as root, but neither runuser nor su is available to run PostgreSQL as the \
         `postgres` user"
    )]
    NoSwitchUserTool,
    #[error(
        "the `postgres` system user cannot reach {path} (a parent directory is probably \
         private, like /root); set ANNUAIRE_HOME to a directory it can reach"
    )]
    HomeNotReachable { path: PathBuf },
    #[error(
        "socket directory {path} belongs to uid {owner}, not to the server's uid {expected}; \
         remove it or set ANNUAIRE_HOME elsewhere"
    )]
    SocketDirNotOwned { path: PathBuf, owner: u32, expected: u32 },
    #[error("{path} exists but is not a PostgreSQL data directory (no PG_VERSION)")]
    NotADataDir { path: PathBuf },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("initdb failed ({status}):\n{output}")]
    InitdbFailed { status: ExitStatus, output: String },
    #[error(
        "PostgreSQL failed to start ({status}):\n{output}\nlast lines of {}:\n{log_tail}",
        log.display()
    )]
    StartFailed {
        status: ExitStatus,
        output: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error(
        "server for {} did not become ready within {}s (state: {state})",
        data_dir.display(),
        SERVER_TIMEOUT.as_secs()
    )]
    NotReady { data_dir: PathBuf, state: String },
    #[error("pg_ctl stop failed ({status}):\n{output}")]
    StopFailed { status: ExitStatus, output: String },
    #[error("invalid database name {0:?}: must be 1 to 63 bytes without NUL")]
    InvalidDatabaseName(String),
    #[error("cannot connect to the embedded cluster at {}: {source}", socket_dir.display())]
    Connect { socket_dir: PathBuf, source: sqlx::Error },
    #[error("cannot create database {database}: {source}")]
    CreateDatabase { database: String, source: sqlx::Error },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> EmbeddedPgError {
    let path = path.to_path_buf();
    move |source| EmbeddedPgError::Io { action, path, source }
}

/// A running cluster, as found or started by [`EmbeddedCluster::ensure_running`].
#[derive(Debug, Clone)]
pub struct EmbeddedCluster {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    bin_dir: PathBuf,
}

/// What [`EmbeddedCluster::status`] reports.
#[derive(Debug, Clone)]
pub struct ClusterStatus {
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
    /// initdb has run.
    pub initialized: bool,
    /// PID of the running postmaster, if any.
    pub pid: Option<u32>,
    /// Where the socket is (when running) or would be (when not).
    pub socket_dir: PathBuf,
    pub port: u16,
}

impl ClusterStatus {
    /// The URL of `database` in this cluster, as `EmbeddedCluster::url` gives it.
    pub fn url(&self, database: &str) -> String {
        socket_url(&self.socket_dir, self.port, database)
    }
}

impl ClusterStatus {
    pub fn running(&self) -> bool {
        self.pid.is_some()
    }
}

impl EmbeddedCluster {
    /// A sqlx-compatible URL for `database` over the Unix socket, e.g.
    /// `postgres://postgres@localhost/annuaire?host=/abs/socket/dir&port=5432&sslmode=disable`
    /// (sqlx takes a `host` query parameter starting with `/` as a socket directory).
    pub fn url(&self, database: &str) -> String {
        socket_url(&self.socket_dir, self.port, database)
    }

    /// Connect options for `database`, independent of `PG*` environment variables that
    /// would otherwise redirect them.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(&self.socket_dir)
            .port(self.port)
            .username(SUPERUSER)
            .database(database)
            // TLS over a private Unix socket buys nothing, and the server has none.
            .ssl_mode(PgSslMode::Disable)
    }

    /// Ensures `database` exists (CREATE DATABASE if missing), connecting via the
    /// `postgres` database.
    pub async fn create_database_if_missing(&self, database: &str) -> Result<(), EmbeddedPgError> {
        if database.is_empty() || database.len() > 63 || database.contains('\0') {
            return Err(EmbeddedPgError::InvalidDatabaseName(database.to_owned()));
        }
        let create_err = |source| EmbeddedPgError::CreateDatabase {
            database: database.to_owned(),
            source,
        };
        let mut conn = PgConnection::connect_with(&self.connect_options("postgres"))
            .await
            .map_err(|source| EmbeddedPgError::Connect {
                socket_dir: self.socket_dir.clone(),
                source,
            })?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut conn)
            .await
            .map_err(create_err)?;
        if !exists {
            let sql = format!("CREATE DATABASE {}", quote_ident(database));
            match sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await {
                Ok(_) => info!(database, "created database"),
                // Someone else created it between our check and our CREATE: fine.
                // 42P04 is duplicate_database; a close race surfaces as 23505 unique_violation.
                Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
                Err(e) => return Err(create_err(e)),
            }
        }
        // The database exists either way; a failed goodbye is not worth reporting.
        let _ = conn.close().await;
        Ok(())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Percent-encodes all but unreserved characters and `/` (kept for readable socket paths).
/// The URL of `database` through the socket in `socket_dir`.
fn socket_url(socket_dir: &Path, port: u16, database: &str) -> String {
    format!(
        "postgres://{SUPERUSER}@localhost/{}?host={}&port={port}&sslmode=disable",
        percent_encode(database.as_bytes()),
        percent_encode(socket_dir.as_os_str().as_bytes()),
    )
}

fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn url_is_understood_by_sqlx_as_a_socket() {
        let cluster = EmbeddedCluster {
            data_dir: PathBuf::from("/h/pgdata"),
            socket_dir: PathBuf::from("/h dir/socket+x"),
            port: 5432,
            bin_dir: PathBuf::from("/usr/bin"),
        };
        let options = PgConnectOptions::from_str(&cluster.url("my db")).unwrap();
        assert_eq!(options.get_socket(), Some(&PathBuf::from("/h dir/socket+x")));
        assert_eq!(options.get_port(), 5432);
        assert_eq!(options.get_database(), Some("my db"));
        assert_eq!(options.get_username(), "postgres");
    }
}
