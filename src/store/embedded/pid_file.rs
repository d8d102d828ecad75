//! Is a server running? What `postmaster.pid` says, checked against the live processes
//! (a PID can outlive its server, or be reused after a crash), and waiting for a server
//! that is starting or stopping to settle.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{EmbeddedPgError, SERVER_TIMEOUT, io_err};

/// What `postmaster.pid` says about a running server.
#[derive(Debug)]
pub(super) struct PidFile {
    pub(super) pid: u32,
    pub(super) port: Option<u16>,
    pub(super) socket_dir: Option<PathBuf>,
    /// "starting", "ready", "stopping"...
    pub(super) state: String,
}

/// `postmaster.pid` lines: pid, data dir, start time, port, first socket dir,
/// first listen address, shared memory key, state.
pub(super) fn read_pid_file(data_dir: &Path) -> Result<Option<PidFile>, EmbeddedPgError> {
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
pub(super) fn live_postmaster(data_dir: &Path) -> Result<Option<PidFile>, EmbeddedPgError> {
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

pub(super) fn has_procfs() -> bool {
    Path::new("/proc/self").exists()
}

/// Live processes running in `data_dir`: a server's postmaster and backends all keep the
/// data directory as working directory.
pub(super) fn processes_in(data_dir: &Path) -> Vec<u32> {
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
pub(super) fn wait_while_transitioning(data_dir: &Path) -> Result<Option<PidFile>, EmbeddedPgError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
