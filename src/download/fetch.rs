//! Downloading an extract: attempts retried as the policy says (back-off, `Retry-After`,
//! a total budget, cancellation), each one a request, a body streamed to a private
//! temporary file under a size cap with its checksum, and the checks that it is an extract.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::checks::{disposition_file_name, refusal, refused, url_file_name};
use super::{DownloadError, Downloader, Fetched, is_remote, retry};
use crate::extract::Source;
use crate::scratch::{self, Claim};

/// Why one attempt did not bring the extract: worth another try (with the server's wish),
/// or final.
enum Setback {
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    Fail(DownloadError),
}

impl Setback {
    /// A cut connection or a timeout: the whole download starts again.
    fn transport(error: &reqwest::Error) -> Setback {
        Setback::Retry {
            error: describe(error),
            retry_after: None,
        }
    }
}

/// What was read of a body: its size, its checksum and its first bytes (to judge it).
struct Body {
    bytes: u64,
    sha256: String,
    head: Vec<u8>,
}

/// How much of the body's start is kept to judge what it is.
const HEAD_BYTES: usize = 512;

impl Downloader {
    /// Downloads `url` into a temporary directory under `dir`, retrying as the policy says.
    /// `min_bytes` refuses a body far smaller than what was last published.
    pub async fn fetch(
        &self,
        url: &str,
        dir: &Path,
        min_bytes: u64,
        cancel: &CancellationToken,
    ) -> Result<Fetched, DownloadError> {
        let started = Instant::now();
        let claim = claim(dir).await?;
        let policy = self.settings.retry;
        let mut last_error = String::new();
        for attempt in 1..=policy.attempts.max(1) {
            if attempt > 1 {
                tracing::warn!(url, attempt, error = %last_error, "download failed; retrying");
            }
            let attempt_result = tokio::select! {
                // Dropping the attempt deletes its partial file.
                _ = cancel.cancelled() => return Err(DownloadError::Cancelled),
                result = self.attempt(url, dir, min_bytes, &claim) => result,
            };
            match attempt_result {
                Ok(fetched) => {
                    tracing::info!(url, bytes = fetched.bytes, attempts = attempt, "downloaded");
                    return Ok(fetched);
                }
                Err(Setback::Fail(error)) => return Err(error),
                Err(Setback::Retry { error, retry_after }) => {
                    last_error = error;
                    let wait = policy.backoff(attempt + 1, retry_after, retry::jitter());
                    if attempt == policy.attempts || started.elapsed() + wait > policy.total {
                        return Err(DownloadError::GaveUp {
                            url: url.to_owned(),
                            attempts: attempt,
                            seconds: started.elapsed().as_secs(),
                            last: last_error,
                        });
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return Err(DownloadError::Cancelled),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        Err(DownloadError::GaveUp {
            url: url.to_owned(),
            attempts: policy.attempts,
            seconds: started.elapsed().as_secs(),
            last: last_error,
        })
    }

    /// One attempt: ask, pick the file's name and place, read the body, check it.
    async fn attempt(&self, url: &str, dir: &Path, min_bytes: u64, claim: &Claim) -> Result<Fetched, Setback> {
        let response = self.request(url).await?;
        let name = file_name(url, &response);
        let (temp, path) = scratch_file(dir, &name)?;
        let body = self.receive(url, response, &path).await?;
        check(url, &path, &body, min_bytes).await?;
        Ok(Fetched {
            path,
            bytes: body.bytes,
            sha256: body.sha256,
            _dir: temp,
            _claim: claim.share().map_err(|e| Setback::Fail(write_error(dir, e)))?,
        })
    }

    /// The `GET` and what its status and type say: busy (retry), refused, or a body to read.
    async fn request(&self, url: &str) -> Result<reqwest::Response, Setback> {
        let response = self.client.get(url).send().await.map_err(|e| Setback::transport(&e))?;
        let status = response.status();
        if matches!(status.as_u16(), 429 | 502 | 503 | 504) {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry::parse_retry_after(v, chrono::Utc::now()));
            return Err(Setback::Retry {
                error: format!("the server answered {status}"),
                retry_after,
            });
        }
        if !status.is_success() {
            return Err(Setback::Fail(DownloadError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            }));
        }
        let html = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("html"));
        if html {
            return Err(Setback::Fail(refused(
                url,
                "the server sent an HTML page (an error or maintenance page?)",
            )));
        }
        Ok(response)
    }

    /// Streams the body into `path`: counted against the cap, hashed, its start kept.
    async fn receive(&self, url: &str, response: reqwest::Response, path: &Path) -> Result<Body, Setback> {
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| Setback::Fail(write_error(path, e)))?;
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut head = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Setback::transport(&e))?;
            bytes += chunk.len() as u64;
            if bytes > self.settings.max_bytes {
                return Err(Setback::Fail(DownloadError::TooLarge {
                    url: url.to_owned(),
                    max_mb: self.settings.max_bytes >> 20,
                }));
            }
            if head.len() < HEAD_BYTES {
                head.extend_from_slice(&chunk[..chunk.len().min(HEAD_BYTES - head.len())]);
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| Setback::Fail(write_error(path, e)))?;
        }
        file.flush().await.map_err(|e| Setback::Fail(write_error(path, e)))?;
        Ok(Body {
            bytes,
            sha256: hex::encode(hasher.finalize()),
            head,
        })
    }
}

