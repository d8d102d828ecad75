//! Private signing keys at rest: AES-256-GCM under a key derived from
//! `ANNUAIRE_SIGNING_KEY_SECRET` (SHA-256 of the secret, which must be long and random), the
//! kid as associated data (a sealed key moved to another row does not open). Or, with the
//! explicit development flag, stored as they are.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// The fewest characters a sealing secret may have.
pub const MIN_SECRET_CHARS: usize = 32;

/// Why a private key cannot be sealed or opened; said of one key ("signing key {kid}: …").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("it is sealed and no ANNUAIRE_SIGNING_KEY_SECRET is set")]
    NoSecret,
    /// A wrong secret and a tampered row look alike to AES-GCM.
    #[error("it was not sealed under this ANNUAIRE_SIGNING_KEY_SECRET")]
    WrongSecret,
    #[error("no randomness for a nonce")]
    NoRandomness,
    #[error("it cannot be sealed")]
    Seal,
}

/// How private keys are kept in Postgres.
#[derive(Clone)]
pub enum Sealing {
    /// AES-256-GCM under this key.
    Secret([u8; 32]),
    /// As they are: development only, asked for explicitly.
    Unsealed,
}

impl std::fmt::Debug for Sealing {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sealing::Secret(_) => "Sealing::Secret(..)",
            Sealing::Unsealed => "Sealing::Unsealed",
        })
    }
}

impl Sealing {
    pub fn from_secret(secret: &str) -> Result<Sealing, String> {
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(format!(
                "ANNUAIRE_SIGNING_KEY_SECRET must be {MIN_SECRET_CHARS} characters at least (random)"
            ));
        }
        Ok(Sealing::Secret(Sha256::digest(secret.as_bytes()).into()))
    }

    pub fn seals(&self) -> bool {
        matches!(self, Sealing::Secret(_))
    }

    /// The stored form of `private_key` for `kid`.
    pub fn seal(&self, kid: &str, private_key: &[u8]) -> Result<Vec<u8>, SealError> {
        let Sealing::Secret(key) = self else {
            return Ok(private_key.to_vec());
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::NoRandomness)?;
        let mut sealed = private_key.to_vec();
        cipher(key)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SealError::Seal)?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        Ok(stored)
    }

    /// The private key of `kid` from its stored form.
    pub fn open(&self, kid: &str, stored: &[u8], sealed: bool) -> Result<Vec<u8>, SealError> {
        match (self, sealed) {
            (_, false) => Ok(stored.to_vec()),
            (Sealing::Unsealed, true) => Err(SealError::NoSecret),
            (Sealing::Secret(key), true) => {
                if stored.len() < NONCE_LEN {
                    return Err(SealError::WrongSecret);
                }
                let (nonce, sealed) = stored.split_at(NONCE_LEN);
                let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::WrongSecret)?;
                let mut opened = sealed.to_vec();
                let plain = cipher(key)
                    .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut opened)
                    .map_err(|_| SealError::WrongSecret)?;
                Ok(plain.to_vec())
            }
        }
    }
}

fn cipher(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_secret_and_kid() {
        let sealing = Sealing::from_secret("0123456789abcdef0123456789abcdef").unwrap();
        let stored = sealing.seal("kid-1", b"private").unwrap();
        assert_ne!(&stored[NONCE_LEN..NONCE_LEN + 7], b"private");
        assert_eq!(sealing.open("kid-1", &stored, true).unwrap(), b"private");
        assert_eq!(
            sealing.open("kid-2", &stored, true),
            Err(SealError::WrongSecret),
            "another row's kid"
        );
        let other = Sealing::from_secret("fedcba9876543210fedcba9876543210").unwrap();
        assert_eq!(other.open("kid-1", &stored, true), Err(SealError::WrongSecret));
        assert_eq!(Sealing::Unsealed.open("kid-1", &stored, true), Err(SealError::NoSecret));
        assert!(Sealing::from_secret("short").is_err());
        assert_eq!(format!("{sealing:?}"), "Sealing::Secret(..)");
    }
}
