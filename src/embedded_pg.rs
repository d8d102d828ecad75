//! A private PostgreSQL cluster run from the machine's PostgreSQL binaries.
//!
//! Used when `DATABASE_URL` is unset: the cluster lives under the application home
//! (`<home>/pgdata`), listens only on a Unix socket in a directory of its own, and is
//! started on demand and left running between invocations.
//!
//! Everything here is synchronous (`std::process`); async callers run it through
//! `spawn_blocking`.

use std::ffi::{CString, OsStr, OsString};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write as _};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tracing::{debug, info, warn};

/// Only names the socket file: the socket directory is private, so the port cannot clash
/// with another server on this machine (and nothing listens on TCP).
const PORT: u16 = 5432;
/// The role created by initdb; trust auth over a private socket, so no password.
const SUPERUSER: &str = "postgres";
/// The system user PostgreSQL runs as when we are root (it refuses to run as root).
const SERVER_SYSTEM_USER: &str = "postgres";
/// `sun_path` is 108 bytes on Linux, including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// Where versioned installs live on Debian/Ubuntu (`/usr/lib/postgresql/<version>/bin`).
const VERSIONED_INSTALL_ROOT: &str = "/usr/lib/postgresql";
const REQUIRED_BINARIES: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
/// How long to wait for a server to become ready (start, crash recovery) or to stop.
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);
const LOG_TAIL_LINES: usize = 20;

/// Our settings, kept in a file of their own that `postgresql.conf` includes, rewritten
/// before every start so that changes here reach existing clusters. `postgresql.auto.conf`
/// is read later, so `ALTER SYSTEM` still overrides any of these.
const SETTINGS: &str = "\
# Bulk-load friendly: big buffers and sort memory, rare checkpoints.
# Durability is kept: fsync and synchronous_commit stay at their defaults (on).
shared_buffers = '512MB'
work_mem = '64MB'
maintenance_work_mem = '512MB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
# Plain 'on' (pglz) is accepted by every supported PostgreSQL version.
wal_compression = on
# Parallel test binaries each open a pool of several connections.
max_connections = 200
";

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
    pub fn running(&self) -> bool {
        self.pid.is_some()
    }
}

/// The files of a cluster under an application home.
struct Layout {
    home: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    lock_file: PathBuf,
}

impl Layout {
    fn new(home: &Path) -> Result<Layout, EmbeddedPgError> {
        // Canonical so that the derived socket directory and the /proc check see the same
        // path whatever spelling the caller used.
        let home = match fs::canonicalize(home) {
            Ok(path) => path,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::path::absolute(home).map_err(io_err("resolve", home))?
            }
            Err(e) => return Err(io_err("resolve", home)(e)),
        };
        Ok(Layout {
            data_dir: home.join("pgdata"),
            log_file: home.join("postgres.log"),
            lock_file: home.join("embedded-pg.lock"),
            home,
        })
    }

    /// Serialises init/start/stop between processes (e.g. parallel test binaries).
    /// Released when the returned file is dropped. Rust opens files close-on-exec, so the
    /// postmaster we spawn does not inherit (and keep) the lock.
    fn lock(&self) -> Result<File, EmbeddedPgError> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.lock_file)
            .map_err(io_err("open lock file", &self.lock_file))?;
        file.lock().map_err(io_err("lock", &self.lock_file))?;
        Ok(file)
    }
}