/// The name the publisher gives (the import reads the extract's timestamp from it), else
/// the URL's last segment.
fn file_name(url: &str, response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(disposition_file_name)
        .or_else(|| url_file_name(url))
        .unwrap_or_else(|| "extract.zip".to_owned())
}

/// The name of each download's private directory starts with this: what a killed process
/// leaves behind is recognised by it.
const SCRATCH_PREFIX: &str = "annuaire-download-";

fn is_leftover(name: &OsStr) -> bool {
    name.to_str().is_some_and(|name| name.starts_with(SCRATCH_PREFIX))
}

/// Claims `dir` for a download, first removing the partial downloads of processes killed
/// mid-way (when no live one downloads there).
async fn claim(dir: &Path) -> Result<Claim, DownloadError> {
    let owned = dir.to_owned();
    tokio::task::spawn_blocking(move || scratch::claim(&owned, is_leftover))
        .await
        .map_err(std::io::Error::other)
        .and_then(|claimed| claimed)
        .map_err(|e| write_error(dir, e))
}

/// Removes the partial downloads that killed processes left in `dir`, unless a live one
/// downloads there: for a server's start.
pub fn remove_leftovers(dir: &Path) -> std::io::Result<()> {
    scratch::sweep(dir, is_leftover)
}

/// A fresh private directory under `dir` (deleted with the returned value) and the path of
/// the file to write in it.
fn scratch_file(dir: &Path, name: &str) -> Result<(tempfile::TempDir, PathBuf), Setback> {
    std::fs::create_dir_all(dir).map_err(|e| Setback::Fail(write_error(dir, e)))?;
    let temp = tempfile::Builder::new()
        .prefix(SCRATCH_PREFIX)
        .tempdir_in(dir)
        .map_err(|e| Setback::Fail(write_error(dir, e)))?;
    let path = temp.path().join(name);
    Ok((temp, path))
}

/// Refuses a complete body that is not an extract: judged from its start and size, then
/// opened as a source (off the async workers: it reads the zip's directory).
async fn check(url: &str, path: &Path, body: &Body, min_bytes: u64) -> Result<(), Setback> {
    if let Some(reason) = refusal(&body.head, body.bytes, min_bytes) {
        return Err(Setback::Fail(refused(url, &reason)));
    }
    let checked = path.to_path_buf();
    match tokio::task::spawn_blocking(move || Source::open(&checked)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Setback::Fail(refused(url, &e.to_string()))),
        Err(e) => Err(Setback::Fail(refused(url, &e.to_string()))),
    }
}

fn write_error(path: &Path, e: std::io::Error) -> DownloadError {
    DownloadError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Reqwest's error with its cause (the top level alone says only "error sending request").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_timeout() {
        text.push_str(" (timeout)");
    }
    text
}

/// A source on local disk; a downloaded one is deleted when this is dropped.
pub struct LocalSource {
    path: PathBuf,
    /// The download, deleted when this is dropped; its checksum is handed to the import.
    _fetched: Option<Fetched>,
}

impl LocalSource {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SHA-256 (hex) of a downloaded file, computed as it arrived; `None` for a path.
    pub fn sha256(&self) -> Option<&str> {
        self._fetched.as_ref().map(|fetched| fetched.sha256.as_str())
    }
}

/// For `annuaire import <URL>`: downloads with the process's client, built once at start
/// (`None` refuses a URL: a client made here could only repeat or hide a failure of that
/// start); a path is used as is.
pub async fn fetch_if_remote(
    location: &str,
    dir: &Path,
    downloader: Option<&Downloader>,
) -> Result<LocalSource, DownloadError> {
    if !is_remote(location) {
        return Ok(LocalSource {
            path: PathBuf::from(location),
            _fetched: None,
        });
    }
    let downloader = downloader.ok_or_else(|| DownloadError::NoClient {
        url: location.to_owned(),
    })?;
    let fetched = downloader.fetch(location, dir, 0, &CancellationToken::new()).await?;
    Ok(LocalSource {
        path: fetched.path.clone(),
        _fetched: Some(fetched),
    })
}
