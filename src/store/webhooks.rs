//! The publication webhooks' outbox (`migrations/0007_publication_webhooks.sql`, keyed by
//! `0010_webhook_url_keys.sql`): the event a publication writes in its own transaction, and
//! each endpoint's queue of deliveries that the sender works through in order. A URL may
//! carry credentials, so the store never holds one: an endpoint is the SHA-256 of its URL,
//! with a redacted text for people to read.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgExecutor, PgPool};

use super::RunId;
use super::feed;

/// Removed national ids carried in an event, at most; the feed has them all.
pub const MAX_REMOVED_IDS: i64 = 1_000;

/// What a publication tells the systems downstream: enough to act (revoke the sessions of
/// the struck-off) without a call back, and where the feed continues.
#[derive(Debug, Serialize)]
struct PublicationBody {
    run_id: RunId,
    extract_ts: Option<DateTime<Utc>>,
    published_at: DateTime<Utc>,
    added: i64,
    changed: i64,
    removed: i64,
    removed_ids: Vec<String>,
    changes_cursor: String,
}

/// Writes the event of run `run_id`'s publication; inside the publish transaction, after
/// the run is marked published (so that the feed's cursor counts it).
pub async fn record_publication(tx: &mut PgConnection, run_id: RunId) -> Result<(), sqlx::Error> {
    type Row = (
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let (extract_ts, published_at, added, changed, removed): Row =
        sqlx::query_as("SELECT extract_ts, published_at, added, changed, removed FROM import_run WHERE id = $1")
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await?;
    let removed_ids: Vec<String> =
        sqlx::query_scalar("SELECT national_id FROM run_removal WHERE run_id = $1 ORDER BY national_id LIMIT $2")
            .bind(run_id)
            .bind(MAX_REMOVED_IDS)
            .fetch_all(&mut *tx)
            .await?;
    let cursor = feed::last_change(&mut *tx, run_id).await?;
    let body = PublicationBody {
        run_id,
        extract_ts,
        published_at: published_at.unwrap_or_else(Utc::now),
        added: added.unwrap_or(0),
        changed: changed.unwrap_or(0),
        removed: removed.unwrap_or(0),
        removed_ids,
        changes_cursor: cursor.map(|p| p.cursor()).unwrap_or_default(),
    };
    let body = serde_json::to_string(&body).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query("INSERT INTO publication_event (run_id, body) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(run_id)
        .bind(body)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// An endpoint as the store names it: the hex SHA-256 of its full URL. Only the sender's
/// configuration holds the URL itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointKey(String);

impl EndpointKey {
    pub fn of(url: &str) -> EndpointKey {
        EndpointKey(hex::encode(Sha256::digest(url.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Makes each endpoint, `(key, redacted URL)`, receive the events published from now on (an
/// endpoint already known keeps its date; its text is refreshed).
pub async fn register(pool: &PgPool, endpoints: &[(EndpointKey, String)]) -> Result<(), sqlx::Error> {
    let keys: Vec<&str> = endpoints.iter().map(|(key, _)| key.as_str()).collect();
    let shown: Vec<&str> = endpoints.iter().map(|(_, shown)| shown.as_str()).collect();
    sqlx::query(
        "INSERT INTO webhook_endpoint (url_sha256, redacted_url)
         SELECT * FROM unnest($1::text[], $2::text[])
         ON CONFLICT (url_sha256) DO UPDATE SET redacted_url = EXCLUDED.redacted_url",
    )
    .bind(keys)
    .bind(shown)
    .execute(pool)
    .await?;
    Ok(())
}

/// Creates the deliveries of every event `endpoint` should receive and has not yet.
pub async fn plan_deliveries(pool: &PgPool, endpoint: &EndpointKey) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_delivery (run_id, url_sha256)
         SELECT e.run_id, w.url_sha256 FROM publication_event e
         JOIN webhook_endpoint w ON e.created_at >= w.registered_at
         WHERE w.url_sha256 = $1
         ON CONFLICT DO NOTHING",
    )
    .bind(endpoint.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// The delivery at the head of an endpoint's queue.
#[derive(Debug, Clone)]
pub struct Due {
    pub run_id: RunId,
    pub attempts: i32,
    pub body: String,
    /// Until its next attempt is due; zero when it is.
    pub wait: Duration,
}

/// The head of `endpoint`'s queue: its oldest event neither delivered nor given up (after
/// `max_attempts`). The events behind it wait, so that a receiver sees them in order.
pub async fn head(
    db: impl PgExecutor<'_>,
    endpoint: &EndpointKey,
    max_attempts: i32,
) -> Result<Option<Due>, sqlx::Error> {
    let row: Option<(i64, i32, String, f64)> = sqlx::query_as(
        "SELECT d.run_id, d.attempts, e.body,
                greatest(extract(epoch FROM d.next_attempt_at - now()), 0)::float8
         FROM webhook_delivery d JOIN publication_event e ON e.run_id = d.run_id
         WHERE d.url_sha256 = $1 AND d.delivered_at IS NULL AND d.attempts < $2
         ORDER BY d.run_id LIMIT 1",
    )
    .bind(endpoint.as_str())
    .bind(max_attempts)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(run_id, attempts, body, wait)| Due {
        run_id: RunId(run_id),
        attempts,
        body,
        wait: Duration::try_from_secs_f64(wait).unwrap_or(Duration::ZERO),
    }))
}

/// Records one attempt and its outcome: delivered, or the next attempt after `retry_in`.
pub async fn record_attempt(
    pool: &PgPool,
    endpoint: &EndpointKey,
    due: &Due,
    status: Option<u16>,
    error: Option<&str>,
    retry_in: Option<Duration>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let attempt = due.attempts + 1;
    sqlx::query("INSERT INTO webhook_attempt (run_id, url_sha256, attempt, status, error) VALUES ($1, $2, $3, $4, $5)")
        .bind(due.run_id)
        .bind(endpoint.as_str())
        .bind(attempt)
        .bind(status.map(i32::from))
        .bind(error)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE webhook_delivery SET attempts = $3,
             delivered_at = CASE WHEN $4::float8 IS NULL THEN now() END,
             next_attempt_at = now() + make_interval(secs => coalesce($4::float8, 0))
         WHERE run_id = $1 AND url_sha256 = $2",
    )
    .bind(due.run_id)
    .bind(endpoint.as_str())
    .bind(attempt)
    .bind(retry_in.map(|d| d.as_secs_f64()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::EndpointKey;

    #[test]
    fn an_endpoint_is_the_sha256_of_its_url() {
        // `printf %s 'https://example.org/hook' | sha256sum`
        assert_eq!(
            EndpointKey::of("https://example.org/hook").as_str(),
            "554ec998c37b96dab60f37327773c9c50e7f43fd26771d361245892a483bc237"
        );
    }
}
