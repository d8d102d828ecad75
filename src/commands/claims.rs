//! `annuaire claims <ID>`: the claims document exactly as an identity provider gets it.

use anyhow::Context;
use sqlx::PgPool;

use super::Outcome;
use crate::national_id::NationalId;
use crate::store::professionals::{self, ClaimsLookup};

pub async fn show(pool: &PgPool, input: &str) -> anyhow::Result<Outcome> {
    let id = match NationalId::parse(input) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::MalformedId);
        }
    };
    let lookup = professionals::claims(pool, &id)
        .await
        .with_context(|| format!("while looking up {id}"))?;
    Ok(match lookup {
        ClaimsLookup::Found { claims_json, .. } => {
            let document: serde_json::Value = serde_json::from_slice(&claims_json)?;
            super::print_json(&document)?;
            Outcome::Success
        }
        ClaimsLookup::Removed { removed_at } => {
            eprintln!(
                "{id} was removed from the directory on {}",
                removed_at.format("%Y-%m-%d %H:%M UTC")
            );
            crate::out!(
                "{}",
                serde_json::json!({ "national_id": id.as_str(), "removed_at": removed_at })
            )?;
            Outcome::Removed
        }
        ClaimsLookup::NotFound => {
            eprintln!("{id} is not in the directory");
            Outcome::NotFound
        }
    })
}
