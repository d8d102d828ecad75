//! The NOTIFY channels the servers follow: named once here, for the statements that send
//! them (bound to `pg_notify`) and the follower that listens.

/// A generation was published, or a purge removed professionals (payload `purge`).
pub const PUBLICATION: &str = "annuaire_publication";
/// The API keys or the claims signing keys changed.
pub const KEYS: &str = "annuaire_keys";