impl EmbeddedCluster {
    /// Creates (first use: initdb) and starts (if not running) the cluster under `home`
    /// (data in `home/pgdata`, Unix socket in a private socket dir), reusing it when it
    /// already runs.
    pub fn ensure_running(home: &Path) -> Result<EmbeddedCluster, EmbeddedPgError> {
        fs::create_dir_all(home).map_err(io_err("create", home))?;
        let layout = Layout::new(home)?;
        let bin_dir = find_bin_dir()?;
        let user = ServerUser::detect()?;
        let _lock = layout.lock()?;

        if let Some(pid_file) = wait_while_transitioning(&layout.data_dir)? {
            debug!(pid = pid_file.pid, data_dir = %layout.data_dir.display(), "reusing PostgreSQL");
            return Ok(EmbeddedCluster::from_pid_file(&layout, bin_dir, pid_file));
        }

        if let ServerUser::Postgres { .. } = user
            && !user.can_enter(&layout.home)?
        {
            return Err(EmbeddedPgError::HomeNotReachable { path: layout.home });
        }
        let socket_dir = socket_dir_for(&layout.home, PORT);
        prepare_socket_dir(&socket_dir, &user)?;
        if !layout.data_dir.join("PG_VERSION").exists() {
            init_data_dir(&layout, &bin_dir, &user)?;
        }
        write_settings(&layout.data_dir, &socket_dir, &user)?;
        remove_stale_files(&layout.data_dir, &socket_dir, PORT)?;
        start(&layout, &bin_dir, &user)?;

        let cluster = match read_pid_file(&layout.data_dir)? {
            Some(pid_file) => EmbeddedCluster::from_pid_file(&layout, bin_dir, pid_file),
            None => EmbeddedCluster {
                data_dir: layout.data_dir,
                socket_dir,
                port: PORT,
                bin_dir,
            },
        };
        Ok(cluster)
    }

    /// Stops the cluster under `home` (`pg_ctl stop -m fast`); returns whether it was running.
    pub fn stop(home: &Path) -> Result<bool, EmbeddedPgError> {
        let layout = Layout::new(home)?;
        if !layout.data_dir.join("PG_VERSION").exists() {
            return Ok(false);
        }
        let _lock = layout.lock()?;
        if live_postmaster(&layout.data_dir)?.is_none() {
            return Ok(false);
        }
        let bin_dir = find_bin_dir()?;
        let user = ServerUser::detect()?;
        let timeout = SERVER_TIMEOUT.as_secs().to_string();
        let args: [&OsStr; 8] = [
            "-D".as_ref(),
            layout.data_dir.as_os_str(),
            "-m".as_ref(),
            "fast".as_ref(),
            "-w".as_ref(),
            "-t".as_ref(),
            timeout.as_ref(),
            "stop".as_ref(),
        ];
        let output = user.run(&bin_dir.join("pg_ctl"), &args)?;
        if !output.status.success() {
            return Err(EmbeddedPgError::StopFailed {
                status: output.status,
                output: output_text(&output),
            });
        }
        info!(data_dir = %layout.data_dir.display(), "stopped embedded PostgreSQL");
        Ok(true)
    }

    /// Reports whether the cluster under `home` exists and runs, and where.
    pub fn status(home: &Path) -> Result<ClusterStatus, EmbeddedPgError> {
        let layout = Layout::new(home)?;
        let running = live_postmaster(&layout.data_dir)?;
        let socket_dir = running
            .as_ref()
            .and_then(|p| p.socket_dir.clone())
            .unwrap_or_else(|| socket_dir_for(&layout.home, PORT));
        Ok(ClusterStatus {
            initialized: layout.data_dir.join("PG_VERSION").exists(),
            pid: running.as_ref().map(|p| p.pid),
            port: running.as_ref().and_then(|p| p.port).unwrap_or(PORT),
            socket_dir,
            data_dir: layout.data_dir,
            log_file: layout.log_file,
        })
    }

