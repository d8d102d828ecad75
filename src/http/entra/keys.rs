//! Entra's signing keys: fetched from the configured JWKS, cached, and fetched again when a
//! token names an unknown `kid`. While keys are held, at most once per `refetch_after` (a
//! flood of forged tokens costs Entra's key server one request a minute). While none is held
//! (a start-up during a network blip), at once, with back-off between failed fetches from
//! `first_retry` doubling up to `refetch_after`. One fetch is in flight at a time, and the
//! callouts that waited for it use its result rather than fetching again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use tokio_util::sync::CancellationToken;

use super::EntraSettings;

const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Entra's key sets are a few kilobytes.
const MAX_JWKS_BYTES: usize = 256 * 1024;

type Keys = HashMap<String, Arc<DecodingKey>>;

/// Why a fetch of the key set gave no key (for the log: callouts get a bare 401).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the key set could not be fetched: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("the key set is over {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("the key set is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the key set has no `keys` array")]
    NoKeysArray,
    /// Counted as a failure: the cached keys stay, and with none held the back-off goes on.
    #[error("the key set holds no RSA key with a `kid`")]
    NoUsableKey,
}

/// When the next fetch may start.
struct Schedule {
    /// When the last fetch began: with keys held, the next waits `refetch_after` from it.
    last: Option<Instant>,
    /// With no key held, after a failed fetch: the earliest start of the next one.
    retry_at: Option<Instant>,
    /// The wait after the next failure with no key held.
    backoff: Duration,
}

/// Entra's keys as last fetched, and the one fetch that may be in flight.
pub struct EntraKeys {
    url: reqwest::Url,
    client: reqwest::Client,
    refetch_after: Duration,
    first_retry: Duration,
    keys: ArcSwap<Keys>,
    /// Fetches finished: a callout that waited while another fetch ran uses its result.
    fetches: AtomicU64,
    /// Held for the whole fetch: one in flight at a time.
    schedule: tokio::sync::Mutex<Schedule>,
}

impl EntraKeys {
    pub fn new(settings: &EntraSettings, client: reqwest::Client) -> EntraKeys {
        let first_retry = settings.first_retry.min(settings.refetch_after);
        EntraKeys {
            url: settings.jwks_url.clone(),
            client,
            refetch_after: settings.refetch_after,
            first_retry,
            keys: ArcSwap::default(),
            fetches: AtomicU64::new(0),
            schedule: tokio::sync::Mutex::new(Schedule {
                last: None,
                retry_at: None,
                backoff: first_retry,
            }),
        }
    }

    pub fn get(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.keys.load().get(kid).cloned()
    }

    fn held(&self) -> bool {
        !self.keys.load().is_empty()
    }

    /// After `kid` was not found: fetches the keys if one is due, or waits for the fetch in
    /// flight. The caller looks `kid` up again afterwards.
    pub async fn refresh_for(&self, kid: &str) {
        let seen = self.fetches.load(Ordering::Acquire);
        let mut schedule = self.schedule.lock().await;
        if self.get(kid).is_some() || self.fetches.load(Ordering::Acquire) != seen {
            return;
        }
        if self.due(&schedule, Instant::now()) {
            self.fetch_into(&mut schedule).await;
        }
    }

