//! The downloader of extracts (reqwest): one client per process, connect and read
//! timeouts, an extra CA bundle for the publisher's IGC-Santé chain (verification is never
//! switched off), retries of what is worth retrying (429, 503, timeouts, cut connections)
//! with back-off and `Retry-After`, a size cap, a checksum, and a refusal of what is not an
//! extract (an HTML page, an empty or far too small body, a broken zip, a zip without the
//! expected files). Local paths pass through untouched.

mod retry;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

pub use retry::RetryPolicy;

use crate::extract::Source;

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
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A downloaded extract, deleted with this value.
#[derive(Debug)]
pub struct Fetched {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    _dir: tempfile::TempDir,
}

/// The process's HTTP client for extracts and webhooks: build it once (connection pool, CA
/// bundle) and clone it; clones share the client. Each job may set its own retry policy.
#[derive(Debug, Clone)]
pub struct Downloader {
    client: reqwest::Client,
    settings: DownloadSettings,
}

impl Default for Downloader {
    /// Default settings, no CA bundle: the only way building can fail then is the TLS
    /// backend itself, where reqwest's own default client fails the same way.
    fn default() -> Self {
        Downloader::new(DownloadSettings::default()).unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot build the download client; using reqwest's default");
            Downloader {
                client: reqwest::Client::new(),
                settings: DownloadSettings::default(),
            }
        })
    }
}

/// The outcome of one attempt: done, worth another try (with the server's wish), or final.
enum Attempt {
    Done(Fetched),
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    Fail(DownloadError),
}