    /// A sqlx-compatible URL for `database` over the Unix socket, e.g.
    /// `postgres://postgres@localhost/annuaire?host=/abs/socket/dir&port=5432&sslmode=disable`
    /// (sqlx takes a `host` query parameter starting with `/` as a socket directory).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost/{}?host={}&port={}&sslmode=disable",
            percent_encode(database.as_bytes()),
            percent_encode(self.socket_dir.as_os_str().as_bytes()),
            self.port
        )
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

    fn from_pid_file(layout: &Layout, bin_dir: PathBuf, pid_file: PidFile) -> EmbeddedCluster {
        EmbeddedCluster {
            data_dir: layout.data_dir.clone(),
            socket_dir: pid_file
                .socket_dir
                .unwrap_or_else(|| socket_dir_for(&layout.home, PORT)),
            port: pid_file.port.unwrap_or(PORT),
            bin_dir,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Finding the binaries

fn find_bin_dir() -> Result<PathBuf, EmbeddedPgError> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let versioned = versioned_bin_dirs(Path::new(VERSIONED_INSTALL_ROOT));
    first_complete_bin_dir(path_dirs.into_iter().chain(versioned)).ok_or(EmbeddedPgError::BinariesNotFound)
}

/// The first directory holding all of initdb, pg_ctl and postgres: pg_ctl must drive the
/// postgres of its own version.
fn first_complete_bin_dir(candidates: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    candidates
        .into_iter()
        .find(|dir| REQUIRED_BINARIES.iter().all(|b| is_executable(&dir.join(b))))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `<root>/<version>/bin`, highest version first.
fn versioned_bin_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let names = entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    sort_versions_desc(names)
        .into_iter()
        .map(|v| root.join(v).join("bin"))
        .collect()
}

/// Numeric versions ("9.6", "15", "16.2"), highest first; other names are dropped.
fn sort_versions_desc(names: Vec<String>) -> Vec<String> {
    let mut versions: Vec<(Vec<u32>, String)> = names
        .into_iter()
        .filter_map(|name| {
            let parts: Result<Vec<u32>, _> = name.split('.').map(str::parse).collect();
            Some((parts.ok()?, name))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, name)| name).collect()
}

// ---------------------------------------------------------------------------------------
// Who runs the server

#[derive(Debug)]
enum ServerUser {
    /// Not root: the server runs as whoever we are.
    Current { uid: u32 },
    /// Root: PostgreSQL refuses to run as root, so it runs as the `postgres` system user.
    Postgres { uid: u32, gid: u32, switch: SwitchUser },
}

#[derive(Debug)]
enum SwitchUser {
    Runuser(PathBuf),
    Su(PathBuf),
}

impl ServerUser {
    fn detect() -> Result<ServerUser, EmbeddedPgError> {
        // SAFETY: geteuid takes no arguments, touches no memory of ours and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Ok(ServerUser::Current { uid: euid });
        }
        let (uid, gid) = lookup_user(SERVER_SYSTEM_USER)?.ok_or(EmbeddedPgError::ServerUserMissing)?;
        let switch = if let Some(path) = find_tool("runuser") {
            SwitchUser::Runuser(path)
        } else if let Some(path) = find_tool("su") {
            SwitchUser::Su(path)
        } else {
            return Err(EmbeddedPgError::NoSwitchUserTool);
        };
        Ok(ServerUser::Postgres { uid, gid, switch })
    }

    fn uid(&self) -> u32 {
        match self {
            ServerUser::Current { uid } | ServerUser::Postgres { uid, .. } => *uid,
        }
    }

    /// Hands `path` to the server user (no-op when we are that user).
    fn chown(&self, path: &Path) -> Result<(), EmbeddedPgError> {
        match self {
            ServerUser::Current { .. } => Ok(()),
            ServerUser::Postgres { uid, gid, .. } => {
                std::os::unix::fs::chown(path, Some(*uid), Some(*gid)).map_err(io_err("chown", path))
            }
        }
    }

    fn command(&self, program: &Path, args: &[&OsStr]) -> Command {
        let mut cmd = match self {
            ServerUser::Current { .. } => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            ServerUser::Postgres {
                switch: SwitchUser::Runuser(runuser),
                ..
            } => {
                let mut cmd = Command::new(runuser);
                cmd.args(["-u", SERVER_SYSTEM_USER, "--"]).arg(program).args(args);
                cmd
            }
            ServerUser::Postgres {
                switch: SwitchUser::Su(su),
                ..
            } => {
                let mut script = shell_quote(program.as_os_str());
                for arg in args {
                    script.push(" ");
                    script.push(shell_quote(arg));
                }
                let mut cmd = Command::new(su);
                cmd.args([SERVER_SYSTEM_USER, "-s", "/bin/sh", "-c"]).arg(script);
                cmd
            }
        };
        // The server user may not be allowed into our working directory (e.g. /root).
        cmd.current_dir("/").stdin(Stdio::null());
        cmd
    }

    fn run(&self, program: &Path, args: &[&OsStr]) -> Result<Output, EmbeddedPgError> {
        let mut cmd = self.command(program, args);
        debug!(?cmd, "running");
        cmd.output().map_err(|source| EmbeddedPgError::Spawn {
            program: program.display().to_string(),
            source,
        })
    }

    /// Whether the server user can traverse into `dir`, i.e. every parent lets it through.
    fn can_enter(&self, dir: &Path) -> Result<bool, EmbeddedPgError> {
        let test = find_tool("test").unwrap_or_else(|| PathBuf::from("test"));
        Ok(self.run(&test, &["-x".as_ref(), dir.as_os_str()])?.status.success())
    }
}

