//! MSSanté mailboxes: a run's mailbox set, built set-wise from its staged lines, compared
//! with the published set (for the safety gate), and the published addresses of one
//! professional.

use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

use super::RunId;
use crate::national_id::NationalId;

/// Builds the run's mailbox set from the staged MSSanté lines, one row per address.
/// Returns how many addresses it holds.
pub async fn build(db: impl PgExecutor<'_>, run_id: RunId) -> Result<i64, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO mailbox (run_id, address, bal_type, national_id, fields)
         SELECT DISTINCT ON (address) $1, address, bal_type, nullif(national_id, ''), string_to_array(fields, '|')
         FROM (SELECT split_part(fields, '|', 2) AS address, split_part(fields, '|', 1) AS bal_type,
                      national_id, fields, line_no
               FROM stage_line WHERE file = 4) AS s
         WHERE address <> ''
         ORDER BY address, line_no",
    )
    .bind(run_id)
    .execute(db)
    .await?;
    Ok(result.rows_affected() as i64)
}

/// A run's mailbox set against the published one, in distinct addresses: the gate's
/// `mailboxes` figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, FromRow)]
pub struct MailboxCounts {
    /// Published before this run (0 when no mailbox set is).
    pub published: i64,
    pub added: i64,
    /// Same address, another line.
    pub changed: i64,
    pub removed: i64,
    pub unchanged: i64,
}

/// Compares the run's mailbox set (built by [`build`]) with the published one.
pub async fn compare(db: impl PgExecutor<'_>, run_id: RunId) -> Result<MailboxCounts, sqlx::Error> {
    sqlx::query_as(
        "WITH new AS (SELECT address, fields FROM mailbox WHERE run_id = $1),
              old AS (SELECT address, fields FROM mailbox
                      WHERE run_id = (SELECT mailbox_run_id FROM publication))
         SELECT (SELECT count(*) FROM old) AS published,
                count(*) FILTER (WHERE o.address IS NULL) AS added,
                count(*) FILTER (WHERE n.address IS NOT NULL AND o.address IS NOT NULL
                                   AND n.fields IS DISTINCT FROM o.fields) AS changed,
                count(*) FILTER (WHERE n.address IS NULL) AS removed,
                count(*) FILTER (WHERE n.fields IS NOT DISTINCT FROM o.fields
                                   AND n.address IS NOT NULL AND o.address IS NOT NULL) AS unchanged
         FROM new n FULL JOIN old o ON o.address = n.address",
    )
    .bind(run_id)
    .fetch_one(db)
    .await
}

/// The published addresses of one professional, in order.
pub async fn published_addresses(db: impl PgExecutor<'_>, id: &NationalId) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT address FROM mailbox WHERE national_id = $1 AND run_id = (SELECT mailbox_run_id FROM publication) ORDER BY address",
    )
    .bind(id.as_str())
    .fetch_all(db)
    .await
}
