//! The key of a professional: `Identification nationale PP`, i.e. the identifier type
//! followed by the identifier (`8` + 11-digit RPPS, `0` + 9-character ADELI), and its
//! packed form, the compact integer key the diff and the claims snapshot index by.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NationalId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "malformed identifier {0:?}: expected a national id (8 + 11-digit RPPS, or 0 + 9-character ADELI), a bare RPPS (11 digits) or a bare ADELI (9 characters)"
)]
pub struct MalformedId(pub String);

impl NationalId {
    /// Accepts a national id, or a bare RPPS (11 digits, prefixed `8`) or bare ADELI
    /// (9 characters, prefixed `0`), as the claims lookups do.
    pub fn parse(input: &str) -> Result<NationalId, MalformedId> {
        let id = input.trim();
        let candidate = match id.len() {
            11 if id.bytes().all(|b| b.is_ascii_digit()) => format!("8{id}"),
            9 if id.bytes().all(|b| b.is_ascii_alphanumeric()) => format!("0{id}"),
            _ => id.to_owned(),
        };
        if is_national_id(&candidate) {
            Ok(NationalId(candidate))
        } else {
            Err(MalformedId(input.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `8` (RPPS) or `0` (ADELI).
    pub fn id_type(&self) -> &str {
        &self.0[..1]
    }
}

impl fmt::Display for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The shape of a national id. The RPPS Luhn digit is deliberately not checked: test
/// identities fail it, and the shape is what keys must agree on.
pub fn is_national_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    match bytes.first() {
        Some(b'8') => bytes.len() == 12 && bytes[1..].iter().all(u8::is_ascii_digit),
        Some(b'0') => bytes.len() == 10 && bytes[1..].iter().all(u8::is_ascii_alphanumeric),
        _ => false,
    }
}

/// A national id packed into an integer (at most 16 bytes, zero-padded; ids are at most 12
/// ASCII bytes): a map key of two words instead of a heap string, for the diff and the
/// claims snapshot. Its first byte is the identifier type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackedId(u128);

impl PackedId {
    /// Packs the bytes of a national id (as read from an extract or the store).
    pub fn of(national_id: &[u8]) -> PackedId {
        PackedId(
            national_id
                .iter()
                .take(16)
                .enumerate()
                .fold(0u128, |k, (i, b)| k | (u128::from(*b) << (8 * (15 - i)))),
        )
    }

    /// The identifier type, its first byte: `b'8'` (RPPS) or `b'0'` (ADELI).
    pub fn id_type(self) -> u8 {
        self.0.to_be_bytes()[0]
    }

    /// The national id this key was packed from.
    pub fn unpack(self) -> String {
        self.0
            .to_be_bytes()
            .iter()
            .take_while(|b| **b != 0)
            .map(|b| char::from(*b))
            .collect()
    }
}

/// A map keyed by packed national ids: the diff's and the snapshot's millions of entries.
/// foldhash (seeded per process) instead of SipHash: the keys come from the publisher's
/// checked files, never from a caller choosing collisions, and SipHash cost more than the
/// probe itself.
pub type IdMap<V> = std::collections::HashMap<PackedId, V, foldhash::fast::RandomState>;

impl NationalId {
    pub fn packed(&self) -> PackedId {
        PackedId::of(self.0.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_national_ids() {
        for id in ["810001234565", "0012600631", "02A0012345"] {
            assert_eq!(PackedId::of(id.as_bytes()).unpack(), id);
        }
        assert_ne!(PackedId::of(b"810001234565"), PackedId::of(b"810001234573"));
        assert_eq!(PackedId::of(b"0012600631").id_type(), b'0');
        assert_eq!(
            NationalId::parse("10001234565").unwrap().packed(),
            PackedId::of(b"810001234565")
        );
    }

    #[test]
    fn accepts_national_and_bare_identifiers() {
        assert_eq!(NationalId::parse("810001234565").unwrap().as_str(), "810001234565");
        assert_eq!(NationalId::parse("10001234565").unwrap().as_str(), "810001234565");
        assert_eq!(NationalId::parse("012600631").unwrap().as_str(), "0012600631");
        assert_eq!(NationalId::parse("0012600631").unwrap().id_type(), "0");
        assert_eq!(NationalId::parse("02A0012345").unwrap().as_str(), "02A0012345");
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in ["", "8100012345", "910001234565", "8100012345x5", "abc", "0012-00631"] {
            assert!(NationalId::parse(bad).is_err(), "{bad}");
        }
    }
}