/// (uid, gid) of a system user, `None` if there is no such user.
fn lookup_user(name: &str) -> Result<Option<(u32, u32)>, EmbeddedPgError> {
    let c_name = CString::new(name).map_err(|e| EmbeddedPgError::Io {
        action: "look up user",
        path: PathBuf::from(name),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `passwd` is plain data (integers and pointers) for which all-zero is valid.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the duration of the call and `buf.len()` is the
    // true size of `buf`; getpwnam_r (unlike getpwnam) uses no shared static storage. We
    // only read the integer fields of `pwd` afterwards, not the strings pointing into `buf`.
    let rc = unsafe { libc::getpwnam_r(c_name.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 {
        return Err(EmbeddedPgError::Io {
            action: "look up user",
            path: PathBuf::from(name),
            source: io::Error::from_raw_os_error(rc),
        });
    }
    Ok((!result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid)))
}

/// runuser/su live in sbin, which is not always on PATH.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let system_dirs = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from);
    path_dirs
        .into_iter()
        .chain(system_dirs)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn shell_quote(arg: &OsStr) -> OsString {
    let mut quoted = b"'".to_vec();
    for &b in arg.as_bytes() {
        if b == b'\'' {
            quoted.extend_from_slice(b"'\\''");
        } else {
            quoted.push(b);
        }
    }
    quoted.push(b'\'');
    OsString::from_vec(quoted)
}

// ---------------------------------------------------------------------------------------
// Socket directory

/// `<home>/socket` when the socket path fits in `sun_path`; otherwise a short directory
/// under /tmp named after a hash of `home`, so each home still gets its own (the kernel
/// refuses longer socket paths, and deep homes such as CI workspaces easily exceed it).
fn socket_dir_for(home: &Path, port: u16) -> PathBuf {
    let preferred = home.join("socket");
    if socket_path_len(&preferred, port) <= MAX_SOCKET_PATH {
        return preferred;
    }
    PathBuf::from(format!("/tmp/annuaire-pg-{:016x}", fnv1a(home.as_os_str().as_bytes())))
}

fn socket_path_len(dir: &Path, port: u16) -> usize {
    dir.as_os_str().len() + format!("/.s.PGSQL.{port}").len()
}

/// FNV-1a: tiny and, unlike std's hashers, guaranteed stable across Rust releases, which
/// matters because separately built binaries must derive the same directory.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Creates the socket directory private to the server user. Under /tmp anyone could have
/// created it first, so an existing one must already belong to the server user.
fn prepare_socket_dir(dir: &Path, user: &ServerUser) -> Result<(), EmbeddedPgError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => user.chown(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(dir).map_err(io_err("inspect", dir))?;
            if !meta.is_dir() || meta.uid() != user.uid() {
                return Err(EmbeddedPgError::SocketDirNotOwned {
                    path: dir.to_path_buf(),
                    owner: meta.uid(),
                    expected: user.uid(),
                });
            }
            Ok(())
        }
        Err(e) => Err(io_err("create", dir)(e)),
    }
}

// ---------------------------------------------------------------------------------------
// Creating and starting

/// initdb into a scratch directory renamed into place on success, so that an interrupted
/// initdb never leaves a half-made `pgdata` behind (a data directory is relocatable while
/// the server is down).
fn init_data_dir(layout: &Layout, bin_dir: &Path, user: &ServerUser) -> Result<(), EmbeddedPgError> {
    if layout.data_dir.exists() {
        return Err(EmbeddedPgError::NotADataDir {
            path: layout.data_dir.clone(),
        });
    }
    let scratch = layout.home.join("pgdata.initdb");
    if scratch.exists() {
        fs::remove_dir_all(&scratch).map_err(io_err("remove", &scratch))?;
    }
    // Created by us because the server user may not write to `home` itself.
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&scratch)
        .map_err(io_err("create", &scratch))?;
    user.chown(&scratch)?;

    info!(data_dir = %layout.data_dir.display(), "initialising embedded PostgreSQL cluster");
    let username = format!("--username={SUPERUSER}");
    let args: [&OsStr; 6] = [
        "-D".as_ref(),
        scratch.as_os_str(),
        "--auth=trust".as_ref(),
        username.as_ref(),
        "--encoding=UTF8".as_ref(),
        // C collation: byte-order comparisons make the sorts and index builds of bulk
        // imports much faster than linguistic collations.
        "--locale=C".as_ref(),
    ];
    let output = user.run(&bin_dir.join("initdb"), &args)?;
    if !output.status.success() {
        return Err(EmbeddedPgError::InitdbFailed {
            status: output.status,
            output: output_text(&output),
        });
    }

    let conf = scratch.join("postgresql.conf");
    let mut file = File::options()
        .append(true)
        .open(&conf)
        .map_err(io_err("open", &conf))?;
    file.write_all(b"\n# Settings managed by annuaire.\ninclude_if_exists 'annuaire.conf'\n")
        .map_err(io_err("write", &conf))?;
    fs::rename(&scratch, &layout.data_dir).map_err(io_err("rename into place", &scratch))
}

