//! Where an index's files are written: tantivy's memory-mapped directory on disk, unless
//! the server is given another `Directory` per path (a test's that fails like a full disk,
//! say). Whatever the storage, a write that fails for want of space is told as such.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use tantivy::TantivyError;
use tantivy::directory::error::{LockError, OpenDirectoryError, OpenReadError, OpenWriteError};
use tantivy::directory::{Directory, MmapDirectory};

/// Opens the directory an index lives in, from its path.
type OpenDirectory = dyn Fn(&Path) -> io::Result<Box<dyn Directory>> + Send + Sync;

/// How index directories are opened: on disk by default.
#[derive(Clone, Default)]
pub struct IndexStorage(Option<Arc<OpenDirectory>>);

impl IndexStorage {
    /// Storage that opens each index's directory with `open` (given the directory's path,
    /// which exists).
    pub fn with(open: impl Fn(&Path) -> io::Result<Box<dyn Directory>> + Send + Sync + 'static) -> IndexStorage {
        IndexStorage(Some(Arc::new(open)))
    }

    pub(super) fn open(&self, path: &Path) -> tantivy::Result<Box<dyn Directory>> {
        match &self.0 {
            Some(open) => open(path).map_err(|e| TantivyError::IoError(Arc::new(e))),
            None => Ok(Box::new(MmapDirectory::open(path)?)),
        }
    }
}

impl fmt::Debug for IndexStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "IndexStorage(given)"
        } else {
            "IndexStorage(disk)"
        })
    }
}

/// The I/O error under a tantivy error, where it has one.
pub(super) fn tantivy_io(error: &TantivyError) -> Option<&io::Error> {
    let io: &Arc<io::Error> = match error {
        TantivyError::IoError(io) => io,
        TantivyError::OpenWriteError(OpenWriteError::IoError { io_error, .. })
        | TantivyError::OpenReadError(OpenReadError::IoError { io_error, .. })
        | TantivyError::OpenDirectoryError(OpenDirectoryError::IoError { io_error, .. }) => io_error,
        TantivyError::LockFailure(LockError::IoError(io), _) => io,
        _ => return None,
    };
    Some(io.as_ref())
}

/// A write refused for want of space (ENOSPC, or a quota reached).
pub fn is_storage_full(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}
