//! `annuaire signing-keys list|rotate|retire`: the keys that sign claims for relying parties.

use std::time::Duration;

use sqlx::PgPool;

use super::{Outcome, print_json};
use crate::signing::Sealing;
use crate::signing::rotation::{self, Retired};
use crate::store::signing_keys;

pub async fn list(pool: &PgPool, json: bool) -> anyhow::Result<Outcome> {
    let keys = signing_keys::list(pool).await?;
    if json {
        print_json(&keys)?;
        return Ok(Outcome::Success);
    }
    if keys.is_empty() {
        crate::out!("no signing key yet: a server with ANNUAIRE_ISSUER creates the first one")?;
    }
    let now = chrono::Utc::now();
    let signing = keys.iter().rev().find(|k| k.activates_at <= now).map(|k| k.kid.clone());
    for key in &keys {
        let state = if key.activates_at > now {
            "pending"
        } else if Some(&key.kid) == signing.as_ref() {
            "signing"
        } else {
            "superseded"
        };
        crate::out!(
            "{}  {:<10} created {}  signs from {}  {}",
            key.kid,
            state,
            key.created_at.format("%Y-%m-%d %H:%M"),
            key.activates_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            if key.sealed { "sealed" } else { "UNSEALED" }
        )?;
    }
    Ok(Outcome::Success)
}

pub async fn rotate(pool: &PgPool, activate_after: u64, sealing: &Sealing) -> anyhow::Result<Outcome> {
    let added = rotation::rotate(pool, sealing, Duration::from_secs(activate_after)).await?;
    crate::out!(
        "added signing key {}: published in the JWKS now, signs from {}; the previous key stays published until its tokens expire",
        added.kid,
        added.activates_at.to_rfc3339()
    )?;
    Ok(Outcome::Success)
}

pub async fn retire(pool: &PgPool, kid: &str, sealing: &Sealing, unproven_secret: bool) -> anyhow::Result<Outcome> {
    let why = match rotation::retire(pool, sealing, kid, unproven_secret).await? {
        Retired::Pending => "it had signed nothing yet".to_owned(),
        Retired::Unopenable(problem) => problem.to_string(),
    };
    crate::out!("retired signing key {kid} ({why}): servers drop it from the JWKS within seconds")?;
    Ok(Outcome::Success)
}
