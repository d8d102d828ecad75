//! The cluster's life: its files under the home, creating it (initdb), starting it with
//! our settings, stopping it, reporting on it, and clearing what a crashed server left.
//! Init, start and stop are serialised between processes by a lock file.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::binaries::find_bin_dir;
use super::pid_file::{PidFile, has_procfs, live_postmaster, processes_in, read_pid_file, wait_while_transitioning};
use super::socket::{prepare_socket_dir, socket_dir_for};
use super::user::ServerUser;
use super::{ClusterStatus, EmbeddedCluster, EmbeddedPgError, PORT, SERVER_TIMEOUT, SUPERUSER, io_err};

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

    super::user::keep_inherited_descriptors_from_the_server();
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
