//! Private signing keys at rest: AES-256-GCM under a key derived from
//! `ANNUAIRE_SIGNING_KEY_SECRET` (SHA-256 of the secret, which must be long and random), the
//! kid as associated data (a sealed key moved to another row does not open). Or, with the
//! explicit development flag, stored as they are.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// The fewest characters a sealing secret may have.
pub const MIN_SECRET_CHARS: usize = 32;

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
    pub fn seal(&self, kid: &str, private_key: &[u8]) -> Result<Vec<u8>, String> {
        let Sealing::Secret(key) = self else {
            return Ok(private_key.to_vec());
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "no randomness".to_owned())?;
        let mut sealed = private_key.to_vec();
        cipher(key)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| "cannot seal the key".to_owned())?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        Ok(stored)
    }

    /// The private key of `kid` from its stored form.
    pub fn open(&self, kid: &str, stored: &[u8], sealed: bool) -> Result<Vec<u8>, String> {
        match (self, sealed) {
            (_, false) => Ok(stored.to_vec()),
            (Sealing::Unsealed, true) => Err(format!(
                "signing key {kid} is sealed: set ANNUAIRE_SIGNING_KEY_SECRET to open it"
            )),
            (Sealing::Secret(key), true) => {
                let wrong = || format!("signing key {kid} does not open with this ANNUAIRE_SIGNING_KEY_SECRET");
                if stored.len() < NONCE_LEN {
                    return Err(wrong());
                }
                let (nonce, sealed) = stored.split_at(NONCE_LEN);
                let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
                let mut opened = sealed.to_vec();
                let plain = cipher(key)
                    .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut opened)
                    .map_err(|_| wrong())?;
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
        assert!(sealing.open("kid-2", &stored, true).is_err(), "another row's kid");
        let other = Sealing::from_secret("fedcba9876543210fedcba9876543210").unwrap();
        assert!(
            other
                .open("kid-1", &stored, true)
                .unwrap_err()
                .contains("does not open")
        );
        assert!(
            Sealing::Unsealed
                .open("kid-1", &stored, true)
                .unwrap_err()
                .contains("is sealed")
        );
        assert!(Sealing::from_secret("short").is_err());
        assert_eq!(format!("{sealing:?}"), "Sealing::Secret(..)");
    }
}
