//! The socket directory: the only way into the cluster (no TCP). Inside the home when the
//! socket path fits the kernel's limit, otherwise a short private directory under /tmp
//! derived from the home; never one that someone else created first.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::user::ServerUser;
use super::{EmbeddedPgError, io_err};

/// `sun_path` is 108 bytes on Linux, including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// `<home>/socket` when the socket path fits in `sun_path`; otherwise a short directory
/// under /tmp named after a hash of `home`, so each home still gets its own (the kernel
/// refuses longer socket paths, and deep homes such as CI workspaces easily exceed it).
pub(super) fn socket_dir_for(home: &Path, port: u16) -> PathBuf {
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
pub(super) fn prepare_socket_dir(dir: &Path, user: &ServerUser) -> Result<(), EmbeddedPgError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