impl Downloader {
    pub fn new(settings: DownloadSettings) -> Result<Downloader, DownloadError> {
        crate::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.read_timeout)
            .user_agent(concat!("annuaire/", env!("CARGO_PKG_VERSION")));
        if let Some(bundle) = &settings.extra_ca_bundle {
            let pem = std::fs::read(bundle)
                .map_err(|e| DownloadError::Settings(format!("cannot read the CA bundle {}: {e}", bundle.display())))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| DownloadError::Settings(format!("{} is not a PEM bundle: {e}", bundle.display())))?;
            builder = builder.tls_certs_merge(certificates);
        }
        let client = builder.build().map_err(|e| DownloadError::Settings(e.to_string()))?;
        Ok(Downloader { client, settings })
    }

    /// The same client with another retry policy (a job's).
    pub fn with_retry(&self, retry: RetryPolicy) -> Downloader {
        Downloader {
            client: self.client.clone(),
            settings: DownloadSettings {
                retry,
                ..self.settings.clone()
            },
        }
    }

    /// The shared client itself, for other calls of the process (webhooks).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// `HEAD`: the file name the server would give, and its validators. One attempt.
    pub async fn probe(&self, url: &str) -> Result<Probe, DownloadError> {
        let response = self.client.head(url).send().await.map_err(|e| DownloadError::GaveUp {
            url: url.to_owned(),
            attempts: 1,
            seconds: 0,
            last: e.to_string(),
        })?;
        if !response.status().is_success() {
            return Err(DownloadError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Probe {
            file_name: header(reqwest::header::CONTENT_DISPOSITION).and_then(|v| disposition_file_name(&v)),
            etag: header(reqwest::header::ETAG),
            last_modified: header(reqwest::header::LAST_MODIFIED),
        })
    }

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
        let policy = self.settings.retry;
        let mut last_error = String::new();
        for attempt in 1..=policy.attempts.max(1) {
            if attempt > 1 {
                tracing::warn!(url, attempt, error = %last_error, "download failed; retrying");
            }
            let attempt_result = tokio::select! {
                // Dropping the attempt deletes its partial file.
                _ = cancel.cancelled() => return Err(DownloadError::Cancelled),
                result = self.attempt(url, dir, min_bytes) => result,
            };
            match attempt_result {
                Attempt::Done(fetched) => {
                    tracing::info!(url, bytes = fetched.bytes, attempts = attempt, "downloaded");
                    return Ok(fetched);
                }
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { error, retry_after } => {
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

    async fn attempt(&self, url: &str, dir: &Path, min_bytes: u64) -> Attempt {
        let response = match self.client.get(url).send().await {
            Ok(response) => response,
            Err(e) => {
                return Attempt::Retry {
                    error: describe(&e),
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        if matches!(status.as_u16(), 429 | 502 | 503 | 504) {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry::parse_retry_after(v, chrono::Utc::now()));
            return Attempt::Retry {
                error: format!("the server answered {status}"),
                retry_after,
            };
        }
        if !status.is_success() {
            return Attempt::Fail(DownloadError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let html = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("html"));
        if html {
            return Attempt::Fail(refused(
                url,
                "the server sent an HTML page (an error or maintenance page?)",
            ));
        }
        let name = response
            .headers()
            .get(reqwest::header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(disposition_file_name)
            .or_else(|| url_file_name(url))
            .unwrap_or_else(|| "extract.zip".to_owned());
        let write_error = |path: &Path, e: std::io::Error| DownloadError::Write {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Attempt::Fail(write_error(dir, e));
        }
        let temp = match tempfile::Builder::new().prefix("annuaire-download-").tempdir_in(dir) {
            Ok(t) => t,
            Err(e) => return Attempt::Fail(write_error(dir, e)),
        };
        let path = temp.path().join(&name);
        let mut file = match tokio::fs::File::create(&path).await {
            Ok(f) => f,
            Err(e) => return Attempt::Fail(write_error(&path, e)),
        };
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut head = Vec::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                // Cut connection or read timeout: the whole download starts again.
                Err(e) => {
                    return Attempt::Retry {
                        error: describe(&e),
                        retry_after: None,
                    };
                }
            };
            bytes += chunk.len() as u64;
            if bytes > self.settings.max_bytes {
                return Attempt::Fail(DownloadError::TooLarge {
                    url: url.to_owned(),
                    max_mb: self.settings.max_bytes >> 20,
                });
            }
            if head.len() < 512 {
                head.extend_from_slice(&chunk[..chunk.len().min(512 - head.len())]);
            }
            hasher.update(&chunk);
            if let Err(e) = file.write_all(&chunk).await {
                return Attempt::Fail(write_error(&path, e));
            }
        }
        if let Err(e) = file.flush().await {
            return Attempt::Fail(write_error(&path, e));
        }
        if let Some(reason) = refusal(&head, bytes, min_bytes) {
            return Attempt::Fail(refused(url, &reason));
        }
        let checked = path.clone();
        match tokio::task::spawn_blocking(move || Source::open(&checked)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Attempt::Fail(refused(url, &e.to_string())),
            Err(e) => return Attempt::Fail(refused(url, &e.to_string())),
        }
        Attempt::Done(Fetched {
            path,
            bytes,
            sha256: hex::encode(hasher.finalize()),
            _dir: temp,
        })
    }
}

fn refused(url: &str, reason: &str) -> DownloadError {
    DownloadError::Refused {
        url: url.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Why a complete body is not an extract, judged from its first bytes and size.
fn refusal(head: &[u8], bytes: u64, min_bytes: u64) -> Option<String> {
    if bytes == 0 {
        return Some("the body is empty".to_owned());
    }
    let start = String::from_utf8_lossy(&head[..head.len().min(64)])
        .trim_start()
        .to_ascii_lowercase();
    if start.starts_with("<!doctype html") || start.starts_with("<html") || start.starts_with("<?xml") {
        return Some("the body is an HTML or XML page".to_owned());
    }
    if bytes < min_bytes {
        return Some(format!(
            "{bytes} bytes, far smaller than the last published extract (floor {min_bytes} bytes)"
        ));
    }
    None
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

/// The publisher names the zip in `Content-Disposition`; the import reads the extract's
/// timestamp from that name. Sanitised: it becomes a file name here.
pub fn disposition_file_name(value: &str) -> Option<String> {
    let raw = value
        .split("filename=")
        .nth(1)?
        .split(';')
        .next()?
        .trim()
        .trim_matches('"');
    sanitise(raw)
}

fn url_file_name(url: &str) -> Option<String> {
    sanitise(url.split(['?', '#']).next()?.rsplit('/').next()?)
}

fn sanitise(name: &str) -> Option<String> {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    (!clean.is_empty() && !clean.starts_with('.')).then_some(clean)
}

pub fn is_remote(location: &str) -> bool {
    location.starts_with("http://") || location.starts_with("https://")
}

/// A source on local disk; a downloaded one is deleted when this is dropped.
pub struct LocalSource {
    path: PathBuf,
    _fetched: Option<Fetched>,
}

impl LocalSource {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// For `annuaire import <URL>`: downloads with the process's client (a default one when
/// `None`); a path is used as is.
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
    let default;
    let downloader = match downloader {
        Some(downloader) => downloader,
        None => {
            default = Downloader::new(DownloadSettings::default())?;
            &default
        }
    };
    let fetched = downloader.fetch(location, dir, 0, &CancellationToken::new()).await?;
    Ok(LocalSource {
        path: fetched.path.clone(),
        _fetched: Some(fetched),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_download_after_content_disposition() {
        assert_eq!(
            disposition_file_name("attachment; filename=PS_LibreAcces_202611250900.zip").as_deref(),
            Some("PS_LibreAcces_202611250900.zip")
        );
        assert_eq!(
            url_file_name("https://x/data/ps-libreacces-personne-activite.txt?x=1").as_deref(),
            Some("ps-libreacces-personne-activite.txt")
        );
        assert_eq!(url_file_name("https://x/"), None);
        assert_eq!(disposition_file_name("attachment; filename=\"../../etc/passwd\""), None);
    }

    #[test]
    fn refuses_what_is_not_an_extract() {
        assert_eq!(refusal(b"", 0, 0).as_deref(), Some("the body is empty"));
        assert!(refusal(b"  <!DOCTYPE html><html>", 100, 0).unwrap().contains("HTML"));
        assert!(refusal(b"PK\x03\x04", 1000, 100_000).unwrap().contains("far smaller"));
        assert_eq!(refusal(b"PK\x03\x04", 1000, 0), None);
    }
}
