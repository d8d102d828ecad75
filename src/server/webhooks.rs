//! The publication webhooks' sender: one per database (an advisory lock; the other
//! replicas wait for it), delivering each publication event to each configured URL at
//! least once. A body is signed with HMAC-SHA256 under the shared secret
//! (`X-Annuaire-Signature: sha256=<hex>`); a delivery that fails is retried with back-off
//! (5 s doubling to an hour, 48 attempts: about a day and a half), every attempt recorded.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::store::lock::AdvisoryLock;
use crate::store::webhooks::{self, Due};

/// Where and how publications are announced.
#[derive(Clone)]
pub struct WebhookSettings {
    pub urls: Vec<String>,
    /// The HMAC key (`ANNUAIRE_WEBHOOK_SECRET`); never logged.
    pub secret: String,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("urls", &self.urls)
            .field("secret", &"<set>")
            .finish()
    }
}

/// An arbitrary fixed key: the advisory lock of the one sender per database.
const SENDER_LOCK: i64 = 0x616e_6e75_6169_7201;
const POLL: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_RETRY: Duration = Duration::from_secs(5);
const LAST_RETRY: Duration = Duration::from_secs(3600);
pub const MAX_ATTEMPTS: i32 = 48;
/// Deliveries taken per round.
const BATCH: i64 = 20;

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
                _ = tokio::time::sleep(POLL) => {}
            }
        };
        tracing::info!(
            urls = self.settings.urls.len(),
            "webhooks: this replica sends publication events"
        );
        let result = match webhooks::register(&self.pool, &self.settings.urls).await {
            Ok(()) => self.deliver_until(&stop).await,
            Err(e) => Err(format!("cannot register the webhooks: {e}")),
        };
        lock.release().await;
        result
    }

    async fn deliver_until(&self, stop: &CancellationToken) -> Result<(), String> {
        while !stop.is_cancelled() {
            webhooks::plan_deliveries(&self.pool, &self.settings.urls)
                .await
                .map_err(|e| format!("cannot plan the deliveries: {e}"))?;
            let due = webhooks::due(&self.pool, &self.settings.urls, MAX_ATTEMPTS, BATCH)
                .await
                .map_err(|e| format!("cannot read due deliveries: {e}"))?;
            for delivery in &due {
                self.attempt(delivery)
                    .await
                    .map_err(|e| format!("cannot record a delivery: {e}"))?;
            }
            if due.len() < BATCH as usize {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
        Ok(())
    }

    async fn attempt(&self, due: &Due) -> Result<(), sqlx::Error> {
        let request = self
            .client
            .post(&due.url)
            .timeout(TIMEOUT)
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
            Err(e) => (None, Some(e.without_url().to_string())),
        };
        let retry_in = error.as_ref().map(|_| backoff(due.attempts));
        match &error {
            None => tracing::info!(run_id = %due.run_id, url = %due.url, "webhook delivered"),
            Some(e) if due.attempts + 1 >= MAX_ATTEMPTS => {
                tracing::error!(run_id = %due.run_id, url = %due.url, error = %e, "webhook given up after {MAX_ATTEMPTS} attempts")
            }
            Some(e) => tracing::warn!(run_id = %due.run_id, url = %due.url, error = %e, "webhook failed; will retry"),
        }
        webhooks::record_attempt(&self.pool, due, status, error.as_deref(), retry_in).await
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Before attempt `attempts + 2`: 5 s, doubling, at most an hour.
fn backoff(attempts: i32) -> Duration {
    FIRST_RETRY.saturating_mul(1 << attempts.clamp(0, 20)).min(LAST_RETRY)
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
        let waits: Vec<u64> = (0..12).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]);
    }
}
