//! Signed claims for relying parties (OIDC Core §5.6.2 aggregated claims): the claims
//! document plus `iss`, `sub`, `iat`, `exp` and `generation`, as a compact JWS (ES256, `kid`
//! in the header) that an IdP puts as is into `_claim_sources` and a relying party checks
//! against `/.well-known/jwks.json`.
//!
//! Keys live in Postgres (`store::signing_keys`), sealed at rest (`seal`), so that every
//! replica signs with the same key; each server holds them in memory, parsed once, and
//! reloads them when the list changes. A key this replica cannot open is still published
//! (its public half is stored in clear) and never signs here. The JWS is framed here over
//! ring's ECDSA with the key pair kept: jsonwebtoken's `encode` parses the PKCS#8 document
//! and derives the key pair again for every signature, about twice the cost, on the claims
//! path.

pub mod rotation;
pub mod seal;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

pub use seal::{SealError, Sealing};

use crate::store::signing_keys::{self, NewKey, SigningKeyRow};

/// A superseded key stays in the JWKS this long after its tokens' lifetime: clocks differ.
const JWKS_MARGIN_SECONDS: i64 = 60;

#[derive(Debug, Clone)]
pub struct SigningSettings {
    /// `iss` of every signed document (ANNUAIRE_ISSUER).
    pub issuer: String,
    /// `exp - iat`.
    pub ttl: Duration,
    pub sealing: Sealing,
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    #[error("cannot generate a P-256 key")]
    Generate,
    #[error("cannot store the new key: {0}")]
    Seal(SealError),
    #[error("the claims document is not a JSON object")]
    NotAnObject,
    #[error("the signature failed")]
    Signature,
    /// Nothing loaded yet, or no loaded key this replica can open.
    #[error("no signing key this replica can open is loaded")]
    NotLoaded,
}

/// Why this replica cannot sign with a stored key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("it is not a P-256 key")]
    NotP256,
}

/// A stored key this replica cannot open, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unopenable {
    pub kid: String,
    pub why: KeyProblem,
}

/// Whether signed claims work here, for `/readyz` and the doctor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningState {
    Ready,
    /// The keys were not read yet.
    Loading,
    /// A stored key does not open here (the newest such): it never signs here, and a
    /// rotation is refused until it is retired or the right secret is set.
    Unusable(Unopenable),
}

impl std::fmt::Display for SigningState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigningState::Ready => f.write_str("ready"),
            SigningState::Loading => f.write_str("loading"),
            SigningState::Unusable(Unopenable { kid, why }) => write!(f, "unusable ({kid}: {why})"),
        }
    }
}

/// The key pair of `row`, if `sealing` opens it.
fn open(sealing: &Sealing, row: &SigningKeyRow, rng: &SystemRandom) -> Result<EcdsaKeyPair, KeyProblem> {
    let pkcs8 = sealing.open(&row.kid, &row.private_key, row.sealed)?;
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, rng).map_err(|_| KeyProblem::NotP256)
}

/// The keys of `rows` that `sealing` cannot open, newest activation first.
pub fn unopenable(sealing: &Sealing, rows: &[SigningKeyRow]) -> Vec<Unopenable> {
    let rng = SystemRandom::new();
    rows.iter()
        .rev()
        .filter_map(|row| {
            open(sealing, row, &rng).err().map(|why| Unopenable {
                kid: row.kid.clone(),
                why,
            })
        })
        .collect()
}

/// One key as a server holds it.
struct HeldKey {
    kid: String,
    /// Milliseconds since the epoch: a key that signs from 12:00:00.500 does not at 12:00:00.
    activates_at: i64,
    jwk: Value,
    /// What signs, or why this replica cannot.
    opened: Result<OpenedKey, KeyProblem>,
}

struct OpenedKey {
    pair: EcdsaKeyPair,
    /// `base64url({"alg":"ES256","kid":…,"typ":"JWT"})`, rendered once.
    header: String,
}

#[derive(Default)]
struct Held {
    /// In activation order; empty until the store was read (it always holds one by then).
    keys: Vec<HeldKey>,
}

impl Held {
    /// The key that signs at `now` (milliseconds): the last activated that opens here. A
    /// newer one sealed under another secret must not stop this replica from signing.
    fn signing(&self, now: i64) -> Option<(&HeldKey, &OpenedKey)> {
        self.keys
            .iter()
            .rev()
            .filter(|k| k.activates_at <= now)
            .find_map(|k| k.opened.as_ref().ok().map(|opened| (k, opened)))
    }
}

