//! annuaire: a Postgres copy of the French health directory (Annuaire Santé), imported
//! from its public extracts one generation at a time, serving sectoral claims to identity
//! providers. See README.md for the whole picture and ARCHITECTURE.md for how the parts meet.

pub mod allocator;
pub mod claims;
pub mod commands;
pub mod config;
pub mod details;
pub mod download;
pub mod export;
pub mod extract;
pub mod http;
pub mod import;
pub mod jobs;
pub mod keys;
pub mod logging;
pub mod national_id;
pub mod priority;
pub mod progress;
// A benchmark and test tool, not part of the service: `--no-default-features` leaves it out.
#[cfg(feature = "gen")]
pub mod samplegen;
pub mod scratch;
pub mod search;
pub mod server;
pub mod settings;
pub mod signing;
pub mod snapshot;
pub mod store;

/// TLS (for `DATABASE_URL` servers and downloads) uses rustls with the *ring* provider;
/// it must be chosen once per process before the first TLS connection.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
