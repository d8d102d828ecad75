//! Who runs the server: ourselves, or (when we are root, which PostgreSQL refuses) the
//! `postgres` system user through runuser or su. Owns the commands run as that user and
//! the handing over of files to it.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tracing::debug;

use super::binaries::is_executable;
use super::{EmbeddedPgError, io_err};

/// The system user PostgreSQL runs as when we are root (it refuses to run as root).
const SERVER_SYSTEM_USER: &str = "postgres";

#[derive(Debug)]
pub(super) enum ServerUser {
    /// Not root: the server runs as whoever we are.
    Current { uid: u32 },
    /// Root: PostgreSQL refuses to run as root, so it runs as the `postgres` system user.
    Postgres { uid: u32, gid: u32, switch: SwitchUser },
}

#[derive(Debug)]
pub(super) enum SwitchUser {
    Runuser(PathBuf),
    Su(PathBuf),
}

impl ServerUser {
    pub(super) fn detect() -> Result<ServerUser, EmbeddedPgError> {
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

    pub(super) fn uid(&self) -> u32 {
        match self {
            ServerUser::Current { uid } | ServerUser::Postgres { uid, .. } => *uid,
        }
    }

    /// Hands `path` to the server user (no-op when we are that user).
    pub(super) fn chown(&self, path: &Path) -> Result<(), EmbeddedPgError> {
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

    pub(super) fn run(&self, program: &Path, args: &[&OsStr]) -> Result<Output, EmbeddedPgError> {
        let mut cmd = self.command(program, args);
        debug!(?cmd, "running");
        cmd.output().map_err(|source| EmbeddedPgError::Spawn {
            program: program.display().to_string(),
            source,
        })
    }

    /// Whether the server user can traverse into `dir`, i.e. every parent lets it through.
    pub(super) fn can_enter(&self, dir: &Path) -> Result<bool, EmbeddedPgError> {
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

/// The server outlives this process, and inherits every descriptor this process itself
/// inherited without close-on-exec (std opens its own with the flag): a lock taken by a
/// wrapper (`flock … annuaire serve`, `flock … cargo test`) would then stay held by the
/// server for good. Marks them close-on-exec before the server is started, once per process.
pub(super) fn keep_inherited_descriptors_from_the_server() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        let inherited = entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|fd| *fd > 2);
        for fd in inherited {
            // SAFETY: F_GETFD and F_SETFD only read and set a descriptor's flags, no memory
            // of ours; a number no longer open (the listing's own) fails with EBADF.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_survives_single_quotes() {
        assert_eq!(shell_quote(OsStr::new("it's")), OsString::from("'it'\\''s'"));
    }
}
