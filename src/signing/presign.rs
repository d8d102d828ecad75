//! ECDSA presignatures: the half of a P-256 signature that does not depend on the message
//! or the key, made ahead of time on a low-priority thread, so that a signed claims answer
//! costs the claims path a hash and two scalar products instead of a whole signature.
//!
//! An ECDSA signature of hash `z` under key `d` is `(r, s)` with `r = x(k·G) mod n` and
//! `s = k⁻¹ (z + r·d) mod n` for a fresh random nonce `k`. The point multiplication and the
//! inversion (all but a few hundred nanoseconds of a signature: measured with perf, ring's
//! whole signature was 20 µs of this route's 45 µs of server CPU) depend on `k` alone, so
//! `(r, k⁻¹)` is drawn here beforehand; the claims path finishes it with `d` and `z`.
//! The signature is the ordinary ES256 one: any JOSE library verifies it.
//!
//! No crate offers this split, so the last step is written here, over `p256`'s
//! constant-time scalar arithmetic. What keeps it safe:
//! - `k` comes from the operating system's generator (getrandom), never from the message;
//! - each presignature is moved out of the pool by the one signature that uses it, and
//!   wiped on drop: a nonce used twice would give the key away;
//! - presignatures are secret like the key (`k⁻¹` and a signature reveal `d`): they stay
//!   in this process's memory, as the key does.
//!
//! When the pool is empty (a burst beyond what the thread refills), the caller signs whole
//! with ring, as before: the pool shortens the path, it is never needed for an answer.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::zeroize::Zeroize;
use p256::elliptic_curve::{Field, Generate, Group};
use p256::{FieldBytes, NonZeroScalar, ProjectivePoint, Scalar};

/// Presignatures held ready: a burst of this many signed answers finds each one ready.
/// 64 bytes each.
const CAPACITY: usize = 4096;
/// The refilling thread wakes when the pool falls below this.
const LOW_WATER: usize = CAPACITY * 3 / 4;
/// Made between two looks at the pool, outside its lock.
const BATCH: usize = 64;

/// `(r, k⁻¹)` of one future signature.
struct Presignature {
    r: Scalar,
    k_inv: Scalar,
}

impl Drop for Presignature {
    fn drop(&mut self) {
        self.r.zeroize();
        self.k_inv.zeroize();
    }
}

impl Presignature {
    /// A fresh one; `None` if the system's generator fails (the caller then signs whole).
    fn draw() -> Option<Presignature> {
        let k = NonZeroScalar::try_generate().ok()?;
        let point = ProjectivePoint::mul_by_generator(&k).to_affine();
        let r = <Scalar as Reduce<FieldBytes>>::reduce(&point.x());
        if bool::from(r.is_zero()) {
            return None;
        }
        Some(Presignature {
            r,
            k_inv: *<NonZeroScalar as Invert>::invert(&k),
        })
    }

    /// The fixed-size ES256 signature (`r ‖ s`, 32 bytes each, big-endian) of the SHA-256
    /// `digest` under `key`; `None` in the negligible case `s = 0`.
    fn finish(self, key: &NonZeroScalar, digest: &[u8; 32]) -> Option<[u8; 64]> {
        let z = <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(*digest));
        let s = self.k_inv * (z + self.r * **key);
        if bool::from(s.is_zero()) {
            return None;
        }
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&self.r.to_bytes());
        signature[32..].copy_from_slice(&s.to_bytes());
        Some(signature)
    }
}

struct Pool {
    ready: Mutex<Vec<Presignature>>,
    /// Signalled when the pool falls below `LOW_WATER`.
    low: Condvar,
}

/// The pool, and its refilling thread (which ends when the pool is dropped).
pub struct Presignatures {
    pool: Arc<Pool>,
}

impl Presignatures {
    /// An empty pool and the thread that fills it.
    pub fn start() -> Presignatures {
        let pool = Arc::new(Pool {
            ready: Mutex::new(Vec::with_capacity(CAPACITY)),
            low: Condvar::new(),
        });
        let weak = Arc::downgrade(&pool);
        let spawned = std::thread::Builder::new()
            .name("claims-presign".to_owned())
            .spawn(move || refill(weak));
        if let Err(error) = spawned {
            // Signatures are then made whole: slower, still correct.
            tracing::warn!(%error, "cannot start the presignature thread; claims are signed whole");
        }
        Presignatures { pool }
    }

