//! MSSanté mailboxes: a run's mailbox set, built set-wise from its staged lines, and the
//! published addresses of one professional.

use sqlx::PgExecutor;

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

/// The published addresses of one professional, in order.
pub async fn published_addresses(db: impl PgExecutor<'_>, id: &NationalId) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT address FROM mailbox WHERE national_id = $1 AND run_id = (SELECT mailbox_run_id FROM publication) ORDER BY address",
    )
    .bind(id.as_str())
    .fetch_all(db)
    .await
}
