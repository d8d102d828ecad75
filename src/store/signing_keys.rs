//! The rows of `signing_key`: listed, created first under an advisory lock (every replica
//! starting at once makes one key), added by a rotation, removed by a retirement (both
//! under the same lock, so that what they checked still holds). Each change is announced
//! with `NOTIFY annuaire_keys`, which servers already follow for API keys.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct SigningKeyRow {
    pub kid: String,
    pub public_jwk: serde_json::Value,
    #[serde(skip)]
    pub private_key: Vec<u8>,
    pub sealed: bool,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
}

/// A new key, ready to store.
pub struct NewKey {
    pub kid: String,
    pub public_jwk: serde_json::Value,
    pub private_key: Vec<u8>,
    pub sealed: bool,
}

/// Every key, oldest activation first.
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<SigningKeyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kid, public_jwk, private_key, sealed, created_at, activates_at FROM signing_key ORDER BY activates_at, kid",
    )
    .fetch_all(db)
    .await
}

/// The kids, in activation order: what a server compares before reloading.
pub async fn kids(db: impl PgExecutor<'_>) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT kid FROM signing_key ORDER BY activates_at, kid")
        .fetch_all(db)
        .await
}

/// Adds `key`, signing from `activate_after` on.
pub async fn add(
    db: impl PgExecutor<'_>,
    key: &NewKey,
    activate_after: std::time::Duration,
) -> Result<SigningKeyRow, sqlx::Error> {
    sqlx::query_as(
        "WITH added AS (
             INSERT INTO signing_key (kid, public_jwk, private_key, sealed, activates_at)
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
             RETURNING kid, public_jwk, private_key, sealed, created_at, activates_at)
         SELECT added.*, pg_notify($6, 'signing') IS NOT NULL AS notified FROM added",
    )
    .bind(&key.kid)
    .bind(&key.public_jwk)
    .bind(&key.private_key)
    .bind(key.sealed)
    .bind(activate_after.as_secs_f64())
    .bind(super::channels::KEYS)
    .fetch_one(db)
    .await
}

/// Removes the key `kid`; returns whether there was one.
pub async fn remove(db: impl PgExecutor<'_>, kid: &str) -> Result<bool, sqlx::Error> {
    let removed: Option<String> = sqlx::query_scalar(
        "WITH removed AS (DELETE FROM signing_key WHERE kid = $1 RETURNING kid)
         SELECT kid FROM removed WHERE pg_notify($2, 'signing') IS NOT NULL",
    )
    .bind(kid)
    .bind(super::channels::KEYS)
    .fetch_optional(db)
    .await?;
    Ok(removed.is_some())
}

/// Takes the keys' transaction-level advisory lock: one change of the keys at a time.
pub async fn lock(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('annuaire signing keys'))")
        .execute(tx)
        .await?;
    Ok(())
}

/// Stores `key` as the first key when there is none, under the keys' lock: replicas
/// starting together make one key. Returns whether it was stored.
pub async fn ensure_one(pool: &PgPool, key: NewKey) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    lock(&mut tx).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM signing_key)")
        .fetch_one(&mut *tx)
        .await?;
    if !exists {
        add(&mut *tx, &key, std::time::Duration::ZERO).await?;
    }
    tx.commit().await?;
    Ok(!exists)
}
