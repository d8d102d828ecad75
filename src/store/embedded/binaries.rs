//! Finding the machine's PostgreSQL server binaries: the first directory on `PATH`, then
//! under the versioned Debian/Ubuntu installs (highest version first), that holds all of
//! initdb, pg_ctl and postgres.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::EmbeddedPgError;

/// Where versioned installs live on Debian/Ubuntu (`/usr/lib/postgresql/<version>/bin`).
const VERSIONED_INSTALL_ROOT: &str = "/usr/lib/postgresql";
const REQUIRED_BINARIES: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

pub(super) fn find_bin_dir() -> Result<PathBuf, EmbeddedPgError> {
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

pub(super) fn is_executable(path: &Path) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
