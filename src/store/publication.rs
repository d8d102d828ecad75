//! Publishing a generation: the statements of the one transaction that makes a run's
//! records and mailboxes what readers see, the removal list it applies, and the clean-up of
//! what runs that will never be published left behind.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use super::RunId;
use super::copy::CopyEncoder;
use super::runs::RunContents;

/// Records the professionals the run removes, for the publish to apply.
pub async fn record_removals(conn: &mut PgConnection, run_id: RunId, removed: &[String]) -> Result<(), sqlx::Error> {
    if removed.is_empty() {
        return Ok(());
    }
    let mut encoder = CopyEncoder::new(usize::MAX);
    for id in removed {
        encoder.row(2).int8(run_id.0).text(id);
    }
    let mut copy = conn
        .copy_in_raw("COPY run_removal (run_id, national_id) FROM STDIN (FORMAT binary)")
        .await?;
    copy.send(encoder.finish()).await?;
    copy.finish().await?;
    Ok(())
}

/// Serialises what changes the published directory (an import's publication, an
/// approval, a purge) on the publication row, until the caller's transaction ends.
pub async fn lock(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO publication (run_id) VALUES (NULL) ON CONFLICT DO NOTHING")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT 1 FROM publication FOR UPDATE")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Makes the run's data what readers see. Run it inside a transaction (the caller's), so
/// that readers see the previous generation or this one, never a mix; `changed_at` dates
/// the changes (the extract's timestamp when known).
pub async fn publish(
    tx: &mut PgConnection,
    run_id: RunId,
    contents: RunContents,
    changed_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    lock(tx).await?;
    if contents.has_directory {
        publish_directory(tx, run_id, changed_at).await?;
    }
    if contents.has_mailboxes {
        sqlx::query("UPDATE publication SET mailbox_run_id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM mailbox WHERE run_id <> $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        // A held run with mailboxes was compared with the set this one replaces, and its
        // own set was just deleted: approving it would publish no mailbox at all.
        sqlx::query(
            "UPDATE import_run SET status = 'discarded',
                 message = coalesce(message, '') || ' (discarded: run ' || $1 || ' was published after it)'
             WHERE status = 'held' AND has_mailboxes AND id <> $1",
        )
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE import_run SET status = 'published', finished_at = coalesce(finished_at, now()) WHERE id = $1")
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    if contents.has_directory {
        // A held run was compared with the generation this one replaces: it can no
        // longer be approved as it is.
        sqlx::query(
            "UPDATE import_run SET status = 'discarded',
                 message = coalesce(message, '') || ' (discarded: run ' || $1 || ' was published after it)'
             WHERE status = 'held' AND id <> $1",
        )
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    }
    // Every server process follows the published generation through this (sent at commit).
    sqlx::query("SELECT pg_notify($1, $2::text)")
        .bind(super::channels::PUBLICATION)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    stamp(tx, run_id, contents.has_directory).await
}

/// Dates the publication and writes its webhook event, last before the commit. `?at=`
/// counts a generation from its `published_at`: taken at the start of the transaction
/// (`now()`), it named an instant seconds (at national scale) before anyone could read the
/// generation, and an audit's answer for that instant changed at the commit. So the clock
/// is read once every lock the rest needs is held: after it, only reads of rows this
/// transaction already holds and the outbox's insert.
async fn stamp(tx: &mut PgConnection, run_id: RunId, has_directory: bool) -> Result<(), sqlx::Error> {
    if has_directory {
        // What the event's insert would wait for (another session's lock on the outbox),
        // waited for before the clock is read.
        sqlx::query("LOCK TABLE publication_event IN ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "WITH stamp AS MATERIALIZED (SELECT clock_timestamp() AS at),
              run AS (UPDATE import_run SET published_at = stamp.at FROM stamp WHERE id = $1)
         UPDATE publication SET published_at = stamp.at FROM stamp",
    )
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    if has_directory {
        // The webhooks' outbox: written with the publication, so an event is never lost
        // nor sent for a generation that was not published; its body carries the
        // `published_at` just taken (read back from the run).
        super::webhooks::record_publication(tx, run_id).await?;
    }
    Ok(())
}

/// The directory part of a publish: professionals added, changed, revived and removed.
async fn publish_directory(tx: &mut PgConnection, run_id: RunId, changed_at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let first: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM professional)")
        .fetch_one(&mut *tx)
        .await?;
    if first {
        // The first generation fills an empty table: loading it without its primary key and
        // building the key once, by a sort, costs a fraction of 1.7 M insertions into the
        // B-tree. Inside the publish transaction, so a crash or a failure leaves the table
        // and its key as they were (the definition is that of migrations/0001_initial.sql).
        sqlx::query("ALTER TABLE professional DROP CONSTRAINT professional_pk")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO professional (national_id, id_type, record_run_id, content_hash, first_seen_at, last_changed_at)
             SELECT national_id, left(national_id, 1), run_id, content_hash, $2, $2
             FROM professional_record WHERE run_id = $1 AND change = 'added'",
        )
        .bind(run_id)
        .bind(changed_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("ALTER TABLE professional ADD CONSTRAINT professional_pk PRIMARY KEY (national_id)")
            .execute(&mut *tx)
            .await?;
    } else {
        // Added includes a professional coming back after a removal: same row, revived.
        sqlx::query(
            "INSERT INTO professional AS p (national_id, id_type, record_run_id, content_hash, first_seen_at, last_changed_at)
             SELECT national_id, left(national_id, 1), run_id, content_hash, $2, $2
             FROM professional_record WHERE run_id = $1 AND change = 'added'
             ON CONFLICT (national_id) DO UPDATE SET record_run_id = excluded.record_run_id,
                 content_hash = excluded.content_hash, last_changed_at = excluded.last_changed_at,
                 removed_at = NULL, removed_run_id = NULL",
        )
        .bind(run_id)
        .bind(changed_at)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE professional p SET record_run_id = r.run_id, content_hash = r.content_hash, last_changed_at = $2
         FROM professional_record r WHERE r.run_id = $1 AND r.change = 'changed' AND p.national_id = r.national_id",
    )
    .bind(run_id)
    .bind(changed_at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE professional p SET removed_at = $2, removed_run_id = $1
         FROM run_removal x WHERE x.run_id = $1 AND p.national_id = x.national_id",
    )
    .bind(run_id)
    .bind(changed_at)
    .execute(&mut *tx)
    .await?;
    // Superseded versions stay: they are the professionals' history (`store::history`),
    // which readers of the present never see (they join `professional.record_run_id`).
    // Dated by `stamp`, at the end of the transaction.
    sqlx::query("UPDATE publication SET run_id = $1")
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Deletes what runs that will never be published left behind (failed, discarded,
/// interrupted). Invisible to readers either way; this only reclaims space.
pub async fn discard_unpublished_data<'c, E>(db: E) -> Result<(), sqlx::Error>
where
    E: PgExecutor<'c> + Copy,
{
    macro_rules! dead_runs {
        () => {
            "(SELECT id FROM import_run WHERE status IN ('failed', 'discarded', 'cancelled'))"
        };
    }
    sqlx::query(concat!(
        "DELETE FROM professional_record WHERE run_id IN ",
        dead_runs!()
    ))
    .execute(db)
    .await?;
    sqlx::query(concat!("DELETE FROM run_removal WHERE run_id IN ", dead_runs!()))
        .execute(db)
        .await?;
    sqlx::query(concat!("DELETE FROM mailbox WHERE run_id IN ", dead_runs!()))
        .execute(db)
        .await?;
    Ok(())
}
