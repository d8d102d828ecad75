//! The Annuaire Santé extract files: where they are (a zip, a directory, one `.txt`),
//! which file is which, and how their lines become canonical rows. Pure of any database.

pub mod bounded;
pub mod columns;
pub mod read_ahead;
pub mod reader;
pub mod source;

pub use columns::FileKind;
pub use reader::{DEFAULT_MAX_LINE_BYTES, FileStats, HeaderMap, Reject, RowSink};
pub use source::{Source, SourceFile};

/// What can go wrong while reading an extract, in the operator's terms.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("{path}: {reason}")]
    Source { path: String, reason: String },
    #[error("{file}: the file is empty (no header line)")]
    EmptyFile { file: String },
    #[error("{file}: required column {name:?} is missing from the header")]
    MissingColumn { file: String, name: String },
    #[error("{file}: column {name:?} appears twice in the header")]
    DuplicateColumn { file: String, name: String },
    #[error("{file}: the header line is longer than {max} bytes")]
    HeaderTooLong { file: String, max: usize },
    #[error("{file}: the header line contains a NUL byte")]
    NulInHeader { file: String },
    #[error("{file}: line {line}: invalid UTF-8 in column {column:?} (is the file Latin-1?)")]
    InvalidUtf8 { file: String, line: u64, column: String },
    #[error("{file}: cannot be read: {reason}")]
    Read { file: String, reason: String },
    /// The consumer of the rows stopped (database error, cancellation): not the file's fault.
    #[error("reading stopped: {0}")]
    Stopped(String),
}

impl ExtractError {
    fn read(file: &str, error: impl std::fmt::Display) -> ExtractError {
        ExtractError::Read {
            file: file.to_owned(),
            reason: error.to_string(),
        }
    }

    fn source(path: &std::path::Path, reason: impl std::fmt::Display) -> ExtractError {
        ExtractError::Source {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}
