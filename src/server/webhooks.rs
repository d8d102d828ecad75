//! The publication webhooks' sender: one per database (an advisory lock; the other
//! replicas wait for it), delivering each publication event to each configured URL at
//! least once and in order. Each URL has its own queue and its own delivery in flight, so a
//! receiver that hangs or fails holds back only its own events. A body is signed with
//! HMAC-SHA256 under the shared secret (`X-Annuaire-Signature: sha256=<hex>`); a delivery
//! that fails is retried with back-off (5 s doubling to an hour, 48 attempts: about a day
//! and a half), every attempt recorded. A URL may carry credentials: only this
//! configuration holds it; logs and the store see its redacted text and its SHA-256.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::mask_url;
use crate::store::lock::AdvisoryLock;
use crate::store::webhooks::{self, Due, EndpointKey};

/// Where and how publications are announced.
#[derive(Clone)]
pub struct WebhookSettings {
    /// Whole, credentials included: never logged nor stored.
    pub urls: Vec<String>,
    /// The HMAC key (`ANNUAIRE_WEBHOOK_SECRET`); never logged.
    pub secret: String,
    pub timing: WebhookTiming,
}

impl WebhookSettings {
    /// `urls` signed under `secret`, with the production timing.
    pub fn new(urls: Vec<String>, secret: String) -> WebhookSettings {
        WebhookSettings {
            urls,
            secret,
            timing: WebhookTiming::default(),
        }
    }
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<String> = self.urls.iter().map(|u| shown(u)).collect();
        f.debug_struct("WebhookSettings")
            .field("urls", &shown)
            .field("secret", &"<set>")
            .field("timing", &self.timing)
            .finish()
    }
}

/// How long the sender waits; tests shorten it.
#[derive(Debug, Clone, Copy)]
pub struct WebhookTiming {
    /// Between two looks at an endpoint's queue when nothing in it is due.
    pub poll: Duration,
    /// One call's limit; a receiver that answers later is retried.
    pub timeout: Duration,
    /// Before the second attempt of a delivery; then doubling, at most an hour.
    pub first_retry: Duration,
}

impl Default for WebhookTiming {
    fn default() -> WebhookTiming {
        WebhookTiming {
            poll: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            first_retry: FIRST_RETRY,
        }
    }
}

/// An arbitrary fixed key: the advisory lock of the one sender per database.
const SENDER_LOCK: i64 = 0x616e_6e75_6169_7201;
const FIRST_RETRY: Duration = Duration::from_secs(5);
const LAST_RETRY: Duration = Duration::from_secs(3600);
pub const MAX_ATTEMPTS: i32 = 48;

/// What logs and the store show of `url`.
fn shown(url: &str) -> String {
    // The settings only hold URLs that parse (checked when read); anything else is hidden.
    mask_url(url).unwrap_or_else(|| "<not a URL>".to_owned())
}

/// One configured URL: the URL itself, which only the calls use, its key in the store, and
/// its redacted text for logs and the store.
struct Endpoint {
    url: String,
    key: EndpointKey,
    shown: String,
}

impl Endpoint {
    fn new(url: String) -> Endpoint {
        Endpoint {
            key: EndpointKey::of(&url),
            shown: shown(&url),
            url,
        }
    }
}

pub struct Sender {
    pub pool: PgPool,
    pub client: reqwest::Client,
    pub settings: WebhookSettings,
}

