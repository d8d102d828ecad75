//! `annuaire export --out FILE [--gzip]`: the published generation as NDJSON in a file,
//! written beside it and renamed once complete (a reader never sees half an export).

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;

use super::Outcome;

pub async fn run(pool: &PgPool, out: &Path, gzip: bool) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    // The file is its reader: only a disk stuck for the whole stall ends it.
    let options = (*pool.connect_options()).clone();
    let mut export = crate::export::start(options, gzip, crate::export::DEFAULT_STALL, None)
        .await
        .context("cannot start the export")?;
    let head = &export.head;
    eprintln!(
        "generation {} ({}), published {}; changes after it: annuaire changes --since {}",
        head.generation,
        head.source,
        head.published_at
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "-".to_owned()),
        if head.changes_cursor.is_empty() {
            "''"
        } else {
            &head.changes_cursor
        }
    );
    let partial = out.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut bytes = 0u64;
    while let Some(chunk) = export.chunks.recv().await {
        let chunk = chunk.context("the export failed")?;
        bytes += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .with_context(|| format!("cannot write {}", partial.display()))?;
    }
    let professionals = export.done.await.context("the export stopped before its end")?;
    file.flush().await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&partial, out)
        .await
        .with_context(|| format!("cannot rename {} to {}", partial.display(), out.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} written: {professionals} professionals, {:.1} MB in {seconds:.1} s ({:.0} professionals/s)",
        out.display(),
        bytes as f64 / 1e6,
        professionals as f64 / seconds.max(1e-9)
    );
    Ok(Outcome::Success)
}