/// A signed claims document.
#[derive(Debug, Clone)]
pub struct SignedDocument {
    /// The compact JWS.
    pub jws: String,
    /// Its `exp`, in seconds since the epoch: what its entity tag carries.
    pub exp: i64,
}

/// Signs claims documents with the current key; publishes the keys a relying party needs.
pub struct Signer {
    pub settings: SigningSettings,
    /// `iss` as a JSON string, rendered once.
    issuer_json: String,
    held: ArcSwap<Held>,
    rng: SystemRandom,
}

impl Signer {
    pub fn new(settings: SigningSettings) -> Signer {
        Signer {
            issuer_json: Value::String(settings.issuer.clone()).to_string(),
            settings,
            held: ArcSwap::default(),
            rng: SystemRandom::new(),
        }
    }

    /// Creates the first key if there is none (one across replicas), then loads the keys
    /// when their list differs from the one held. Called on every poll: a store that has
    /// keys costs one query of their ids. A key that does not open is held unopened.
    pub async fn reload(&self, pool: &PgPool) -> Result<(), SigningError> {
        let mut kids = signing_keys::kids(pool).await?;
        if kids.is_empty() {
            // Made before the lock is taken, used only if no replica made one first.
            let key = generate(&self.settings.sealing)?;
            if signing_keys::ensure_one(pool, key).await? {
                tracing::info!("first claims signing key created");
            }
            kids = signing_keys::kids(pool).await?;
        }
        let held = self.held.load();
        if held
            .keys
            .iter()
            .map(|k| k.kid.as_str())
            .eq(kids.iter().map(String::as_str))
        {
            return Ok(());
        }
        let rows = signing_keys::list(pool).await?;
        let keys: Vec<HeldKey> = rows.iter().map(|row| self.hold(row)).collect();
        for key in &keys {
            if let Err(why) = &key.opened {
                tracing::error!(kid = %key.kid, %why, "claims signing key unusable here: published, never signs here");
            }
        }
        tracing::info!(keys = keys.len(), "claims signing keys loaded");
        self.held.store(Arc::new(Held { keys }));
        Ok(())
    }

    fn hold(&self, row: &SigningKeyRow) -> HeldKey {
        let header = json!({"alg": "ES256", "kid": row.kid, "typ": "JWT"});
        HeldKey {
            kid: row.kid.clone(),
            activates_at: row.activates_at.timestamp_millis(),
            jwk: row.public_jwk.clone(),
            opened: open(&self.settings.sealing, row, &self.rng).map(|pair| OpenedKey {
                pair,
                header: URL_SAFE_NO_PAD.encode(header.to_string()),
            }),
        }
    }

    pub fn loaded(&self) -> bool {
        !self.held.load().keys.is_empty()
    }

    /// `ready`, `loading`, or the newest key that does not open here.
    pub fn state(&self) -> SigningState {
        let held = self.held.load();
        let unusable = held.keys.iter().rev().find_map(|k| {
            k.opened.as_ref().err().map(|why| Unopenable {
                kid: k.kid.clone(),
                why: why.clone(),
            })
        });
        match unusable {
            Some(unopenable) => SigningState::Unusable(unopenable),
            None if held.keys.is_empty() => SigningState::Loading,
            None => SigningState::Ready,
        }
    }

    /// Whether a token of this signer that expires at `exp` may be revalidated at `now`
    /// (seconds since the epoch): while more than half its lifetime is ahead, so that an
    /// IdP never passes on a token about to expire, and never for a tag that promises more
    /// than a lifetime (not one of ours: a client's own invention).
    pub fn revalidates(&self, exp: i64, now: i64) -> bool {
        let ttl = self.settings.ttl.as_secs() as i64;
        exp <= now + ttl && 2 * (exp - now) > ttl
    }