impl Sender {
    /// Waits for the sender's lock, then delivers until `stop`.
    pub async fn run(&self, stop: CancellationToken) -> Result<(), String> {
        let lock = loop {
            match AdvisoryLock::try_acquire(&self.pool, SENDER_LOCK).await {
                Ok(Some(lock)) => break lock,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "webhooks: cannot reach the store"),
            }
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.settings.timing.poll) => {}
            }
        };
        tracing::info!(
            urls = self.settings.urls.len(),
            "webhooks: this replica sends publication events"
        );
        let mut endpoints: Vec<Endpoint> = self.settings.urls.iter().cloned().map(Endpoint::new).collect();
        // A URL given twice is one endpoint: one queue, each event delivered once.
        endpoints.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        endpoints.dedup_by(|a, b| a.key == b.key);
        let registered: Vec<(EndpointKey, String)> =
            endpoints.iter().map(|e| (e.key.clone(), e.shown.clone())).collect();
        let result = match webhooks::register(&self.pool, &registered).await {
            // The endpoints' loops run side by side in this task: the first store error ends
            // them all (the supervisor restarts the sender); calls then in flight are made
            // again later, as at-least-once allows.
            Ok(()) => futures::future::try_join_all(endpoints.iter().map(|e| self.deliver_until(e, &stop)))
                .await
                .map(|_| ()),
            Err(e) => Err(format!("cannot register the webhooks: {e}")),
        };
        lock.release().await;
        result
    }

    /// Works through `endpoint`'s queue in event order until `stop`: one delivery in flight,
    /// the next only once it is delivered or given up.
    async fn deliver_until(&self, endpoint: &Endpoint, stop: &CancellationToken) -> Result<(), String> {
        let timing = self.settings.timing;
        while !stop.is_cancelled() {
            webhooks::plan_deliveries(&self.pool, &endpoint.key)
                .await
                .map_err(|e| format!("cannot plan the deliveries to {}: {e}", endpoint.shown))?;
            let head = webhooks::head(&self.pool, &endpoint.key, MAX_ATTEMPTS)
                .await
                .map_err(|e| format!("cannot read the deliveries to {}: {e}", endpoint.shown))?;
            let pause = match head {
                Some(due) if due.wait.is_zero() => {
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        recorded = self.attempt(endpoint, &due) => recorded
                            .map_err(|e| format!("cannot record a delivery to {}: {e}", endpoint.shown))?,
                    }
                    continue;
                }
                // Looked at again after a poll at most: a new registration of the same URL,
                // an operator's change to the queue.
                Some(due) => due.wait.min(timing.poll),
                None => timing.poll,
            };
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
        Ok(())
    }

    async fn attempt(&self, endpoint: &Endpoint, due: &Due) -> Result<(), sqlx::Error> {
        let request = self
            .client
            .post(&endpoint.url)
            .timeout(self.settings.timing.timeout)
            .header("content-type", "application/json")
            .header("x-annuaire-event", "publication")
            .header(
                "x-annuaire-signature",
                signature(&self.settings.secret, due.body.as_bytes()),
            )
            .body(due.body.clone());
        let (status, error) = match request.send().await {
            Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
            Ok(response) => (
                Some(response.status().as_u16()),
                Some(format!("answered {}", response.status())),
            ),
            // Without its URL: the error is logged and stored.
            Err(e) => (None, Some(e.without_url().to_string())),
        };
        let retry_in = error
            .as_ref()
            .map(|_| backoff(self.settings.timing.first_retry, due.attempts));
        let url = &endpoint.shown;
        match &error {
            None => tracing::info!(run_id = %due.run_id, %url, "webhook delivered"),
            Some(e) if due.attempts + 1 >= MAX_ATTEMPTS => {
                tracing::error!(run_id = %due.run_id, %url, error = %e, "webhook given up after {MAX_ATTEMPTS} attempts")
            }
            Some(e) => tracing::warn!(run_id = %due.run_id, %url, error = %e, "webhook failed; will retry"),
        }
        webhooks::record_attempt(&self.pool, &endpoint.key, due, status, error.as_deref(), retry_in).await
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Before attempt `attempts + 2`: `first` (5 s), doubling, at most an hour.
fn backoff(first: Duration, attempts: i32) -> Duration {
    first.saturating_mul(1 << attempts.clamp(0, 20)).min(LAST_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        let waits: Vec<u64> = (0..12).map(|a| backoff(FIRST_RETRY, a).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]);
    }

    #[test]
    fn an_endpoint_shows_its_url_without_credentials() {
        let endpoint = Endpoint::new("https://hook:s3cret@receiver.example/in?token=abc".to_owned());
        assert_eq!(endpoint.shown, "https://hook:***@receiver.example/in?token=***");
        assert_eq!(
            endpoint.key,
            EndpointKey::of("https://hook:s3cret@receiver.example/in?token=abc")
        );
        let settings = WebhookSettings::new(vec![endpoint.url], "a secret of sixteen".to_owned());
        let debug = format!("{settings:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("abc") && !debug.contains("sixteen"),
            "{debug}"
        );
    }
}
