//! A key's life after the first: a rotation adds one once the secret has shown that it
//! opens every stored key (a mistyped secret would otherwise make the signing key one that
//! no server opens), and a retirement removes a key that has signed nothing yet, or one this
//! secret cannot open. Both hold the keys' lock from their check to their change.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;

use super::{KeyProblem, Sealing, SigningError, unopenable};
use crate::store::signing_keys::{self, SigningKeyRow};

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(
        "refused: the secret cannot open signing key {kid} ({why}); nothing was stored. A rotation first proves ANNUAIRE_SIGNING_KEY_SECRET against every stored key: check the secret is the servers' one; a key that the servers' secret does not open can be removed with `annuaire signing-keys retire {kid}`"
    )]
    SecretCannotOpen { kid: String, why: KeyProblem },
    #[error("no signing key {0} (annuaire signing-keys list shows them)")]
    UnknownKey(String),
    #[error(
        "refused: signing key {kid} is {state} and this secret opens it. The rule: only a pending key (it has signed nothing yet), or one that this ANNUAIRE_SIGNING_KEY_SECRET cannot open, can be retired; a key that signed stays, so that its tokens can be verified"
    )]
    InUse { kid: String, state: &'static str },
    #[error(
        "refused: this ANNUAIRE_SIGNING_KEY_SECRET opens none of the stored signing keys, so nothing shows it is the servers' secret rather than a mistyped one (which could retire the good key {kid}). Check it; if every key was sealed under a lost secret, add --unproven-secret"
    )]
    UnprovenSecret { kid: String },
}

/// Adds `key`, signing `activate_after` from now, if `sealing` opens every stored key
/// (with none stored, there is nothing to prove).
pub async fn rotate(
    pool: &PgPool,
    sealing: &Sealing,
    activate_after: Duration,
) -> Result<SigningKeyRow, RotationError> {
    // Generated before the lock: no CPU work while it is held.
    let key = super::generate(sealing)?;
    let mut tx = pool.begin().await?;
    signing_keys::lock(&mut tx).await?;
    let rows = signing_keys::list(&mut *tx).await?;
    if let Some(bad) = unopenable(sealing, &rows).into_iter().next() {
        return Err(RotationError::SecretCannotOpen {
            kid: bad.kid,
            why: bad.why,
        });
    }
    let added = signing_keys::add(&mut *tx, &key, activate_after).await?;
    tx.commit().await?;
    Ok(added)
}

/// Why a key could be retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retired {
    /// It had not signed yet.
    Pending,
    /// This secret does not open it.
    Unopenable(KeyProblem),
}

/// Removes the key `kid` if it is pending, or if `sealing` cannot open it while it opens
/// another stored key (`unproven` waives the latter: every key sealed under a lost secret).
pub async fn retire(pool: &PgPool, sealing: &Sealing, kid: &str, unproven: bool) -> Result<Retired, RotationError> {
    let mut tx = pool.begin().await?;
    signing_keys::lock(&mut tx).await?;
    let rows = signing_keys::list(&mut *tx).await?;
    let Some(row) = rows.iter().find(|row| row.kid == kid) else {
        return Err(RotationError::UnknownKey(kid.to_owned()));
    };
    let now = Utc::now();
    let unopened = unopenable(sealing, &rows);
    let reason = if row.activates_at > now {
        Retired::Pending
    } else if let Some(bad) = unopened.iter().find(|bad| bad.kid == kid) {
        if unopened.len() == rows.len() && !unproven {
            return Err(RotationError::UnprovenSecret { kid: kid.to_owned() });
        }
        Retired::Unopenable(bad.why.clone())
    } else {
        // As the servers see it: the newest activated key that opens signs.
        let signing = rows
            .iter()
            .rev()
            .filter(|r| r.activates_at <= now)
            .find(|r| unopened.iter().all(|bad| bad.kid != r.kid))
            .map(|r| r.kid.as_str());
        let state = if signing == Some(kid) { "signing" } else { "superseded" };
        return Err(RotationError::InUse {
            kid: kid.to_owned(),
            state,
        });
    };
    signing_keys::remove(&mut *tx, kid).await?;
    tx.commit().await?;
    Ok(reason)
}
