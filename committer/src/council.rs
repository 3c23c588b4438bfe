//! The council's threshold key, on every L1: ZF's FROST over secp256k1 (RFC 9591, the crate
//! `frost-secp256k1`), with its distributed key generation, so that no one ever holds the
//! group's secret. The embedded L1 verifies its signatures with the crate; the rollup contract
//! verifies them with ecrecover (`contracts/src/FrostSecp256k1.sol`).
//!
//! [`CouncilKey`] is the group's public key as a genesis names it, [`CouncilSignature`] a
//! signature as an L1 call carries it. [`dkg`] runs the three DKG rounds for `n` members in one
//! process and [`sign`] both signing rounds (`keel council` runs the same calls member by
//! member, through files).

use std::{collections::BTreeMap, fmt};

pub use frost_secp256k1 as frost;
use frost_secp256k1::{
    keys::{dkg as rounds, KeyPackage, PublicKeyPackage},
    Identifier,
};
use keel_state::{
    encoding::{DecodeResult, Reader},
    Decode, DecodeError, Encode,
};

/// Bytes of a [`CouncilKey`]: a compressed secp256k1 point.
pub const COUNCIL_KEY_BYTES: usize = 33;
/// Bytes of a [`CouncilSignature`]: the commitment `R` (compressed) and the response `z`.
pub const COUNCIL_SIGNATURE_BYTES: usize = 65;

/// Why a council key or signature could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CouncilError {
    /// FROST refused (a bad threshold, a missing member, a share that does not verify).
    #[error("FROST: {0}")]
    Frost(#[from] frost::Error),
}

/// The council's group key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CouncilKey(frost::VerifyingKey);

impl CouncilKey {
    /// The group key of a DKG's public package.
    pub fn of(public: &PublicKeyPackage) -> Self {
        Self(*public.verifying_key())
    }

    /// The key inside.
    pub fn verifying_key(&self) -> &frost::VerifyingKey {
        &self.0
    }

    /// Its compressed encoding.
    pub fn to_bytes(&self) -> [u8; COUNCIL_KEY_BYTES] {
        let v = self
            .0
            .serialize()
            .expect("a verifying key always serializes");
        v.try_into()
            .expect("a compressed secp256k1 point is 33 bytes")
    }

    /// Whether `signature` is the council's over `message`.
    pub fn verify(&self, message: &[u8], signature: &CouncilSignature) -> bool {
        self.0.verify(message, &signature.0).is_ok()
    }
}

impl fmt::Debug for CouncilKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CouncilKey(0x{})", hex::encode(self.to_bytes()))
    }
}

impl Encode for CouncilKey {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
}

impl Decode for CouncilKey {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let at = r.position();
        let bytes = r.bytes(COUNCIL_KEY_BYTES)?;
        frost::VerifyingKey::deserialize(bytes)
            .map(Self)
            .map_err(|_| DecodeError::Invalid {
                what: "council key",
                at,
            })
    }
}

/// The council's signature over an action.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CouncilSignature(frost::Signature);

impl CouncilSignature {
    /// The signature inside.
    pub fn inner(&self) -> &frost::Signature {
        &self.0
    }

    /// Its encoding: `R` compressed, then `z`.
    pub fn to_bytes(&self) -> [u8; COUNCIL_SIGNATURE_BYTES] {
        let v = self.0.serialize().expect("a signature always serializes");
        v.try_into()
            .expect("a FROST(secp256k1) signature is 65 bytes")
    }
}

impl From<frost::Signature> for CouncilSignature {
    fn from(s: frost::Signature) -> Self {
        Self(s)
    }
}

impl fmt::Debug for CouncilSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CouncilSignature(0x{})", hex::encode(self.to_bytes()))
    }
}

impl Encode for CouncilSignature {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
}

impl Decode for CouncilSignature {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let at = r.position();
        let bytes = r.bytes(COUNCIL_SIGNATURE_BYTES)?;
        frost::Signature::deserialize(bytes)
            .map(Self)
            .map_err(|_| DecodeError::Invalid {
                what: "council signature",
                at,
            })
    }
}

macro_rules! hex_serde {
    ($t:ty, $what:literal) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&format!("0x{}", hex::encode(self.encode())))
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                let bytes = hex::decode(s.trim_start_matches("0x")).map_err(|e| {
                    serde::de::Error::custom(format!(concat!($what, " is not hex: {}"), e))
                })?;
                Self::decode(&bytes).map_err(|e| {
                    serde::de::Error::custom(format!(concat!("not a ", $what, ": {}"), e))
                })
            }
        }
    };
}

hex_serde!(CouncilKey, "council key");
hex_serde!(CouncilSignature, "council signature");