    /// The compact JWS of `document` (a claims document, a JSON object) for `subject`.
    pub fn sign(&self, subject: &str, generation: i64, document: &[u8]) -> Result<SignedDocument, SigningError> {
        let now_ms = Utc::now().timestamp_millis();
        let now = now_ms.div_euclid(1000);
        let held = self.held.load();
        let (_, key) = held.signing(now_ms).ok_or(SigningError::NotLoaded)?;
        // The registered claims first, then the document's members as they are stored: no
        // parse of the document, which is a JSON object by construction.
        let members = document.strip_prefix(b"{").ok_or(SigningError::NotAnObject)?;
        let exp = now + self.settings.ttl.as_secs() as i64;
        let mut payload = format!(
            "{{\"iss\":{},\"sub\":{},\"iat\":{now},\"exp\":{exp},\"generation\":{generation}",
            self.issuer_json,
            Value::String(subject.to_owned()),
        )
        .into_bytes();
        if members != b"}" {
            payload.push(b',');
        }
        payload.extend_from_slice(members);
        let mut jws = String::with_capacity(key.header.len() + payload.len() * 4 / 3 + 100);
        jws.push_str(&key.header);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);
        let signature = key
            .pair
            .sign(&self.rng, jws.as_bytes())
            .map_err(|_| SigningError::Signature)?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jws);
        Ok(SignedDocument { jws, exp })
    }

    /// The keys a relying party may meet, whether this replica opens them or not (another
    /// replica may): those not active yet (published before they sign), the one signing
    /// here, and those superseded less than a token's lifetime ago.
    pub fn jwks(&self) -> Value {
        self.jwks_at(Utc::now().timestamp_millis())
    }

    /// The JWKS at `now`, in milliseconds.
    fn jwks_at(&self, now: i64) -> Value {
        let held = self.held.load();
        let ttl = (self.settings.ttl.as_secs() as i64 + JWKS_MARGIN_SECONDS) * 1000;
        // Kept whatever newer key activated: a newer one this replica cannot open does not
        // supersede it here.
        let signing = held.signing(now).map(|(key, _)| key.kid.as_str());
        let keys: Vec<&Value> = held
            .keys
            .iter()
            .enumerate()
            .filter(|(i, key)| {
                // Superseded when the next key activated; kept while its tokens may live.
                let superseded = held.keys[i + 1..]
                    .iter()
                    .map(|next| next.activates_at)
                    .find(|&at| at <= now);
                key.activates_at > now
                    || signing == Some(key.kid.as_str())
                    || superseded.is_none_or(|at| now < at + ttl)
            })
            .map(|(_, key)| &key.jwk)
            .collect();
        json!({ "keys": keys })
    }
}

