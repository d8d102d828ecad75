//! The publish stage: one transaction makes a run's records and mailboxes what readers see
//! (an import's run, or a held run an operator approves), then what runs that will never
//! be published left behind is cleaned up.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::ImportError;
use crate::store::RunId;
use crate::store::publication;
use crate::store::runs::RunContents;

/// Publishes the run: readers see the previous generation or this one, never a mix.
/// `changed_at` dates the changes (the extract's timestamp when known).
pub async fn publish(
    pool: &PgPool,
    run_id: RunId,
    contents: RunContents,
    changed_at: DateTime<Utc>,
) -> Result<(), ImportError> {
    let mut tx = pool.begin().await?;
    publication::publish(&mut tx, run_id, contents, changed_at).await?;
    tx.commit().await?;
    publication::discard_unpublished_data(pool).await?;
    Ok(())
}
