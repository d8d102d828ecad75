//! Fetching a remote extract (an http(s) URL) to a temporary file, streamed, so that the
//! import reads it like a local source. Local paths pass through untouched.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: u16 },
    #[error("cannot write the download to {path}: {reason}")]
    Write { path: String, reason: String },
}

/// A source on local disk; a downloaded one is deleted when this is dropped.
pub struct LocalSource {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl LocalSource {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub fn is_remote(location: &str) -> bool {
    location.starts_with("http://") || location.starts_with("https://")
}

pub async fn fetch_if_remote(location: &str, dir: &Path) -> Result<LocalSource, DownloadError> {
    if !is_remote(location) {
        return Ok(LocalSource {
            path: PathBuf::from(location),
            _temp: None,
        });
    }
    let http_error = |e: reqwest::Error| DownloadError::Http {
        url: location.to_owned(),
        reason: e.to_string(),
    };
    let write_error = |path: &Path, e: std::io::Error| DownloadError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let temp = tempfile::Builder::new()
        .prefix("annuaire-download-")
        .tempdir_in(dir)
        .map_err(|e| write_error(dir, e))?;
    crate::install_crypto_provider();
    let client = reqwest::Client::builder().build().map_err(http_error)?;
    let response = client.get(location).send().await.map_err(http_error)?;
    if !response.status().is_success() {
        return Err(DownloadError::Status {
            url: location.to_owned(),
            status: response.status().as_u16(),
        });
    }
    let name = file_name(location, response.headers().get(reqwest::header::CONTENT_DISPOSITION));
    let path = temp.path().join(name);
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| write_error(&path, e))?;
    let mut body = response.bytes_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(http_error)?;
        bytes += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(|e| write_error(&path, e))?;
    }
    file.flush().await.map_err(|e| write_error(&path, e))?;
    tracing::info!(url = location, bytes, "downloaded");
    Ok(LocalSource {
        path,
        _temp: Some(temp),
    })
}

/// The publisher names the zip in `Content-Disposition`; the import reads the extract's
/// timestamp from that name, so keep it (sanitised), else the URL's last segment.
fn file_name(url: &str, disposition: Option<&reqwest::header::HeaderValue>) -> String {
    let from_header = disposition
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("filename=").nth(1))
        .map(|v| v.trim_matches(|c| c == '"' || c == ' ' || c == ';').to_owned());
    let from_url = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .map(str::to_owned);
    let name = from_header.or(from_url).unwrap_or_default();
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        "extract.zip".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_download_after_content_disposition() {
        let header = reqwest::header::HeaderValue::from_static("attachment; filename=PS_LibreAcces_202611250900.zip");
        assert_eq!(
            file_name("https://x/y/PS_LibreAcces", Some(&header)),
            "PS_LibreAcces_202611250900.zip"
        );
        assert_eq!(
            file_name("https://x/data/ps-libreacces-personne-activite.txt?x=1", None),
            "ps-libreacces-personne-activite.txt"
        );
        assert_eq!(file_name("https://x/", None), "extract.zip");
        let evil = reqwest::header::HeaderValue::from_static("attachment; filename=\"../../etc/passwd\"");
        assert_eq!(file_name("https://x/", Some(&evil)), "extract.zip");
    }
}
