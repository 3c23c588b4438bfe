//! What a deployment fixes at its start: the chain id, the clock's origin, the tree depth, the
//! deadlines, the registered sequencers and the L1 balances. The verifying key is fixed with it
//! ([`crate::EmbeddedL1::open`] records its digest and refuses another one later).

use keel_state::{
    encoding::{DecodeResult, Reader},
    tree::MAX_DEPTH,
    Decode, DecodeError, Encode, L1Address, PublicKey,
};

use crate::{
    council::CouncilKey,
    sla::Deadlines,
    tx::{keys, put_keys, MAX_SEQUENCERS},
};

/// Encoding version of [`Genesis`].
const GENESIS_VERSION: u8 = 2;

/// A deployment's genesis.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Signed by every transaction, so none replays on another deployment.
    pub chain_id: u64,
    /// The L1 clock at genesis, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The rollup's state tree depth.
    pub depth: u8,
    /// The deadlines.
    #[serde(default)]
    pub deadlines: Deadlines,
    /// Registered sequencers in take-over order; the first holds the lease in epoch 1.
    pub sequencers: Vec<PublicKey>,
    /// Initial L1 balances.
    #[serde(with = "crate::rpc::wire::allocations")]
    pub allocations: Vec<(L1Address, u64)>,
    /// The council's threshold key: its signatures may rotate the sequencers or activate exit
    /// mode, nothing else.
    pub council: CouncilKey,
}

impl Genesis {
    /// Why this genesis cannot start a chain, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.depth == 0 || self.depth > MAX_DEPTH {
            return Err(format!("depth {} is outside 1..={MAX_DEPTH}", self.depth));
        }
        if self.sequencers.len() > MAX_SEQUENCERS {
            return Err(format!("at most {MAX_SEQUENCERS} sequencers"));
        }
        if self.sequencers.is_empty() {
            return Err("at least one sequencer must be registered".into());
        }
        let total = self
            .allocations
            .iter()
            .try_fold(0u64, |t, (_, a)| t.checked_add(*a));
        if total.is_none() {
            return Err("the allocations sum past u64::MAX".into());
        }
        Ok(())
    }
}

impl Encode for Genesis {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(GENESIS_VERSION);
        out.extend_from_slice(&self.chain_id.to_be_bytes());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out.push(self.depth);
        self.deadlines.encode_to(out);
        put_keys(out, &self.sequencers);
        out.extend_from_slice(&(self.allocations.len() as u32).to_be_bytes());
        for (addr, amount) in &self.allocations {
            out.extend_from_slice(&addr.0);
            out.extend_from_slice(&amount.to_be_bytes());
        }
        self.council.encode_to(out);
    }
}

impl Decode for Genesis {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let version = r.u8()?;
        if version != GENESIS_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let chain_id = r.u64()?;
        let time_ms = r.u64()?;
        let depth = r.u8()?;
        let deadlines = Deadlines::decode_from(r)?;
        let sequencers = keys(r)?;
        let n = r.u32()? as usize;
        let mut allocations = Vec::with_capacity(n.min(r.remaining() / 28));
        for _ in 0..n {
            allocations.push((L1Address(r.array()?), r.u64()?));
        }
        let council = CouncilKey::decode_from(r)?;
        Ok(Self {
            chain_id,
            time_ms,
            depth,
            deadlines,
            sequencers,
            allocations,
            council,
        })
    }
}

#[cfg(test)]
mod tests {
    use keel_state::test_utils::key;
    use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

    use super::*;

    fn genesis() -> Genesis {
        Genesis {
            chain_id: 9,
            time_ms: 1,
            depth: 24,
            deadlines: Deadlines::default(),
            sequencers: vec![key(0).public_key(), key(1).public_key()],
            allocations: vec![(L1Address([1; 20]), 5), (L1Address([2; 20]), 6)],
            council: CouncilKey::of(
                &crate::council::dkg(3, 2, ChaCha20Rng::seed_from_u64(1))
                    .unwrap()
                    .1,
            ),
        }
    }

    #[test]
    fn genesis_round_trips_and_is_checked() {
        let g = genesis();
        assert_eq!(Genesis::decode(&g.encode()).unwrap(), g);
        assert_eq!(g.check(), Ok(()));
        let mut bad = g.clone();
        bad.depth = 0;
        assert!(bad.check().is_err());
        let mut bad = g.clone();
        bad.depth = MAX_DEPTH + 1;
        assert!(bad.check().is_err());
        let mut bad = g.clone();
        bad.allocations.push((L1Address([3; 20]), u64::MAX));
        assert!(bad.check().is_err());
        let mut bad = g;
        bad.sequencers.clear();
        assert!(bad.check().is_err());
    }
}