fn write_settings(data_dir: &Path, socket_dir: &Path, user: &ServerUser) -> Result<(), EmbeddedPgError> {
    let mut text = String::from("# Rewritten by annuaire before every start; use ALTER SYSTEM to override.\n");
    // Unix socket only: nothing on this machine's network can reach the trust-auth cluster.
    let _ = writeln!(text, "listen_addresses = ''");
    let _ = writeln!(text, "port = {PORT}");
    let socket = socket_dir.to_string_lossy().replace('\'', "''");
    let _ = writeln!(text, "unix_socket_directories = '{socket}'");
    text.push_str(SETTINGS);

    let path = data_dir.join("annuaire.conf");
    File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io_err("write", &path))?;
    user.chown(&path)
}

/// After a crash, `postmaster.pid` and the socket lock file still name the dead
/// postmaster. PostgreSQL usually sees through that, but not when the PID now belongs to
/// another process of the same user (common after a container restart), so we remove them
/// (we hold the lock, and the socket directory is private to this cluster). Only once no
/// process of the old server is left, though: orphaned backends exit shortly after their
/// postmaster dies, and until then `postmaster.pid` is how PostgreSQL notices them.
fn remove_stale_files(data_dir: &Path, socket_dir: &Path, port: u16) -> Result<(), EmbeddedPgError> {
    let pid_file = data_dir.join("postmaster.pid");
    if !pid_file.exists() || !has_procfs() {
        return Ok(());
    }
    let deadline = Instant::now() + SERVER_TIMEOUT;
    loop {
        let leftovers = processes_in(data_dir);
        if leftovers.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            // Let PostgreSQL refuse to start and say why.
            warn!(
                ?leftovers,
                "processes of a previous server still run; keeping postmaster.pid"
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stale = [
        pid_file,
        socket_dir.join(format!(".s.PGSQL.{port}")),
        socket_dir.join(format!(".s.PGSQL.{port}.lock")),
    ];
    for path in stale {
        match fs::remove_file(&path) {
            Ok(()) => warn!(path = %path.display(), "removed stale file left by a previous server"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove stale", &path)(e)),
        }
    }
    Ok(())
}

fn start(layout: &Layout, bin_dir: &Path, user: &ServerUser) -> Result<(), EmbeddedPgError> {
    // pg_ctl opens the log as the server user, which may not create files in `home`.
    File::options()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&layout.log_file)
        .map_err(io_err("create", &layout.log_file))?;
    user.chown(&layout.log_file)?;

    info!(data_dir = %layout.data_dir.display(), "starting embedded PostgreSQL");
    let timeout = SERVER_TIMEOUT.as_secs().to_string();
    let args: [&OsStr; 8] = [
        "-D".as_ref(),
        layout.data_dir.as_os_str(),
        "-l".as_ref(),
        layout.log_file.as_os_str(),
        "-w".as_ref(),
        "-t".as_ref(),
        timeout.as_ref(),
        "start".as_ref(),
    ];
    // pg_ctl points the postmaster's stdio at the log file, so capturing pg_ctl's output
    // does not wait for the server to exit.
    let output = user.run(&bin_dir.join("pg_ctl"), &args)?;
    if !output.status.success() {
        return Err(EmbeddedPgError::StartFailed {
            status: output.status,
            output: output_text(&output),
            log: layout.log_file.clone(),
            log_tail: log_tail(&layout.log_file, LOG_TAIL_LINES),
        });
    }
    Ok(())
}

fn output_text(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text.trim_end().to_owned()
}

/// The last `lines` lines of the log (reading only its end: the log is never rotated).
fn log_tail(path: &Path, lines: usize) -> String {
    const WINDOW: u64 = 64 * 1024;
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(WINDOW)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read the log: {e})"),
    }
}