/// A new P-256 key: its RFC 7638 thumbprint as kid, its public JWK, and its private key
/// stored as `sealing` says.
pub fn generate(sealing: &Sealing) -> Result<NewKey, SigningError> {
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|_| SigningError::Generate)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| SigningError::Generate)?;
    // The uncompressed point: 0x04, then x and y, 32 bytes each.
    let point = pair.public_key().as_ref();
    let (x, y) = (
        URL_SAFE_NO_PAD.encode(&point[1..33]),
        URL_SAFE_NO_PAD.encode(&point[33..65]),
    );
    // RFC 7638: the required members, in lexicographic order, no spaces.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let public_jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"});
    let private_key = sealing.seal(&kid, pkcs8.as_ref()).map_err(SigningError::Seal)?;
    Ok(NewKey {
        kid,
        public_jwk,
        private_key,
        sealed: sealing.seals(),
    })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn signer_with(activations: &[i64]) -> (Signer, Vec<String>) {
        let sealing = Sealing::from_secret(SECRET).unwrap();
        let keys: Vec<(i64, &Sealing)> = activations.iter().map(|&at| (at, &sealing)).collect();
        signer_sealed(&keys)
    }

    /// A signer under `SECRET` holding keys activated at each instant, sealed as given.
    fn signer_sealed(activations: &[(i64, &Sealing)]) -> (Signer, Vec<String>) {
        let signer = Signer::new(SigningSettings {
            issuer: "https://annuaire.test".to_owned(),
            ttl: Duration::from_secs(300),
            sealing: Sealing::from_secret(SECRET).unwrap(),
        });
        let mut keys = Vec::new();
        for &(at, sealing) in activations {
            let key = generate(sealing).unwrap();
            let row = SigningKeyRow {
                kid: key.kid.clone(),
                public_jwk: key.public_jwk.clone(),
                private_key: key.private_key.clone(),
                sealed: key.sealed,
                created_at: Utc::now(),
                activates_at: DateTime::from_timestamp_millis(at).unwrap(),
            };
            keys.push(signer.hold(&row));
        }
        let kids = keys.iter().map(|k| k.kid.clone()).collect();
        signer.held.store(Arc::new(Held { keys }));
        (signer, kids)
    }

    fn published(signer: &Signer, now: i64) -> Vec<String> {
        signer.jwks_at(now)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_rotated_key_is_published_first_and_the_old_one_kept_while_its_tokens_live() {
        // Key 0 since t=0; key 1 added at t=1000 to sign from t=4600.5.
        let (signer, kids) = signer_with(&[0, 4_600_500]);
        assert_eq!(
            published(&signer, 1_000_000),
            kids,
            "the new key is published before it signs"
        );
        let held = signer.held.load();
        let kid = |now| held.signing(now).unwrap().0.kid.clone();
        assert_eq!(kid(1_000_000), kids[0]);
        assert_eq!(kid(4_600_499), kids[0], "not a millisecond early");
        assert_eq!(kid(4_600_500), kids[1]);
        // Tokens of key 0 live 300 s after it stops signing (and a minute for clocks).
        assert_eq!(published(&signer, 4_600_500 + 359_999), kids);
        assert_eq!(published(&signer, 4_600_500 + 360_000), vec![kids[1].clone()]);
    }

    #[test]
    fn the_payload_is_the_document_after_the_registered_claims() {
        let (signer, kids) = signer_with(&[0]);
        let jws = signer
            .sign(
                "810003456125",
                7,
                br#"{"SubjectNameID":"810003456125","given_name":"H\u00e9l\u00e8ne"}"#,
            )
            .unwrap();
        let exp = jws.exp;
        let jws = jws.jws;
        let parts: Vec<&str> = jws.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "ES256", "kid": kids[0], "typ": "JWT"}));
        let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload["iss"], "https://annuaire.test");
        assert_eq!(payload["sub"], "810003456125");
        assert_eq!(payload["generation"], 7);
        assert_eq!(payload["given_name"], "Hélène");
        assert_eq!(payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(), 300);
        assert_eq!(payload["exp"], exp, "the expiry an entity tag carries is the token's");
        // A fixed-size P-256 signature (r and s, 32 bytes each), of header.payload, under
        // the published key.
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert_eq!(signature.len(), 64);
        let jwk = &signer.jwks()["keys"][0];
        let mut point = vec![4u8];
        for coordinate in ["x", "y"] {
            point.extend(URL_SAFE_NO_PAD.decode(jwk[coordinate].as_str().unwrap()).unwrap());
        }
        let verifier = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point);
        let signing_input = format!("{}.{}", parts[0], parts[1]);
        verifier
            .verify(signing_input.as_bytes(), &signature)
            .expect("the signature verifies");
        assert!(verifier.verify(b"another.input", &signature).is_err());
        // An empty document still makes a JSON object.
        let jws = signer.sign("810003456125", 7, b"{}").unwrap().jws;
        let payload = jws.split('.').nth(1).unwrap();
        assert!(serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(payload).unwrap()).is_ok());
    }

    #[test]
    fn a_token_is_revalidated_while_more_than_half_its_lifetime_is_ahead() {
        // A lifetime of 300 s; a token signed at 1000 expires at 1300.
        let (signer, _) = signer_with(&[0]);
        assert!(signer.revalidates(1300, 1000));
        assert!(signer.revalidates(1300, 1149));
        assert!(!signer.revalidates(1300, 1150), "half its lifetime left: a new token");
        assert!(!signer.revalidates(1300, 1300), "expired");
        assert!(!signer.revalidates(1300, 2000));
        assert!(
            !signer.revalidates(1301, 1000),
            "more than a lifetime: not a tag of ours"
        );
    }

    #[test]
    fn a_newer_key_sealed_under_another_secret_is_published_and_skipped() {
        let ours = Sealing::from_secret(SECRET).unwrap();
        let theirs = Sealing::from_secret("a mistyped secret of thirty-two characters").unwrap();
        let (signer, kids) = signer_sealed(&[(0, &ours), (1_000, &theirs)]);
        let now = 1_000_000_000;
        assert_eq!(
            published(&signer, now),
            kids,
            "both published: the one signing here is not superseded by one it cannot open"
        );
        let jws = signer.sign("810003456125", 1, b"{}").unwrap().jws;
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jws.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["kid"], kids[0].as_str(), "signed with the newest key that opens");
        assert_eq!(
            signer.state().to_string(),
            format!(
                "unusable ({}: it was not sealed under this ANNUAIRE_SIGNING_KEY_SECRET)",
                kids[1]
            )
        );

        // No key that opens: nothing signs, everything is still published.
        let (signer, kids) = signer_sealed(&[(0, &theirs)]);
        assert!(matches!(
            signer.sign("810003456125", 1, b"{}"),
            Err(SigningError::NotLoaded)
        ));
        assert_eq!(published(&signer, now), kids);
        assert!(matches!(signer.state(), SigningState::Unusable(_)));
        assert_eq!(signer_with(&[0]).0.state(), SigningState::Ready);
    }
}
