//! `annuaire import`, `annuaire imports list|show|diff|approve`: running imports and
//! reading their records.

use anyhow::Context;
use sqlx::PgPool;

use super::{Outcome, print_json};
use crate::import::review;
use crate::import::{self, FailedImport, ImportError, ImportOptions};
use crate::store::runs::{self, RunSummary};
use crate::store::{Change, RunId, RunStatus};

pub async fn import(pool: &PgPool, source: &str, options: &ImportOptions, json: bool) -> anyhow::Result<Outcome> {
    match import::import_tracked(pool, source, options).await {
        Ok(run) => {
            report(&run, json)?;
            Ok(if run.status == RunStatus::Held {
                Outcome::Held
            } else {
                Outcome::Success
            })
        }
        Err(FailedImport {
            error: ImportError::Busy,
            ..
        }) => Err(ImportError::Busy.into()),
        Err(FailedImport { run_id, error }) => {
            // The failed run is recorded: show it, so that its id and counts are at hand.
            if json
                && let Some(id) = run_id
                && let Some(run) = runs::get(pool, id).await?
            {
                print_json(&run)?;
            }
            Err(anyhow::Error::new(error).context(format!("while importing {source}")))
        }
    }
}

fn report(run: &RunSummary, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(run);
    }
    crate::out!("{}", one_line(run))?;
    if let Some(message) = &run.message {
        crate::out!("  {message}")?;
    }
    Ok(())
}

fn one_line(run: &RunSummary) -> String {
    let n = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
    format!(
        "run {} {}: {} professionals (+{} ~{} -{}), {} mailboxes, {} lines read, {} rejected, source {}",
        run.id,
        run.status,
        n(run.professionals),
        n(run.added),
        n(run.changed),
        n(run.removed),
        n(run.mailboxes),
        run.lines_read,
        run.rejected,
        run.source
    )
}

pub async fn list(pool: &PgPool, limit: i64, json: bool) -> anyhow::Result<Outcome> {
    let list = runs::list(pool, limit).await.context("while listing import runs")?;
    if json {
        print_json(&list)?;
    } else if list.is_empty() {
        crate::out!("no import runs yet")?;
    } else {
        for run in &list {
            crate::out!("{}  {}", run.started_at.format("%Y-%m-%d %H:%M:%S"), one_line(run))?;
        }
    }
    Ok(Outcome::Success)
}

pub async fn show(pool: &PgPool, id: i64, json: bool) -> anyhow::Result<Outcome> {
    let run = runs::get(pool, RunId(id))
        .await?
        .with_context(|| format!("run {id} does not exist"))?;
    let rejects = runs::rejects(pool, RunId(id)).await?;
    if json {
        let mut value = serde_json::to_value(&run)?;
        value["rejected_lines"] = serde_json::to_value(&rejects)?;
        print_json(&value)?;
        return Ok(Outcome::Success);
    }
    crate::out!("{}", one_line(&run))?;
    if let Some(message) = &run.message {
        crate::out!("message: {message}")?;
    }
    crate::out!(
        "extract: {}",
        run.extract_ts.map_or("unknown".to_owned(), |t| t.to_rfc3339())
    )?;
    crate::out!("checksum: {}", run.checksum.as_deref().unwrap_or("-"))?;
    crate::out!("phases (ms): {}", run.phases)?;
    if let Some(gate) = &run.gate {
        crate::out!("per identifier type: {gate}")?;
    }
    for file in run.files.as_array().into_iter().flatten() {
        crate::out!("file: {file}")?;
    }
    if !rejects.is_empty() {
        crate::out!("rejected lines ({} kept of {}):", rejects.len(), run.rejected)?;
        for r in &rejects {
            crate::out!("  {}:{}: {}  | {}", r.file, r.line, r.reason, r.content)?;
        }
    }
    Ok(Outcome::Success)
}

pub async fn approve(pool: &PgPool, id: i64, json: bool) -> anyhow::Result<Outcome> {
    let run = import::approve(pool, RunId(id))
        .await
        .with_context(|| format!("while approving run {id}"))?;
    report(&run, json)?;
    Ok(Outcome::Success)
}

/// `annuaire imports diff`: each kind asked for (all three by default), a page of each.
pub async fn diff(
    pool: &PgPool,
    id: i64,
    kind: Option<&str>,
    page: i64,
    per_page: i64,
    json: bool,
) -> anyhow::Result<Outcome> {
    let kinds = match kind {
        Some(text) => vec![text.parse::<Change>()?],
        None => review::KINDS.to_vec(),
    };
    let mut pages = Vec::new();
    for kind in kinds {
        pages.push(
            review::run_diff(pool, RunId(id), kind, page, per_page)
                .await
                .with_context(|| format!("while reading the diff of run {id}"))?,
        );
    }
    if json {
        print_json(&pages)?;
        return Ok(Outcome::Success);
    }
    if let Some(first) = pages.first() {
        let c = &first.counts;
        crate::out!(
            "run {} ({}): {} removed, {} changed, {} added",
            first.run_id,
            first.status,
            c.removed,
            c.changed,
            c.added
        )?;
    }
    for diff in &pages {
        let shown = diff.items.len() as i64;
        let from = (diff.page - 1) * diff.per_page;
        crate::out!(
            "\n{} ({} in all{}):",
            diff.kind,
            diff.total,
            match shown {
                0 if diff.total > 0 => format!(", none on page {}", diff.page),
                n if n < diff.total => format!(", {}-{} shown: --page for more", from + 1, from + n),
                _ => String::new(),
            }
        )?;
        for item in &diff.items {
            let note = if diff.kind == Change::Changed && !item.claims_changed {
                "  (record only: claims unchanged)"
            } else {
                ""
            };
            crate::out!("  {}  {} {}{note}", item.national_id, item.family_name, item.given_name)?;
            for field in &item.changes {
                crate::out!("      {}: {} -> {}", field.path, field.old, field.new)?;
            }
        }
    }
    Ok(Outcome::Success)
}