    /// The signature of `digest` under `key` from a presignature, or `None` when none is
    /// ready (the caller signs whole).
    pub fn sign(&self, key: &NonZeroScalar, digest: &[u8; 32]) -> Option<[u8; 64]> {
        let presignature = {
            let mut ready = self.pool.ready.lock().ok()?;
            let taken = ready.pop();
            if ready.len() < LOW_WATER {
                self.pool.low.notify_one();
            }
            taken
        }?;
        presignature.finish(key, digest)
    }

    /// How many are ready (for tests).
    #[cfg(test)]
    fn ready(&self) -> usize {
        self.pool.ready.lock().map(|ready| ready.len()).unwrap_or(0)
    }
}

/// Fills the pool up to `CAPACITY` whenever it falls below `LOW_WATER`, at the lowest
/// priority: this work only uses time the requests leave.
fn refill(pool: Weak<Pool>) {
    crate::priority::lower(19);
    loop {
        let Some(strong) = pool.upgrade() else { return };
        let missing = {
            let Ok(ready) = strong.ready.lock() else { return };
            // A second's timeout: the thread notices a dropped pool.
            let Ok((ready, _)) = strong
                .low
                .wait_timeout_while(ready, Duration::from_secs(1), |ready| ready.len() >= LOW_WATER)
            else {
                return;
            };
            CAPACITY.saturating_sub(ready.len())
        };
        drop(strong);
        let mut made = 0;
        while made < missing {
            let batch: Vec<Presignature> = (0..BATCH.min(missing - made))
                .filter_map(|_| Presignature::draw())
                .collect();
            if batch.is_empty() {
                // The system's generator failed: try again later, sign whole meanwhile.
                std::thread::sleep(Duration::from_secs(1));
                break;
            }
            made += batch.len();
            let Some(strong) = pool.upgrade() else { return };
            let Ok(mut ready) = strong.ready.lock() else { return };
            let room = CAPACITY.saturating_sub(ready.len());
            ready.extend(batch.into_iter().take(room));
        }
    }
}

#[cfg(test)]
mod tests {
    use p256::pkcs8::DecodePrivateKey;
    use ring::rand::SystemRandom;
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
    };

    use super::*;

    #[test]
    fn presigned_signatures_verify_with_another_implementation_and_never_repeat_a_nonce() {
        // A key made and read as the signer's are: ring's PKCS#8, its scalar read by p256.
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let key = NonZeroScalar::from(&p256::SecretKey::from_pkcs8_der(pkcs8.as_ref()).unwrap());
        let verifier = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref().to_vec());
        let presignatures = Presignatures::start();
        let mut waited = 0;
        while presignatures.ready() < 200 && waited < 300 {
            std::thread::sleep(Duration::from_millis(10));
            waited += 1;
        }
        let mut rs = std::collections::HashSet::new();
        for i in 0..200 {
            let message = format!("header.payload-{i}");
            let digest: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, message.as_bytes())
                .as_ref()
                .try_into()
                .unwrap();
            let signature = presignatures.sign(&key, &digest).expect("a presignature is ready");
            verifier
                .verify(message.as_bytes(), &signature)
                .expect("ring verifies the presigned signature");
            assert!(
                verifier.verify(b"another message", &signature).is_err(),
                "the signature is of its message only"
            );
            assert!(rs.insert(signature[..32].to_vec()), "a nonce is never used twice");
        }
    }

    #[test]
    fn an_empty_pool_says_so_and_the_caller_signs_whole() {
        let presignatures = Presignatures {
            pool: Arc::new(Pool {
                ready: Mutex::new(Vec::new()),
                low: Condvar::new(),
            }),
        };
        assert!(presignatures.sign(&NonZeroScalar::generate(), &[7; 32]).is_none());
    }
}
