//! The process's one HTTP client for extracts and webhooks: built once (connection pool,
//! timeouts, the extra CA bundle; verification is never switched off) and cloned, each job
//! with its own retry policy; and the `HEAD` probe of what a source offers.

use super::checks::disposition_file_name;
use super::{DownloadError, DownloadSettings, Probe, RetryPolicy};

/// The process's HTTP client for extracts and webhooks: build it once (connection pool, CA
/// bundle) and clone it; clones share the client. Each job may set its own retry policy.
#[derive(Debug, Clone)]
pub struct Downloader {
    pub(super) client: reqwest::Client,
    pub(super) settings: DownloadSettings,
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
            // The parser skips what is not a certificate: an empty file, a key or the
            // wrong file parse as a bundle of none, and the publisher's chain would then
            // fail at the first download instead of here.
            if certificates.is_empty() {
                return Err(DownloadError::Settings(format!(
                    "the CA bundle {} holds no PEM certificate",
                    bundle.display()
                )));
            }
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
}
