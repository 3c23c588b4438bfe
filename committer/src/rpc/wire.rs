//! How the L1's values are written in JSON: numbers stay numbers, everything binary is `0x` hex.
//!
//! | type | JSON |
//! |---|---|
//! | `Fr` (roots, hashes) | `"0x…"`, 64 digits, the integer big-endian (as `fr_to_hex` prints it) |
//! | `PublicKey`, `QueueEntry`, `GroupKey`, `L1Tx` | `"0x…"`: the canonical encoding |
//! | `L1Address` | `"0x…"`, 40 digits |
//! | batch data, proofs | `"0x…"` |
//! | `BatchNumber`, `Epoch`, `AccountIndex` | numbers |
//! | durations | milliseconds, in fields named `…_ms` |
//!
//! Each submodule is a `#[serde(with = …)]` helper; decoding refuses what the canonical binary
//! decoders refuse (a non-canonical field element, a point off the curve, trailing bytes).

use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

/// `0x`-prefixed lowercase hex.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Hex with or without `0x`.
pub(crate) fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| format!("bad hex: {e}"))
}

fn hex_string<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    from_hex(&s).map_err(D::Error::custom)
}

/// Bytes as hex.
pub(crate) mod bytes {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(b))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex_string(d)
    }
}

/// A field element as `fr_to_hex` prints it.
pub(crate) mod fr {
    use keel_state::{
        field::{fr_from_bytes, fr_to_hex, FR_BYTES},
        Fr,
    };

    use super::*;

    pub(crate) fn serialize<S: Serializer>(x: &Fr, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fr_to_hex(x))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fr, D::Error> {
        let mut b: [u8; FR_BYTES] = hex_string(d)?
            .try_into()
            .map_err(|_| D::Error::custom("a field element is 32 bytes"))?;
        b.reverse();
        fr_from_bytes(&b).ok_or_else(|| D::Error::custom("field element is not below the modulus"))
    }
}

/// A value as the hex of its canonical encoding.
pub(crate) mod encoded {
    use keel_state::{Decode, Encode};

    use super::*;

    pub(crate) fn serialize<T: Encode, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(&v.encode()))
    }

    pub(crate) fn deserialize<'de, T: Decode, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        T::decode(&hex_string(d)?).map_err(D::Error::custom)
    }
}

/// A list of values, each as the hex of its canonical encoding.
pub(crate) mod encoded_vec {
    use keel_state::{Decode, Encode};
    use serde::ser::SerializeSeq;

    use super::*;

    pub(crate) fn serialize<T: Encode, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&to_hex(&x.encode()))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, T: Decode, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| T::decode(&from_hex(s)?).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()
            .map_err(D::Error::custom)
    }
}

/// An L1 address: 40 hex digits.
pub(crate) mod address {
    use keel_state::L1Address;

    use super::*;

    pub(crate) fn serialize<S: Serializer>(a: &L1Address, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(&a.0))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<L1Address, D::Error> {
        parse(&String::deserialize(d)?).map_err(D::Error::custom)
    }

    /// Parses 40 hex digits, with or without `0x`.
    pub(crate) fn parse(s: &str) -> Result<L1Address, String> {
        from_hex(s)?
            .try_into()
            .map(L1Address)
            .map_err(|_| "an L1 address is 20 bytes (40 hex digits)".to_owned())
    }
}

/// The typed identifiers as plain numbers.
macro_rules! id_as_number {
    ($module:ident, $ty:ty, $inner:ty) => {
        /// See the module docs.
        pub(crate) mod $module {
            use super::*;

            pub(crate) fn serialize<S: Serializer>(v: &$ty, s: S) -> Result<S::Ok, S::Error> {
                serde::Serialize::serialize(&v.0, s)
            }

            pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                <$inner>::deserialize(d).map(<$ty>::from)
            }
        }
    };
}

id_as_number!(batch_number, keel_state::BatchNumber, u64);
id_as_number!(epoch, keel_state::Epoch, u64);
id_as_number!(account, keel_state::AccountIndex, u32);

/// An optional account index: a number or `null`.
pub(crate) mod opt_account {
    use keel_state::AccountIndex;

    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        v: &Option<AccountIndex>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&v.map(|a| a.0), s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<AccountIndex>, D::Error> {
        Ok(Option::<u32>::deserialize(d)?.map(AccountIndex))
    }
}

/// A duration in whole milliseconds.
pub(crate) mod millis {
    use std::time::Duration;

    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let ms = u64::try_from(v.as_millis()).map_err(serde::ser::Error::custom)?;
        s.serialize_u64(ms)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// L1 balances at genesis, as `[{"address": "0x…", "amount": n}]`.
pub(crate) mod allocations {
    use keel_state::L1Address;
    use serde::Serialize;

    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Allocation {
        #[serde(with = "super::address")]
        address: L1Address,
        amount: u64,
    }

    pub(crate) fn serialize<S: Serializer>(
        v: &[(L1Address, u64)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            v.iter()
                .map(|&(address, amount)| Allocation { address, amount }),
        )
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(L1Address, u64)>, D::Error> {
        Ok(Vec::<Allocation>::deserialize(d)?
            .into_iter()
            .map(|a| (a.address, a.amount))
            .collect())
    }
}
