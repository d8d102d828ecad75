//! The publication webhooks' outbox (`migrations/0007_publication_webhooks.sql`): the event
//! a publication writes in its own transaction, and the deliveries the sender works through.

use chrono::{DateTime, Utc};
use serde::Serialize;
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

/// Makes `urls` receive the events published from now on (a URL already known keeps its
/// date).
pub async fn register(pool: &PgPool, urls: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO webhook_endpoint (url) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING")
        .bind(urls)
        .execute(pool)
        .await?;
    Ok(())
}

/// Creates the deliveries of every event each of `urls` should receive and has not yet.
pub async fn plan_deliveries(pool: &PgPool, urls: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_delivery (run_id, url)
         SELECT e.run_id, w.url FROM publication_event e
         JOIN webhook_endpoint w ON e.created_at >= w.registered_at
         WHERE w.url = ANY($1)
         ON CONFLICT DO NOTHING",
    )
    .bind(urls)
    .execute(pool)
    .await?;
    Ok(())
}

/// A delivery to attempt now.
#[derive(Debug, Clone)]
pub struct Due {
    pub run_id: RunId,
    pub url: String,
    pub attempts: i32,
    pub body: String,
}

/// Deliveries to `urls` not yet made whose next attempt is due, oldest event first.
pub async fn due(
    db: impl PgExecutor<'_>,
    urls: &[String],
    max_attempts: i32,
    limit: i64,
) -> Result<Vec<Due>, sqlx::Error> {
    let rows: Vec<(i64, String, i32, String)> = sqlx::query_as(
        "SELECT d.run_id, d.url, d.attempts, e.body
         FROM webhook_delivery d JOIN publication_event e ON e.run_id = d.run_id
         WHERE d.delivered_at IS NULL AND d.next_attempt_at <= now()
           AND d.url = ANY($1) AND d.attempts < $2
         ORDER BY d.run_id, d.url LIMIT $3",
    )
    .bind(urls)
    .bind(max_attempts)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(run_id, url, attempts, body)| Due {
            run_id: RunId(run_id),
            url,
            attempts,
            body,
        })
        .collect())
}

/// Records one attempt and its outcome: delivered, or the next attempt after `retry_in`.
pub async fn record_attempt(
    pool: &PgPool,
    due: &Due,
    status: Option<u16>,
    error: Option<&str>,
    retry_in: Option<std::time::Duration>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let attempt = due.attempts + 1;
    sqlx::query("INSERT INTO webhook_attempt (run_id, url, attempt, status, error) VALUES ($1, $2, $3, $4, $5)")
        .bind(due.run_id)
        .bind(&due.url)
        .bind(attempt)
        .bind(status.map(i32::from))
        .bind(error)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE webhook_delivery SET attempts = $3,
             delivered_at = CASE WHEN $4::float8 IS NULL THEN now() END,
             next_attempt_at = now() + make_interval(secs => coalesce($4::float8, 0))
         WHERE run_id = $1 AND url = $2",
    )
    .bind(due.run_id)
    .bind(&due.url)
    .bind(attempt)
    .bind(retry_in.map(|d| d.as_secs_f64()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
