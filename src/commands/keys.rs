//! `annuaire keys create|list|revoke`: the API keys of the clients.

use sqlx::PgPool;

use super::{Outcome, print_json};
use crate::keys::{self, Scope};

pub async fn create(pool: &PgPool, name: &str, scopes: &str) -> anyhow::Result<Outcome> {
    let scopes = scopes.split(',').map(Scope::parse).collect::<Result<Vec<_>, _>>()?;
    let (info, secret) = keys::create(pool, name, &scopes).await?;
    eprintln!(
        "created key {} for {:?} with scopes {}; it is shown once, store it now:",
        info.id,
        info.name,
        info.scopes.join(",")
    );
    crate::out!("{secret}")?;
    Ok(Outcome::Success)
}

pub async fn list(pool: &PgPool, json: bool) -> anyhow::Result<Outcome> {
    let list = keys::list(pool).await?;
    if json {
        print_json(&list)?;
        return Ok(Outcome::Success);
    }
    for key in &list {
        let state = key.revoked_at.map_or("active".to_owned(), |t| {
            format!("revoked {}", t.format("%Y-%m-%d %H:%M"))
        });
        crate::out!(
            "{:>4}  {:<24} {:<20} created {}  {state}",
            key.id,
            key.name,
            key.scopes.join(","),
            key.created_at.format("%Y-%m-%d %H:%M")
        )?;
    }
    Ok(Outcome::Success)
}

pub async fn revoke(pool: &PgPool, name_or_id: &str) -> anyhow::Result<Outcome> {
    let key = keys::revoke(pool, name_or_id).await?;
    crate::out!("revoked key {} ({})", key.id, key.name)?;
    Ok(Outcome::Success)
}