    /// The start-up fetch, as a supervised task: fetches with back-off until keys are held,
    /// then waits for shutdown (unknown kids fetch again from the request path). Callouts
    /// that come meanwhile share its fetches and its back-off.
    pub async fn keep(&self, stop: CancellationToken) {
        loop {
            let fetched = async {
                let mut schedule = self.schedule.lock().await;
                if !self.held() && self.due(&schedule, Instant::now()) {
                    self.fetch_into(&mut schedule).await;
                }
                schedule.retry_at
            };
            let retry_at = tokio::select! {
                _ = stop.cancelled() => return,
                retry_at = fetched => retry_at,
            };
            if self.held() {
                break;
            }
            // Not held means the last fetch failed, which set `retry_at`.
            let wait = retry_at.map_or(self.first_retry, |at| at.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        stop.cancelled().await;
    }

    fn due(&self, schedule: &Schedule, now: Instant) -> bool {
        if self.held() {
            schedule
                .last
                .is_none_or(|at| now.duration_since(at) >= self.refetch_after)
        } else {
            schedule.retry_at.is_none_or(|at| now >= at)
        }
    }

    /// One fetch, the schedule's lock held; on failure the cached keys stay.
    async fn fetch_into(&self, schedule: &mut Schedule) {
        schedule.last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), url = %self.url, "Entra signing keys fetched");
                self.keys.store(Arc::new(keys));
                schedule.retry_at = None;
                schedule.backoff = self.first_retry;
            }
            Err(error) if self.held() => {
                tracing::warn!(%error, url = %self.url, "Entra signing keys unavailable; the cached ones stay")
            }
            Err(error) => {
                let wait = schedule.backoff;
                schedule.retry_at = Some(Instant::now() + wait);
                schedule.backoff = (wait * 2).min(self.refetch_after);
                tracing::warn!(%error, url = %self.url, retry_in_ms = wait.as_millis() as u64, "Entra signing keys unavailable and none held: Entra's callouts are refused until they come");
            }
        }
        self.fetches.fetch_add(1, Ordering::Release);
    }

    async fn fetch(&self) -> Result<Keys, FetchError> {
        let response = self
            .client
            .get(self.url.clone())
            .timeout(FETCH_TIMEOUT)
            .send()
            .await?
            .error_for_status()?;
        if response.content_length().is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
            return Err(FetchError::TooLarge);
        }
        let body = response.bytes().await?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(FetchError::TooLarge);
        }
        let set: serde_json::Value = serde_json::from_slice(&body)?;
        let mut keys = Keys::new();
        // Key by key: one of a kind this program does not read leaves the others usable.
        for key in set["keys"].as_array().ok_or(FetchError::NoKeysArray)? {
            let Ok(jwk) = serde_json::from_value::<Jwk>(key.clone()) else {
                continue;
            };
            if let (Some(kid), Ok(decoding)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(&jwk)) {
                keys.insert(kid, Arc::new(decoding));
            }
        }
        if keys.is_empty() {
            return Err(FetchError::NoUsableKey);
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::download::{DownloadSettings, Downloader};

    /// The process's clients read for a minute before giving up on a silent server; Entra
    /// waits about a second for its callout's answer, so a key fetch has its own 2 s.
    #[tokio::test]
    async fn a_key_server_that_never_answers_is_given_up_on_per_request() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Accepts and holds every connection open without a word.
        let silent = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let settings = EntraSettings {
            jwks_url: EntraSettings::check_jwks_url(&format!("http://{address}/keys")).unwrap(),
            issuer: "https://login.microsoftonline.com/tenant/v2.0".to_owned(),
            audiences: vec!["api".to_owned()],
            subject_attribute: "onPremisesSamAccountName".to_owned(),
            mapping: None,
            refetch_after: super::super::token::REFETCH_AFTER,
            first_retry: super::super::token::FIRST_RETRY,
        };
        let clients = Downloader::new(DownloadSettings::default()).unwrap();
        let keys = EntraKeys::new(&settings, clients.plain_client().clone());
        // A generous bound, far under the client's 60 s read timeout: the fetch ends on its own.
        let fetched = tokio::time::timeout(Duration::from_secs(20), keys.fetch())
            .await
            .expect("the key fetch must give up on its own per-request timeout");
        match fetched {
            Err(FetchError::Unreachable(error)) => assert!(error.is_timeout(), "{error:?}"),
            Err(error) => panic!("not a timeout: {error}"),
            Ok(_) => panic!("keys from a server that never answered"),
        }
        silent.abort();
    }
}
