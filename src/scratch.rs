//! Temporary files a killed process leaves behind (a partial download, a partial export),
//! and their removal when the next one starts. A process that writes such files holds a
//! shared lock on their directory for as long as they live; a sweep takes that lock
//! exclusively, so it removes leftovers only when no live process (another import, a
//! server's job) has files there, and otherwise leaves them for a later start.

use std::ffi::OsStr;
use std::fs::{File, TryLockError};
use std::io;
use std::path::Path;

/// A shared lock on a directory of temporary files: while any handle of it is held, no
/// sweep touches the directory. `None` inside when the lock could not be had: nothing is
/// swept there then, by this process at least.
#[derive(Debug)]
pub struct Claim(Option<File>);

impl Claim {
    /// Another handle on the same lock, for a value that outlives the claim's owner.
    pub fn share(&self) -> io::Result<Claim> {
        self.0.as_ref().map(File::try_clone).transpose().map(Claim)
    }
}

/// Creates `dir` if need be, removes the leftovers in it (the entries whose name
/// `is_leftover` recognises) when no live process holds it, and claims it for files
/// about to be written. Blocks while another process sweeps it (a few removals); call it
/// off the async workers.
pub fn claim(dir: &Path, is_leftover: impl Fn(&OsStr) -> bool) -> io::Result<Claim> {
    std::fs::create_dir_all(dir)?;
    let handle = File::open(dir)?;
    match handle.try_lock() {
        Ok(()) => {
            remove_leftovers(dir, &is_leftover);
            handle.unlock()?;
        }
        // A live writer: its files are not leftovers, and ours wait for a later start.
        Err(TryLockError::WouldBlock) => {}
        // No lock to be had (a file system without them): the files are still written,
        // only not swept.
        Err(TryLockError::Error(error)) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot lock the directory: leftovers there are not removed");
            return Ok(Claim(None));
        }
    }
    match handle.lock_shared() {
        Ok(()) => Ok(Claim(Some(handle))),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot lock the directory: leftovers there are not removed");
            Ok(Claim(None))
        }
    }
}

/// Removes the leftovers in `dir` when no live process holds it (`claim` without the
/// claim): for a start that writes nothing there yet.
pub fn sweep(dir: &Path, is_leftover: impl Fn(&OsStr) -> bool) -> io::Result<()> {
    let handle = match File::open(dir) {
        Ok(handle) => handle,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    match handle.try_lock() {
        Ok(()) => remove_leftovers(dir, &is_leftover),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(error)) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot lock the directory: leftovers there are not removed");
        }
    }
    Ok(())
}

/// Each failure is logged and the others are still tried: a leftover that cannot go is
/// no reason to stop a start.
fn remove_leftovers(dir: &Path, is_leftover: &impl Fn(&OsStr) -> bool) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot list the directory to remove leftovers");
            return;
        }
    };
    for entry in entries.flatten() {
        if !is_leftover(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        let removed = match entry.file_type() {
            Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        match removed {
            Ok(()) => tracing::info!(path = %path.display(), "removed the leftover of a process that was stopped"),
            Err(error) => tracing::warn!(path = %path.display(), %error, "cannot remove a leftover"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(name: &OsStr) -> bool {
        name.to_string_lossy().ends_with(".partial")
    }

    #[test]
    fn leftovers_go_when_no_one_holds_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.partial"), b"half").unwrap();
        std::fs::create_dir(dir.path().join("b.partial")).unwrap();
        std::fs::write(dir.path().join("b.partial/x"), b"half").unwrap();
        std::fs::write(dir.path().join("kept.zip"), b"mine").unwrap();
        let _claim = claim(dir.path(), partial).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["kept.zip"]);
    }

    #[test]
    fn a_held_directory_is_not_swept_until_released() {
        let dir = tempfile::tempdir().unwrap();
        // Another open of the directory: its lock conflicts as another process's would.
        let live = claim(dir.path(), partial).unwrap();
        let shared = live.share().unwrap();
        drop(live);
        std::fs::write(dir.path().join("live.partial"), b"being written").unwrap();
        let other = claim(dir.path(), partial).unwrap();
        sweep(dir.path(), partial).unwrap();
        assert!(dir.path().join("live.partial").exists(), "a live writer's file stays");
        drop(shared);
        drop(other);
        sweep(dir.path(), partial).unwrap();
        assert!(
            !dir.path().join("live.partial").exists(),
            "once released, it is a leftover"
        );
    }
}