// ---------------------------------------------------------------------------------------
// Is it running?

/// What `postmaster.pid` says about a running server.
#[derive(Debug)]
struct PidFile {
    pid: u32,
    port: Option<u16>,
    socket_dir: Option<PathBuf>,
    /// "starting", "ready", "stopping"...
    state: String,
}

/// `postmaster.pid` lines: pid, data dir, start time, port, first socket dir,
/// first listen address, shared memory key, state.
fn read_pid_file(data_dir: &Path) -> Result<Option<PidFile>, EmbeddedPgError> {
    let path = data_dir.join("postmaster.pid");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    // A file being written (or truncated by a crash) is treated as absent.
    let Some(pid) = lines.first().and_then(|l| l.parse().ok()) else {
        return Ok(None);
    };
    Ok(Some(PidFile {
        pid,
        port: lines.get(3).and_then(|l| l.parse().ok()),
        socket_dir: lines.get(4).filter(|l| !l.is_empty()).map(PathBuf::from),
        state: lines.get(7).unwrap_or(&"").to_string(),
    }))
}

/// The postmaster of `data_dir`, if one is alive.
fn live_postmaster(data_dir: &Path) -> Result<Option<PidFile>, EmbeddedPgError> {
    let Some(pid_file) = read_pid_file(data_dir)? else {
        return Ok(None);
    };
    Ok(is_postmaster_of(pid_file.pid, data_dir).then_some(pid_file))
}

/// Whether `pid` is alive and is the postmaster of `data_dir`, not a corpse or an
/// unrelated process that inherited the PID after a crash.
fn is_postmaster_of(pid: u32, data_dir: &Path) -> bool {
    let Ok(raw_pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 sends nothing; kill only checks that the process exists and that
    // we may signal it. No memory is involved.
    if unsafe { libc::kill(raw_pid, 0) } != 0 {
        // ESRCH: gone. EPERM: someone else's process, so not a server we run.
        return false;
    }
    if !has_procfs() {
        // Nothing more to ask: trust the PID.
        return true;
    }
    fs::canonicalize(data_dir).is_ok_and(|dir| runs_in(pid, &dir))
}

fn has_procfs() -> bool {
    Path::new("/proc/self").exists()
}

/// Live processes running in `data_dir`: a server's postmaster and backends all keep the
/// data directory as working directory.
fn processes_in(data_dir: &Path) -> Vec<u32> {
    let (Ok(dir), Ok(entries)) = (fs::canonicalize(data_dir), fs::read_dir("/proc")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| runs_in(pid, &dir))
        .collect()
}

/// Whether process `pid` is alive with working directory `dir` (canonical). Zombies do not
/// count: a killed postmaster stays one until reaped (containers often have no init to
/// reap it), and kill() still finds it.
fn runs_in(pid: u32, dir: &Path) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, None | Some('Z' | 'X')) {
        return false;
    }
    fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir)
}

