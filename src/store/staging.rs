//! The staging area: `stage_line`, the MSSanté lines as `COPY`-ed by the reader (the
//! mailbox set is built from them in SQL), emptied between runs. Directory lines stay in
//! the import's own work file.

use sqlx::postgres::PgCopyIn;
use sqlx::{PgConnection, PgExecutor};

/// Empties the staging area: a run stages its own lines, and they are only needed while
/// it works.
pub async fn clear(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("TRUNCATE stage_line").execute(db).await?;
    Ok(())
}

/// Starts the binary `COPY` of staged lines (file code, line number, national id, the
/// values joined by `|`); the caller sends the data and finishes or aborts it.
pub async fn copy_lines(conn: &mut PgConnection) -> Result<PgCopyIn<&mut PgConnection>, sqlx::Error> {
    conn.copy_in_raw("COPY stage_line (file, line_no, national_id, fields) FROM STDIN (FORMAT binary)")
        .await
}
