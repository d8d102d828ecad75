//! The process's HTTP clients, built once from one builder (connection pool, timeouts; TLS
//! verification is never switched off) and cloned: one for extracts, which also trusts the
//! extra CA bundle (the publisher's IGC-Santé chain), and one for every other call (Entra's
//! keys, webhooks) on the system roots alone. Each job has its own retry policy. And the
//! `HEAD` probe of what a source offers.

use super::checks::disposition_file_name;
use super::{DownloadError, DownloadSettings, Probe, RetryPolicy};

/// The process's HTTP clients: build them once (`new`, at start: a client that cannot be
/// built is an error there, never a fallback) and clone; clones share the clients. Each job
/// may set its own retry policy.
#[derive(Debug, Clone)]
pub struct Downloader {
    /// Extracts: the system roots and the extra CA bundle.
    pub(super) client: reqwest::Client,
    /// Every other call: the system roots only. The same client when there is no bundle.
    plain: reqwest::Client,
    pub(super) settings: DownloadSettings,
}

impl Downloader {
    pub fn new(settings: DownloadSettings) -> Result<Downloader, DownloadError> {
        crate::install_crypto_provider();
        let plain = builder(&settings)
            .build()
            .map_err(|e| DownloadError::Settings(format!("cannot build the HTTP client: {e}")))?;
        let client = match &settings.extra_ca_bundle {
            None => plain.clone(),
            Some(bundle) => builder(&settings)
                .tls_certs_merge(extra_roots(bundle)?)
                .build()
                .map_err(|e| DownloadError::Settings(format!("cannot build the download client: {e}")))?,
        };
        Ok(Downloader {
            client,
            plain,
            settings,
        })
    }

    /// The same clients with another retry policy (a job's).
    pub fn with_retry(&self, retry: RetryPolicy) -> Downloader {
        Downloader {
            client: self.client.clone(),
            plain: self.plain.clone(),
            settings: DownloadSettings {
                retry,
                ..self.settings.clone()
            },
        }
    }

    /// The client for the process's calls that are not downloads (Entra's keys, webhooks):
    /// the system roots only, since the extra bundle is there for the publisher's chain and
    /// nothing else should be trusted through it. Callers set their own per-request timeout.
    pub fn plain_client(&self) -> &reqwest::Client {
        &self.plain
    }

    /// `HEAD`: the file name the server would give. One attempt.
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
        })
    }
}

/// The one builder of the process's clients: what every call shares.
fn builder(settings: &DownloadSettings) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.read_timeout)
        .user_agent(concat!("annuaire/", env!("CARGO_PKG_VERSION")))
}

/// The certificates of the extra CA bundle, refused when it holds none.
fn extra_roots(bundle: &std::path::Path) -> Result<Vec<reqwest::Certificate>, DownloadError> {
    let pem = std::fs::read(bundle)
        .map_err(|e| DownloadError::Settings(format!("cannot read the CA bundle {}: {e}", bundle.display())))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| DownloadError::Settings(format!("{} is not a PEM bundle: {e}", bundle.display())))?;
    // The parser skips what is not a certificate: an empty file, a key or the wrong file
    // parse as a bundle of none, and the publisher's chain would then fail at the first
    // download instead of here.
    if certificates.is_empty() {
        return Err(DownloadError::Settings(format!(
            "the CA bundle {} holds no PEM certificate",
            bundle.display()
        )));
    }
    Ok(certificates)
}
