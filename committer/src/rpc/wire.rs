//! How the L1's values are written in JSON. Keel's ids and types carry their own serde
//! ([`keel_state::wire`]: numbers stay numbers, everything binary is `0x` hex); what is left here
//! is the L1's own: durations and genesis allocations.
//!
//! | type | JSON |
//! |---|---|
//! | `Fr` (roots, hashes) | `"0x…"`, 64 digits, the integer big-endian (as `fr_to_hex` prints it) |
//! | `PublicKey`, `QueueEntry`, `CouncilKey`, `L1Tx` | `"0x…"`: the canonical encoding |
//! | `L1Address` | `"0x…"`, 40 digits |
//! | batch data, proofs | `"0x…"` |
//! | `BatchNumber`, `Epoch`, `AccountIndex` | numbers |
//! | durations | milliseconds, in fields named `…_ms` |

pub(crate) use keel_state::wire::{from_hex, to_hex};
use serde::{Deserialize, Deserializer, Serializer};

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