/// Waits (bounded) for a server that is starting up or shutting down to settle; returns
/// the server if it ends up ready, `None` if none runs.
fn wait_while_transitioning(data_dir: &Path) -> Result<Option<PidFile>, EmbeddedPgError> {
    let deadline = Instant::now() + SERVER_TIMEOUT;
    loop {
        let Some(pid_file) = live_postmaster(data_dir)? else {
            return Ok(None);
        };
        if pid_file.state == "ready" {
            return Ok(Some(pid_file));
        }
        if Instant::now() >= deadline {
            return Err(EmbeddedPgError::NotReady {
                data_dir: data_dir.to_path_buf(),
                state: pid_file.state,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------
// SQL and URL helpers

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Percent-encodes all but unreserved characters and `/` (kept for readable socket paths).
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

    fn fake_bin_dir(root: &Path, name: &str, binaries: &[&str], mode: u32) -> PathBuf {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        for b in binaries {
            let path = dir.join(b);
            fs::write(&path, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
        dir
    }

    #[test]
    fn versions_sort_numerically_highest_first() {
        let names = ["9.6", "15", "10", "16", "common", "16.2"].map(String::from).to_vec();
        assert_eq!(sort_versions_desc(names), ["16.2", "16", "15", "10", "9.6"]);
    }

    #[test]
    fn versioned_dirs_come_highest_first() {
        let root = tempfile::tempdir().unwrap();
        for v in ["9.6", "15", "16", "notes"] {
            fs::create_dir_all(root.path().join(v).join("bin")).unwrap();
        }
        let dirs = versioned_bin_dirs(root.path());
        let expected: Vec<PathBuf> = ["16", "15", "9.6"]
            .iter()
            .map(|v| root.path().join(v).join("bin"))
            .collect();
        assert_eq!(dirs, expected);
    }

    #[test]
    fn first_complete_dir_skips_incomplete_and_non_executable() {
        let root = tempfile::tempdir().unwrap();
        let partial = fake_bin_dir(root.path(), "partial", &["initdb", "pg_ctl"], 0o755);
        let not_exec = fake_bin_dir(root.path(), "noexec", &REQUIRED_BINARIES, 0o644);
        let good = fake_bin_dir(root.path(), "good", &REQUIRED_BINARIES, 0o755);
        let later = fake_bin_dir(root.path(), "later", &REQUIRED_BINARIES, 0o755);
        assert_eq!(
            first_complete_bin_dir([partial.clone(), not_exec, good.clone(), later]),
            Some(good)
        );
        assert_eq!(first_complete_bin_dir([partial]), None);
    }

    #[test]
    fn socket_dir_is_inside_a_short_home() {
        let home = Path::new("/srv/annuaire");
        assert_eq!(socket_dir_for(home, 5432), home.join("socket"));
    }

    #[test]
    fn socket_dir_moves_to_tmp_exactly_when_the_path_is_too_long() {
        let suffix = "/socket/.s.PGSQL.5432".len();
        // "/" + name + suffix is exactly the limit.
        let fits = PathBuf::from(format!("/{}", "a".repeat(MAX_SOCKET_PATH - suffix - 1)));
        assert_eq!(socket_dir_for(&fits, 5432), fits.join("socket"));
        assert_eq!(socket_path_len(&fits.join("socket"), 5432), MAX_SOCKET_PATH);

        let too_long = PathBuf::from(format!("/{}", "a".repeat(MAX_SOCKET_PATH - suffix)));
        let dir = socket_dir_for(&too_long, 5432);
        assert!(dir.starts_with("/tmp"), "{dir:?}");
        assert!(socket_path_len(&dir, 5432) <= MAX_SOCKET_PATH);
        // Stable for one home, distinct between homes.
        assert_eq!(dir, socket_dir_for(&too_long, 5432));
        let other = PathBuf::from(format!("/{}", "b".repeat(200)));
        assert_ne!(dir, socket_dir_for(&other, 5432));
    }

    #[test]
    fn fnv1a_matches_reference_values() {
        // Published FNV-1a 64 test vectors: the fallback directory name must never change.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

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

    #[test]
    fn shell_quote_survives_single_quotes() {
        assert_eq!(shell_quote(OsStr::new("it's")), OsString::from("'it'\\''s'"));
    }

    #[test]
    fn pid_file_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("postmaster.pid"),
            "4242\n/d/pgdata\n1700000000\n5433\n/d/socket\n\n  5433001     32768\nready   \n",
        )
        .unwrap();
        let pid_file = read_pid_file(dir.path()).unwrap().unwrap();
        assert_eq!(pid_file.pid, 4242);
        assert_eq!(pid_file.port, Some(5433));
        assert_eq!(pid_file.socket_dir, Some(PathBuf::from("/d/socket")));
        assert_eq!(pid_file.state, "ready");
    }
}
