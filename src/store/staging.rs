//! The staging area bulk loads go through: `stage_line` (every line read, as `COPY`-ed by
//! the reader) and `stage_build` (the professionals a build selects), emptied between runs.

use bytes::Bytes;
use futures::stream::BoxStream;
use sqlx::postgres::PgCopyIn;
use sqlx::{PgConnection, PgExecutor};

use super::copy::CopyEncoder;

/// Empties the staged lines, for a new run to stage its own.
pub async fn clear_lines(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("TRUNCATE stage_line").execute(db).await?;
    Ok(())
}

/// Empties the whole staging area: it is only needed while a run works.
pub async fn clear(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("TRUNCATE stage_line, stage_build").execute(db).await?;
    Ok(())
}

/// Starts the binary `COPY` of staged lines (file code, line number, national id, the
/// values joined by `|`); the caller sends the data and finishes or aborts it.
pub async fn copy_lines(conn: &mut PgConnection) -> Result<PgCopyIn<&mut PgConnection>, sqlx::Error> {
    conn.copy_in_raw("COPY stage_line (file, line_no, national_id, fields) FROM STDIN (FORMAT binary)")
        .await
}

/// Writes the national ids a build selects into `stage_build` (and analyses it, so that
/// the join that reads their lines is planned on its real size).
pub async fn select_for_build<'i>(
    conn: &mut PgConnection,
    national_ids: impl Iterator<Item = &'i str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("TRUNCATE stage_build").execute(&mut *conn).await?;
    let mut encoder = CopyEncoder::new(usize::MAX);
    for id in national_ids {
        encoder.row(1).text(id);
    }
    let mut copy = conn
        .copy_in_raw("COPY stage_build (national_id) FROM STDIN (FORMAT binary)")
        .await?;
    copy.send(encoder.finish()).await?;
    copy.finish().await?;
    sqlx::query("ANALYZE stage_build").execute(&mut *conn).await?;
    Ok(())
}

/// The staged directory lines (not MSSanté), of every professional or only of those in
/// `stage_build`, sorted by professional then file and line, as binary `COPY` data of
/// (file, line number, national id, values).
pub async fn sorted_lines(
    conn: &mut PgConnection,
    selected_only: bool,
) -> Result<BoxStream<'_, Result<Bytes, sqlx::Error>>, sqlx::Error> {
    let selection = if selected_only {
        "SELECT s.file, s.line_no, s.national_id, s.fields FROM stage_line s JOIN stage_build b USING (national_id) WHERE s.file <> 4"
    } else {
        "SELECT file, line_no, national_id, fields FROM stage_line WHERE file <> 4"
    };
    // "C" collation: byte order is all the grouping needs, and much cheaper than a locale.
    let statement =
        format!("COPY ({selection} ORDER BY national_id COLLATE \"C\", file, line_no) TO STDOUT (FORMAT binary)");
    conn.copy_out_raw(&statement).await
}
