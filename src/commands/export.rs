//! `annuaire export --out FILE [--gzip]`: the published generation as NDJSON in a file,
//! written beside it and renamed once complete (a reader never sees half an export). What
//! an export killed mid-way leaves is removed when the next one starts in that directory.

use std::ffi::OsStr;
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
    let (dir, name) = match (out.parent(), out.file_name()) {
        (Some(dir), Some(name)) => (
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            },
            name,
        ),
        _ => anyhow::bail!("--out must name a file: {}", out.display()),
    };
    let partial = dir.join(format!("{}{PARTIAL_SUFFIX}", name.to_string_lossy()));
    // Held until the rename: another export's start takes this file for no leftover.
    let _claim = {
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || crate::scratch::claim(&dir, is_leftover))
            .await?
            .with_context(|| format!("cannot prepare {}", partial.display()))?
    };
    let written = write(&mut export, &partial).await;
    let (bytes, professionals) = match written {
        Ok(written) => written,
        Err(error) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(error);
        }
    };
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

/// The export is written under the output's name with this suffix, then renamed: what an
/// export killed mid-way leaves, removed by the next export's start in that directory.
const PARTIAL_SUFFIX: &str = ".annuaire-partial";

fn is_leftover(name: &OsStr) -> bool {
    name.to_str().is_some_and(|name| name.ends_with(PARTIAL_SUFFIX))
}

/// Writes the export's chunks into `partial`, synced: its bytes and professionals.
async fn write(export: &mut crate::export::Export, partial: &Path) -> anyhow::Result<(u64, u64)> {
    let mut file = tokio::fs::File::create(partial)
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
    let professionals = (&mut export.done).await.context("the export stopped before its end")?;
    file.flush().await?;
    file.sync_all().await?;
    Ok((bytes, professionals))
}
