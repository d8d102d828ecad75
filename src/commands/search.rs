//! `annuaire search`: the admins' search on the command line, on the same index as the API.

use std::path::Path;

use sqlx::PgPool;

use super::{Outcome, print_json};
use crate::search::{self, SearchRequest};

pub async fn run(pool: &PgPool, index_dir: &Path, request: SearchRequest, json: bool) -> anyhow::Result<Outcome> {
    // The same bounds as the API: an absurd page or query is refused before any work.
    request.validate(&search::SearchLimits::default())?;
    let index = search::open_or_rebuild(pool, index_dir).await?;
    let response = tokio::task::spawn_blocking(move || index.search(&request)).await??;
    if json {
        print_json(&response)?;
        return Ok(Outcome::Success);
    }
    crate::out!("{} professionals", response.total)?;
    for hit in &response.results {
        let removed = if hit.removed { "  (removed)" } else { "" };
        let professions: Vec<String> = hit
            .professions
            .iter()
            .map(|code| coded(code, hit.profession_labels.get(code).map(String::as_str)))
            .collect();
        crate::out!(
            "{}  {:<32} {:<24} département {}{removed}",
            hit.national_id,
            hit.name,
            professions.join(", "),
            hit.departements.join(",")
        )?;
    }
    for (facet, values) in &response.facets {
        let shown: Vec<String> = values
            .iter()
            .take(8)
            .map(|v| format!("{} ({})", coded(&v.value, v.label.as_deref()), v.count))
            .collect();
        crate::out!("{facet}: {}", shown.join(", "))?;
    }
    Ok(Outcome::Success)
}

/// A code with its label from the extract, when it has one: `10 Médecin`.
fn coded(code: &str, label: Option<&str>) -> String {
    match label {
        Some(label) => format!("{code} {label}"),
        None => code.to_owned(),
    }
}
