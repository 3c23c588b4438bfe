//! JSON and other serde formats for Keel's types (the `serde` feature): one definition for every
//! service and client.
//!
//! | type | as |
//! |---|---|
//! | [`AccountIndex`], [`BatchNumber`], [`Epoch`] | numbers |
//! | [`L1Address`] | `"0x…"`, 40 hex digits |
//! | [`PublicKey`], [`Signature`], [`QueueEntry`], [`SignedOp`], [`BatchOp`], [`MerkleProof`] | `"0x…"`: the hex of the canonical encoding |
//! | `Fr` (roots, hashes) | `"0x…"`, 64 digits, the integer big-endian, with `#[serde(with = "keel_state::wire::fr")]` |
//! | bytes (batch data, proofs) | `"0x…"`, with `#[serde(with = "keel_state::wire::bytes")]` |
//!
//! Decoding refuses what the canonical decoders refuse (a non-canonical field element, a point
//! off the curve, trailing bytes). `Fr` is halo2's type, so it takes a field attribute rather
//! than an impl.

use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    AccountIndex, BatchNumber, BatchOp, Decode, Encode, Epoch, L1Address, MerkleProof, PublicKey,
    QueueEntry, Signature, SignedOp,
};

/// `0x`-prefixed lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Hex, with or without `0x`.
pub fn from_hex(s: &str) -> Result<Vec<u8>, hex::FromHexError> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s))
}

fn hex_string<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    from_hex(&s).map_err(|e| D::Error::custom(format!("bad hex: {e}")))
}

macro_rules! as_number {
    ($($ty:ty: $inner:ty),*) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$inner>::deserialize(d).map(Self)
            }
        }
    )*};
}

as_number!(AccountIndex: u32, BatchNumber: u64, Epoch: u64);

macro_rules! as_encoding {
    ($($ty:ty),*) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&to_hex(&self.encode()))
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$ty>::decode(&hex_string(d)?).map_err(D::Error::custom)
            }
        }
    )*};
}

as_encoding!(
    PublicKey,
    Signature,
    QueueEntry,
    SignedOp,
    BatchOp,
    MerkleProof
);

impl Serialize for L1Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for L1Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        hex_string(d)?
            .try_into()
            .map(L1Address)
            .map_err(|_| D::Error::custom("an L1 address is 20 bytes (40 hex digits)"))
    }
}

/// A field element as [`fr_to_hex`](crate::field::fr_to_hex) prints it: for
/// `#[serde(with = "keel_state::wire::fr")]`.
pub mod fr {
    use super::*;
    use crate::{
        field::{fr_from_bytes, fr_to_hex, FR_BYTES},
        Fr,
    };

    /// Writes `0x` and the 64 big-endian hex digits.
    pub fn serialize<S: Serializer>(x: &Fr, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fr_to_hex(x))
    }

    /// Reads them, refusing a value not below the modulus.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fr, D::Error> {
        let mut b: [u8; FR_BYTES] = hex_string(d)?
            .try_into()
            .map_err(|_| D::Error::custom("a field element is 32 bytes"))?;
        b.reverse();
        fr_from_bytes(&b).ok_or_else(|| D::Error::custom("field element is not below the modulus"))
    }
}

/// Bytes as `0x` hex: for `#[serde(with = "keel_state::wire::bytes")]`.
pub mod bytes {
    use super::*;

    /// Writes `0x` and the hex.
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(b))
    }

    /// Reads hex, with or without `0x`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex_string(d)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{test_utils::key, Fr};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        batch: BatchNumber,
        epoch: Epoch,
        account: Option<AccountIndex>,
        to: L1Address,
        pk: PublicKey,
        keys: Vec<PublicKey>,
        #[serde(with = "fr")]
        root: Fr,
        #[serde(with = "bytes")]
        data: Vec<u8>,
    }

    fn sample(n: u64, data: Vec<u8>) -> Sample {
        Sample {
            batch: BatchNumber(n),
            epoch: Epoch(n + 1),
            account: n.is_multiple_of(2).then_some(AccountIndex(n as u32)),
            to: L1Address([n as u8; 20]),
            pk: key(n as u32).public_key(),
            keys: vec![key(1).public_key(), key(2).public_key()],
            root: Fr::from(n),
            data,
        }
    }

    proptest! {
        #[test]
        fn every_type_round_trips_through_json(n in 0u64..1_000, data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let s = sample(n, data);
            let json = serde_json::to_value(&s).unwrap();
            prop_assert_eq!(&json["batch"], &serde_json::json!(n));
            prop_assert!(json["to"].as_str().unwrap().len() == 42);
            prop_assert_eq!(serde_json::from_value::<Sample>(json).unwrap(), s);
        }
    }

    #[test]
    fn what_the_decoders_refuse_is_refused() {
        let good = serde_json::to_value(sample(2, vec![1])).unwrap();
        for (field, bad) in [
            ("to", serde_json::json!("0x1234")),
            ("pk", serde_json::json!("0xzz")),
            ("pk", serde_json::json!("0x00")),
            ("root", serde_json::json!(format!("0x{}", "ff".repeat(32)))),
            ("batch", serde_json::json!(-1)),
            ("data", serde_json::json!("0x1")),
        ] {
            let mut v = good.clone();
            v[field] = bad.clone();
            assert!(
                serde_json::from_value::<Sample>(v).is_err(),
                "{field} = {bad} was taken"
            );
        }
    }
}