/// A `t`-of-`n` council from FROST's distributed key generation, run for every member in this
/// process (tests and devnets; a real council runs the rounds member by member): each member's
/// key package and the group's public package.
pub fn dkg(
    n: u16,
    t: u16,
    mut rng: impl rand_core::RngCore + rand_core::CryptoRng,
) -> Result<(BTreeMap<Identifier, KeyPackage>, PublicKeyPackage), CouncilError> {
    let ids: Vec<Identifier> = (1..=n)
        .map(Identifier::try_from)
        .collect::<Result<_, _>>()?;
    let mut secrets1 = BTreeMap::new();
    let mut round1 = BTreeMap::new();
    for id in &ids {
        let (secret, package) = rounds::part1(*id, n, t, &mut rng)?;
        secrets1.insert(*id, secret);
        round1.insert(*id, package);
    }
    let others = |me: &Identifier, all: &BTreeMap<Identifier, rounds::round1::Package>| {
        all.iter()
            .filter(|(id, _)| *id != me)
            .map(|(id, p)| (*id, p.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let mut secrets2 = BTreeMap::new();
    let mut round2: BTreeMap<Identifier, BTreeMap<Identifier, rounds::round2::Package>> =
        BTreeMap::new();
    for id in &ids {
        let secret = secrets1
            .remove(id)
            .expect("every member has a round 1 secret");
        let (secret, packages) = rounds::part2(secret, &others(id, &round1))?;
        secrets2.insert(*id, secret);
        for (to, package) in packages {
            round2.entry(to).or_default().insert(*id, package);
        }
    }
    let mut keys = BTreeMap::new();
    let mut public = None;
    for id in &ids {
        let received = round2.remove(id).unwrap_or_default();
        let (key, pubkeys) = rounds::part3(&secrets2[id], &others(id, &round1), &received)?;
        keys.insert(*id, key);
        public = Some(pubkeys);
    }
    Ok((keys, public.expect("n ≥ 1")))
}

/// Both signing rounds by the members `signers` over `message`, aggregated; FROST refuses fewer
/// than the threshold.
pub fn sign(
    keys: &BTreeMap<Identifier, KeyPackage>,
    public: &PublicKeyPackage,
    signers: &[Identifier],
    message: &[u8],
    mut rng: impl rand_core::RngCore + rand_core::CryptoRng,
) -> Result<CouncilSignature, CouncilError> {
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for id in signers {
        let key = keys.get(id).ok_or(frost::Error::UnknownIdentifier)?;
        let (n, c) = frost::round1::commit(key.signing_share(), &mut rng);
        nonces.insert(*id, n);
        commitments.insert(*id, c);
    }
    let package = frost::SigningPackage::new(commitments, message);
    let mut shares = BTreeMap::new();
    for id in signers {
        shares.insert(*id, frost::round2::sign(&package, &nonces[id], &keys[id])?);
    }
    Ok(CouncilSignature(frost::aggregate(
        &package, &shares, public,
    )?))
}

#[cfg(test)]
mod tests {
    use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

    use super::*;

    fn ids(xs: &[u16]) -> Vec<Identifier> {
        xs.iter()
            .map(|&i| Identifier::try_from(i).unwrap())
            .collect()
    }

    #[test]
    fn a_threshold_signs_and_nothing_else_verifies() {
        let (keys, public) = dkg(3, 2, ChaCha20Rng::seed_from_u64(1)).unwrap();
        let key = CouncilKey::of(&public);
        let sig = sign(
            &keys,
            &public,
            &ids(&[1, 3]),
            b"act",
            ChaCha20Rng::seed_from_u64(2),
        )
        .unwrap();
        assert!(key.verify(b"act", &sig));
        assert!(!key.verify(b"another action", &sig));
        let (_, other) = dkg(3, 2, ChaCha20Rng::seed_from_u64(3)).unwrap();
        assert!(!CouncilKey::of(&other).verify(b"act", &sig));
        // one member is not the threshold
        assert!(sign(
            &keys,
            &public,
            &ids(&[2]),
            b"act",
            ChaCha20Rng::seed_from_u64(4)
        )
        .is_err());
    }

    #[test]
    fn keys_and_signatures_round_trip_and_garbage_is_refused() {
        let (keys, public) = dkg(3, 2, ChaCha20Rng::seed_from_u64(5)).unwrap();
        let key = CouncilKey::of(&public);
        assert_eq!(CouncilKey::decode(&key.encode()).unwrap(), key);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<CouncilKey>(&json).unwrap(), key);
        let sig = sign(
            &keys,
            &public,
            &ids(&[1, 2]),
            b"m",
            ChaCha20Rng::seed_from_u64(6),
        )
        .unwrap();
        assert_eq!(CouncilSignature::decode(&sig.encode()).unwrap(), sig);
        assert!(CouncilKey::decode(&[7; COUNCIL_KEY_BYTES]).is_err());
        assert!(CouncilSignature::decode(&[0; COUNCIL_SIGNATURE_BYTES]).is_err());
        assert!(CouncilKey::decode(&key.encode()[..20]).is_err());
    }
}
