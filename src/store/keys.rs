//! API keys as stored: their names, scopes and SHA-256 hashes (never the secrets). Every
//! change is announced with `NOTIFY annuaire_keys` in the same statement.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;

/// A key as listed (never the secret).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct KeyInfo {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An active key's row: id, name, scope names, hash.
pub type ActiveKeyRow = (i64, String, Vec<String>, Vec<u8>);

/// Inserts a key; the unique constraint `api_key_active_name_uq` refuses a second active
/// key of the same name.
pub async fn insert(db: impl PgExecutor<'_>, name: &str, scopes: &[&str], hash: &[u8]) -> Result<KeyInfo, sqlx::Error> {
    sqlx::query_as(
        "WITH created AS (
             INSERT INTO api_key (name, scopes, key_hash) VALUES ($1, $2, $3)
             RETURNING id, name, scopes, created_at, revoked_at)
         SELECT created.*, pg_notify($4, '') IS NOT NULL AS notified FROM created",
    )
    .bind(name)
    .bind(scopes)
    .bind(hash)
    .bind(super::channels::KEYS)
    .fetch_one(db)
    .await
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<KeyInfo>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, scopes, created_at, revoked_at FROM api_key ORDER BY id")
        .fetch_all(db)
        .await
}

/// Revokes the active key with this name or this id, if there is one.
pub async fn revoke(db: impl PgExecutor<'_>, name: &str, id: Option<i64>) -> Result<Option<KeyInfo>, sqlx::Error> {
    sqlx::query_as(
        "WITH revoked AS (
             UPDATE api_key SET revoked_at = now()
             WHERE revoked_at IS NULL AND (name = $1 OR id = $2)
             RETURNING id, name, scopes, created_at, revoked_at)
         SELECT revoked.*, pg_notify($3, '') IS NOT NULL AS notified FROM revoked",
    )
    .bind(name)
    .bind(id)
    .bind(super::channels::KEYS)
    .fetch_optional(db)
    .await
}

pub async fn active(db: impl PgExecutor<'_>) -> Result<Vec<ActiveKeyRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, scopes, key_hash FROM api_key WHERE revoked_at IS NULL")
        .fetch_all(db)
        .await
}
