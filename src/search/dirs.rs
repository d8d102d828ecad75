//! The directories under the search root: one per full build (`index-<generation>-<ms>`),
//! `current` a symlink to the one in use, a lock file in a directory while it is built. A
//! superseded directory is removed once another is served: each rebuild (after every purge
//! that takes someone) would otherwise leave a whole index behind on the disk.

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use super::index::IndexError;

/// What every build directory's name starts with: nothing else under the root is removed.
const PREFIX: &str = "index-";
/// Held (an exclusive `flock`) by whoever builds the directory, in this process or another.
const BUILDING: &str = "building.lock";

/// A new build directory's path under `root`.
pub(super) fn new_build(root: &Path, generation: i64) -> PathBuf {
    root.join(format!(
        "{PREFIX}{generation}-{}",
        chrono::Utc::now().timestamp_millis()
    ))
}

/// A directory being built: created with its lock held; the lock file goes with the guard.
pub(super) struct Building {
    lock: PathBuf,
    _file: File,
}

impl Building {
    pub(super) fn start(dir: &Path) -> Result<Building, IndexError> {
        let io = |source| IndexError::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = dir.join(BUILDING);
        let file = File::create(&lock).map_err(io)?;
        file.try_lock().map_err(|e| io(e.into()))?;
        Ok(Building { lock, _file: file })
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        // The lock is released with the file; the file is only left behind if this fails,
        // and a lock nobody holds protects nothing.
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// Whether someone (this process or another) is building `dir` now. A lock file whose
/// builder died (a crash mid-build) is not held.
fn being_built(dir: &Path) -> bool {
    File::open(dir.join(BUILDING)).is_ok_and(|file| matches!(file.try_lock(), Err(TryLockError::WouldBlock)))
}

/// Points `root/current` at `dir`, atomically (a symlink renamed over the old one).
pub(super) fn point_current(root: &Path, dir: &Path) -> Result<(), IndexError> {
    let io = |source| IndexError::Io {
        path: root.join("current"),
        source,
    };
    let temporary = root.join(format!("current.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let target = dir.file_name().map(PathBuf::from).unwrap_or_else(|| dir.to_owned());
    std::os::unix::fs::symlink(&target, &temporary).map_err(io)?;
    std::fs::rename(&temporary, root.join("current")).map_err(io)?;
    Ok(())
}

/// Removes the build directories under `root` that are neither `served` (the index this
/// process answers from), nor `current`'s target (what another process opens), nor being
/// built; returns those removed. Blocking: a directory is a whole index.
pub fn remove_superseded(root: &Path, served: &Path) -> Vec<PathBuf> {
    let current = std::fs::read_link(root.join("current")).ok();
    let kept = [current.as_deref().and_then(Path::file_name), served.file_name()];
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(root = %root.display(), %error, "cannot list the search directory to remove old indexes");
            return Vec::new();
        }
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        // A symlink is never followed: only real directories of ours are removed.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || !name.to_string_lossy().starts_with(PREFIX) || kept.contains(&Some(name.as_os_str())) {
            continue;
        }
        let path = entry.path();
        if being_built(&path) {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "superseded search index removed");
                removed.push(path);
            }
            Err(error) => tracing::warn!(path = %path.display(), %error, "cannot remove a superseded search index"),
        }
    }
    removed
}

/// Removes what a failed build left in `dir`: on a full disk, the next attempt needs its
/// space.
pub(super) fn discard(dir: &Path) {
    if let Err(error) = std::fs::remove_dir_all(dir)
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %dir.display(), %error, "cannot remove a failed search index build");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_superseded_directories_go() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let [old, current, served, built, other] =
            ["index-1-100", "index-2-200", "index-3-300", "index-4-400", "notes"].map(|n| root.join(n));
        for dir in [&old, &current, &served, &built, &other] {
            std::fs::create_dir(dir).unwrap();
        }
        point_current(root, &current).unwrap();
        let building = Building::start(&built).unwrap();
        // A lock file left by a builder that died protects nothing.
        std::fs::write(old.join(BUILDING), b"").unwrap();

        assert_eq!(remove_superseded(root, &served), vec![old.clone()]);
        assert!(current.exists() && served.exists() && built.exists() && other.exists());
        drop(building);
        assert!(!built.join(BUILDING).exists());
        assert_eq!(remove_superseded(root, &served), vec![built]);
        assert!(root.join("current").exists(), "the link is never removed");
    }
}
