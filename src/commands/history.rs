//! `annuaire claims <ID> --at <instant>`, `annuaire history <ID>`, `annuaire changes` and
//! `annuaire purge`: the directory through the published generations, and how long.

use anyhow::Context;
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use sqlx::PgPool;

use super::Outcome;
use crate::claims::history::{HistoryEntry, entries};
use crate::national_id::NationalId;
use crate::store::history::{self, Change};

/// `--at`: an RFC 3339 instant, or a date meaning the end of that day in Paris (the last
/// microsecond, Postgres's resolution, before the next day begins).
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(at.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        format!("{text:?} is neither an RFC 3339 instant (2026-11-21T10:00:00Z) nor a date (2026-11-21)")
    })?;
    let next = date
        .checked_add_days(Days::new(1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|midnight| Paris.from_local_datetime(&midnight).earliest())
        .ok_or_else(|| format!("{text} has no end of day in Paris time"))?;
    Ok(next.with_timezone(&Utc) - chrono::Duration::microseconds(1))
}

fn parse_id(input: &str) -> Option<NationalId> {
    NationalId::parse(input).map_err(|e| eprintln!("error: {e}")).ok()
}

pub async fn claims_at(pool: &PgPool, input: &str, at: DateTime<Utc>) -> anyhow::Result<Outcome> {
    let Some(id) = parse_id(input) else {
        return Ok(Outcome::MalformedId);
    };
    let version = history::as_of(pool, &id, at)
        .await
        .with_context(|| format!("while looking up {id} as of {}", at.to_rfc3339()))?;
    Ok(match version {
        None => {
            eprintln!("{id} was not in the published directory at {}", at.to_rfc3339());
            Outcome::NotFound
        }
        Some(v) if v.change == Change::Removed => {
            let removed_at = v.extract_ts.unwrap_or(v.published_at);
            eprintln!(
                "{id} had been removed from the directory on {} (generation {}, published {})",
                removed_at.format("%Y-%m-%d %H:%M UTC"),
                v.run_id,
                v.published_at.to_rfc3339()
            );
            crate::out!(
                "{}",
                serde_json::json!({
                    "national_id": id.as_str(),
                    "removed_at": removed_at,
                    "removal_published_at": v.published_at,
                })
            )?;
            Outcome::Removed
        }
        Some(v) => {
            eprintln!(
                "as served from {} (generation {})",
                v.published_at.to_rfc3339(),
                v.run_id
            );
            // The stored bytes, as the IdP received them: no reformatting.
            let mut document = v.claims_json.unwrap_or_default();
            document.push(b'\n');
            crate::commands::output::write_bytes(&document)?;
            Outcome::Success
        }
    })
}

pub async fn show(pool: &PgPool, input: &str, json: bool) -> anyhow::Result<Outcome> {
    let Some(id) = parse_id(input) else {
        return Ok(Outcome::MalformedId);
    };
    let reading = || format!("while reading the history of {id}");
    let mut conn = pool.acquire().await.with_context(reading)?;
    // Page by page, as the API reads it: never a whole long history's documents at once.
    let (mut after, mut all) = (None, Vec::new());
    loop {
        let page = history::page(&mut conn, &id, after, history::MAX_PAGE)
            .await
            .with_context(reading)?;
        let Some(last) = page.versions.last() else {
            break;
        };
        after = Some(last.run_id);
        let entries = entries(page.before.as_deref(), &page.versions);
        if json {
            all.extend(entries);
        } else {
            crate::commands::output::write(format_args!("{}", text(&entries)))?;
        }
        if page.versions.len() < history::MAX_PAGE as usize {
            break;
        }
    }
    if after.is_none() {
        eprintln!("{id} was never in the published directory");
        return Ok(Outcome::NotFound);
    }
    if json {
        super::print_json(&serde_json::json!({ "national_id": id.as_str(), "versions": all }))?;
    }
    Ok(Outcome::Success)
}

pub async fn changes(pool: &PgPool, since: &str, limit: i64, json: bool) -> anyhow::Result<Outcome> {
    let page = crate::store::feed::page(pool, since, limit).await?;
    if json {
        super::print_json(&page)?;
        return Ok(Outcome::Success);
    }
    for c in &page.changes {
        crate::out!(
            "run {:>6}  {}  {:<7}{}",
            c.run_id,
            c.national_id,
            c.change,
            if c.claims_changed { "" } else { "  (claims unchanged)" }
        )?;
    }
    crate::out!("next: {}", page.next)?;
    Ok(Outcome::Success)
}

pub async fn purge(pool: &PgPool, retention_days: i32, json: bool) -> anyhow::Result<Outcome> {
    let report = crate::store::retention::purge(pool, retention_days)
        .await
        .context("the purge failed (nothing was purged)")?;
    if json {
        super::print_json(&report)?;
    } else {
        crate::out!(
            "purge {}: {} professionals removed before {} purged ({} versions, {} removals)",
            report.id,
            report.professionals,
            report.cutoff.format("%Y-%m-%d %H:%M UTC"),
            report.records,
            report.removals
        )?;
    }
    Ok(Outcome::Success)
}

/// One line per version, then one indented line per changed field.
fn text(history: &[HistoryEntry]) -> String {
    let mut out = String::new();
    for entry in history {
        let change = match entry.change {
            Change::Added => "added",
            Change::Changed if entry.claims_changed => "changed",
            Change::Changed => "changed (record only: claims unchanged)",
            Change::Removed => "removed",
        };
        let extract = entry
            .extract_ts
            .map(|ts| ts.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "-".to_owned());
        out.push_str(&format!(
            "run {:>6}  extract {extract}  published {}  {change}\n",
            entry.run_id,
            entry.published_at.format("%Y-%m-%d %H:%M UTC")
        ));
        for field in &entry.changes {
            out.push_str(&format!("    {}: {} -> {}\n", field.path, field.old, field.new));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_the_end_of_that_day_in_paris() {
        // Winter: Paris is UTC+1, so the day ends at 23:00 UTC.
        assert_eq!(
            parse_instant("2026-11-21").unwrap().to_rfc3339(),
            "2026-11-21T22:59:59.999999+00:00"
        );
        // Summer: UTC+2.
        assert_eq!(
            parse_instant("2026-07-14").unwrap().to_rfc3339(),
            "2026-07-14T21:59:59.999999+00:00"
        );
        assert_eq!(
            parse_instant("2026-11-21T10:00:00+01:00").unwrap().to_rfc3339(),
            "2026-11-21T09:00:00+00:00"
        );
        assert!(parse_instant("21/11/2026").unwrap_err().contains("neither"));
    }
}
