//! The downloader of extracts and the process's HTTP clients (reqwest), built once at
//! start: connect and read timeouts, an extra CA bundle for the publisher's IGC-Santé chain
//! on downloads only (verification is never switched off), retries of what is worth
//! retrying (429, 503, timeouts, cut connections) with back-off and `Retry-After`, a size
//! cap, a checksum, and a refusal of what is not an extract (an HTML page, an empty or far
//! too small body, a broken zip, a zip without the expected files). Local paths pass
//! through untouched. A partial download of a process killed mid-way is removed when the
//! next download or server starts.

mod checks;
mod client;
mod fetch;
mod retry;

use std::path::PathBuf;
use std::time::Duration;

pub use checks::disposition_file_name;
pub use client::Downloader;
pub use fetch::{LocalSource, fetch_if_remote, remove_leftovers};
pub use retry::RetryPolicy;

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: gave up after {attempts} attempts in {seconds} s; last error: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        seconds: u64,
        last: String,
    },
    #[error("{url}: refused, not an extract: {reason}")]
    Refused { url: String, reason: String },
    #[error("{url}: larger than the {max_mb} MB cap")]
    TooLarge { url: String, max_mb: u64 },
    #[error("cannot write the download to {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("{url}: a URL source, but no download client was given")]
    NoClient { url: String },
    #[error("download settings: {0}")]
    Settings(String),
    #[error("download cancelled")]
    Cancelled,
}

/// How downloads behave; the defaults suit the national extract (about 230 MB).
#[derive(Debug, Clone)]
pub struct DownloadSettings {
    pub connect_timeout: Duration,
    /// Longest silence while reading the body.
    pub read_timeout: Duration,
    pub max_bytes: u64,
    pub retry: RetryPolicy,
    /// PEM bundle of extra roots (the IGC-Santé chain), added to the public ones.
    pub extra_ca_bundle: Option<PathBuf>,
}

impl Default for DownloadSettings {
    fn default() -> Self {
        DownloadSettings {
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            max_bytes: 4 << 30,
            retry: RetryPolicy::default(),
            extra_ca_bundle: None,
        }
    }
}

/// What a `HEAD` says of the extract on offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub file_name: Option<String>,
}

/// A downloaded extract, deleted with this value.
#[derive(Debug)]
pub struct Fetched {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    _dir: tempfile::TempDir,
    /// Keeps other processes from taking the file for a leftover; released after `_dir`
    /// is deleted (fields drop in order).
    _claim: crate::scratch::Claim,
}

pub fn is_remote(location: &str) -> bool {
    location.starts_with("http://") || location.starts_with("https://")
}
