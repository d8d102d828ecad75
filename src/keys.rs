//! API keys: named clients with scopes, stored as SHA-256 hashes, checked in constant time
//! against an in-memory key ring (so that authentication keeps working while Postgres is
//! down). Every change is announced with `NOTIFY annuaire_keys` for the servers to reload.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;

use crate::store::keys as stored;
pub use crate::store::keys::KeyInfo;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Claims lookups and the IdP hooks.
    Claims,
    /// The search API.
    Search,
    /// Administration: the web page, imports, jobs.
    Admin,
    /// The change feed, for systems downstream.
    Feed,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Claims, Scope::Search, Scope::Admin, Scope::Feed];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Claims => "claims",
            Scope::Search => "search",
            Scope::Admin => "admin",
            Scope::Feed => "feed",
        }
    }

    /// Every scope's name, comma-separated, for messages.
    pub fn names() -> String {
        Scope::ALL.map(Scope::as_str).join(", ")
    }

    pub fn parse(text: &str) -> Result<Scope, KeyError> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim())
            .ok_or_else(|| KeyError::UnknownScope(text.to_owned()))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown scope {name:?}: the scopes are {all}", name = .0, all = Scope::names())]
    UnknownScope(String),
    #[error(
        "key name {0:?} holds a control or text-direction character: `keys list` would print it as is; choose a name without one"
    )]
    BadName(String),
    #[error("a key needs at least one scope")]
    NoScope,
    #[error("an active key named {0:?} exists already; revoke it first or choose another name")]
    NameTaken(String),
    #[error("no active key named or numbered {0:?}")]
    NotFound(String),
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Prefix of every key: tells people (and secret scanners) what the string is.
const KEY_PREFIX: &str = "ann_";

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Creates a key and returns it with its secret, which is not stored and cannot be shown
/// again.
pub async fn create(db: impl PgExecutor<'_>, name: &str, scopes: &[Scope]) -> Result<(KeyInfo, String), KeyError> {
    if scopes.is_empty() {
        return Err(KeyError::NoScope);
    }
    if !printable(name) {
        return Err(KeyError::BadName(name.to_owned()));
    }
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| KeyError::Random(e.to_string()))?;
    let secret = format!("{KEY_PREFIX}{}", hex::encode(random));
    let scope_names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let created = stored::insert(db, name, &scope_names, hash(&secret).as_slice()).await;
    match created {
        Ok(info) => Ok((info, secret)),
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("api_key_active_name_uq") => {
            Err(KeyError::NameTaken(name.to_owned()))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<KeyInfo>, KeyError> {
    Ok(stored::list(db).await?)
}

/// Whether a key name prints as itself: no control character (a newline or an escape
/// sequence would forge or hide lines of `keys list` on an operator's terminal) and no
/// bidirectional formatting character (it would show the name's letters reordered).
fn printable(name: &str) -> bool {
    !name.chars().any(|c| {
        c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}

/// Revokes the active key with this name (or id).
pub async fn revoke(db: impl PgExecutor<'_>, name_or_id: &str) -> Result<KeyInfo, KeyError> {
    let id: Option<i64> = name_or_id.parse().ok();
    stored::revoke(db, name_or_id, id)
        .await?
        .ok_or_else(|| KeyError::NotFound(name_or_id.to_owned()))
}

/// An active key, as the servers hold it.
#[derive(Debug, Clone)]
pub struct ActiveKey {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    hash: [u8; 32],
}

/// The active keys, checked on every request.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<ActiveKey>,
}

impl KeyRing {
    pub async fn load(db: impl PgExecutor<'_>) -> Result<KeyRing, KeyError> {
        let rows = stored::active(db).await?;
        let keys = rows
            .into_iter()
            .filter_map(|(id, name, scopes, stored)| {
                let hash: [u8; 32] = stored.try_into().ok()?;
                let scopes = scopes.iter().filter_map(|s| Scope::parse(s).ok()).collect();
                Some(ActiveKey { id, name, scopes, hash })
            })
            .collect();
        Ok(KeyRing { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key matching `presented`, if any. Every stored hash is compared, in constant
    /// time, so that timing tells a guesser nothing.
    pub fn authenticate(&self, presented: &str) -> Option<&ActiveKey> {
        let candidate = hash(presented);
        let mut found = None;
        for key in &self.keys {
            if constant_time_eq::constant_time_eq_32(&key.hash, &candidate) {
                found = Some(key);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ring_finds_only_the_exact_key() {
        let secret = "ann_0123";
        let ring = KeyRing {
            keys: vec![ActiveKey {
                id: 1,
                name: "idp".into(),
                scopes: vec![Scope::Claims],
                hash: hash(secret),
            }],
        };
        assert_eq!(ring.authenticate(secret).map(|k| k.name.as_str()), Some("idp"));
        assert!(ring.authenticate("ann_0124").is_none());
        assert!(ring.authenticate("").is_none());
    }

    #[test]
    fn scopes_parse_by_name() {
        assert_eq!(Scope::parse(" admin").unwrap(), Scope::Admin);
        assert!(matches!(Scope::parse("root"), Err(KeyError::UnknownScope(_))));
    }

    #[test]
    fn the_unknown_scope_error_names_every_scope() {
        let message = Scope::parse("root").unwrap_err().to_string();
        for scope in Scope::ALL {
            assert!(message.contains(scope.as_str()), "{scope} missing from {message}");
        }
    }

    #[test]
    fn names_with_control_or_direction_characters_are_not_printable() {
        for bad in [
            "idp\nrevoked",
            "idp\u{1b}[2J",
            "idp\t",
            "idp\u{7f}",
            "idp\u{85}",
            "idp\u{202e}dorp",
        ] {
            assert!(!printable(bad), "{bad:?}");
        }
        for good in ["idp-prod", "Hôpital de Lyon", "keycloak 2"] {
            assert!(printable(good), "{good:?}");
        }
    }
}
