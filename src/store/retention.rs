//! Retention: professionals removed from the directory longer ago than the retention
//! period are purged with their whole history (every version of their record, their
//! removals), in one set-based transaction recorded in `purge_run`. Present professionals
//! keep every version; compression dictionaries are never purged (kept versions of others
//! may need them). The data are public, but keeping people who left the directory forever
//! is not needed for what annuaire answers.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::RunId;

/// Days a removed professional's history is kept after the removal was published.
pub const DEFAULT_RETENTION_DAYS: i32 = 400;

#[derive(Debug, Serialize)]
pub struct PurgeReport {
    pub id: i64,
    pub retention_days: i32,
    /// Removals published before this were purged.
    pub cutoff: DateTime<Utc>,
    pub professionals: i64,
    pub records: i64,
    pub removals: i64,
    pub horizon_run_id: Option<RunId>,
}

pub async fn purge(pool: &PgPool, retention_days: i32) -> Result<PurgeReport, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Serialised with publications, so that a professional coming back in a run being
    // published is not purged under it.
    super::publication::lock(&mut tx).await?;
    let cutoff: DateTime<Utc> = sqlx::query_scalar("SELECT now() - make_interval(days => $1)")
        .bind(retention_days)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE purged ON COMMIT DROP AS
         SELECT p.national_id, p.removed_run_id FROM professional p
         JOIN import_run r ON r.id = p.removed_run_id
         WHERE p.removed_at IS NOT NULL AND r.published_at < $1",
    )
    .bind(cutoff)
    .execute(&mut *tx)
    .await?;
    let records = sqlx::query("DELETE FROM professional_record WHERE national_id IN (SELECT national_id FROM purged)")
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
    let removals = sqlx::query("DELETE FROM run_removal WHERE national_id IN (SELECT national_id FROM purged)")
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
    let professionals = sqlx::query("DELETE FROM professional WHERE national_id IN (SELECT national_id FROM purged)")
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
    let horizon: Option<i64> = sqlx::query_scalar("SELECT max(removed_run_id) FROM purged")
        .fetch_one(&mut *tx)
        .await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO purge_run (retention_days, cutoff, professionals, records, removals, horizon_run_id, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, now()) RETURNING id",
    )
    .bind(retention_days)
    .bind(cutoff)
    .bind(professionals)
    .bind(records)
    .bind(removals)
    .bind(horizon)
    .fetch_one(&mut *tx)
    .await?;
    if professionals > 0 {
        // Servers reload their snapshot: a purged professional answers 404, not 410.
        sqlx::query("SELECT pg_notify($1, 'purge')")
            .bind(super::channels::PUBLICATION)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(PurgeReport {
        id,
        retention_days,
        cutoff,
        professionals,
        records,
        removals,
        horizon_run_id: horizon.map(RunId),
    })
}

/// The newest run whose removals a purge took: a feed cursor before it has a gap.
pub async fn horizon(db: impl sqlx::PgExecutor<'_>) -> Result<Option<RunId>, sqlx::Error> {
    let horizon: Option<i64> = sqlx::query_scalar("SELECT max(horizon_run_id) FROM purge_run")
        .fetch_one(db)
        .await?;
    Ok(horizon.map(RunId))
}
