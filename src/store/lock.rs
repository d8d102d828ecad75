//! Advisory locks that cannot leak: a session lock (`pg_try_advisory_lock`) held on its own
//! pool connection for as long as the guard lives. Imports and job runs use it to run one
//! at a time across every process sharing the database.

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

/// A taken advisory lock. Release it with [`AdvisoryLock::release`]; a guard dropped without
/// it (an early `?`, a panic, a cancelled future) cannot await an unlock, so it closes its
/// connection instead: the session ends and the lock with it, rather than going back to the
/// pool still held, where later attempts would find it taken until the connection recycles.
#[derive(Debug)]
pub struct AdvisoryLock {
    key: i64,
    conn: Option<PoolConnection<Postgres>>,
}

impl AdvisoryLock {
    /// Takes the lock `key` if no other session holds it; `None` when one does.
    pub async fn try_acquire(pool: &PgPool, key: i64) -> Result<Option<AdvisoryLock>, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        if !taken {
            return Ok(None);
        }
        Ok(Some(AdvisoryLock { key, conn: Some(conn) }))
    }

    /// Unlocks and gives the connection back to the pool. If the unlock fails or finds the
    /// lock not held, the connection is closed instead, which ends the session lock too.
    pub async fn release(mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let unlocked: Result<bool, sqlx::Error> = sqlx::query_scalar("SELECT pg_advisory_unlock($1)")
            .bind(self.key)
            .fetch_one(&mut *conn)
            .await;
        match unlocked {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    key = self.key,
                    "advisory lock was not held at release; closing its connection"
                );
                conn.close_on_drop();
            }
            Err(error) => {
                tracing::warn!(key = self.key, %error, "cannot release an advisory lock; closing its connection");
                conn.close_on_drop();
            }
        }
    }
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            tracing::debug!(
                key = self.key,
                "advisory lock dropped unreleased; closing its connection"
            );
            conn.close_on_drop();
        }
    }
}
