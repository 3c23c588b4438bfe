//! Accounts and their leaves.

use crate::{
    encoding::{Decode, DecodeResult, Encode, Reader},
    field::Fr,
    poseidon,
    signature::{PublicKey, PUBLIC_KEY_BYTES},
};

/// An account: its owner's key, balance and the nonce its next signed operation must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Account {
    /// The owner's Grumpkin key.
    pub pk: PublicKey,
    /// Balance in the rollup's base unit.
    pub balance: u64,
    /// Number of signed operations applied so far.
    pub nonce: u64,
}

/// Length of an encoded account.
pub const ACCOUNT_BYTES: usize = PUBLIC_KEY_BYTES + 16;

impl Account {
    /// `sponge(Leaf, pk.x, pk.y, balance, nonce)`: two permutations.
    pub fn leaf(&self) -> Fr {
        let (x, y) = self.pk.xy();
        poseidon::sponge(
            poseidon::Domain::Leaf,
            &[x, y, Fr::from(self.balance), Fr::from(self.nonce)],
        )
    }
}

/// The leaf of an optional account: the empty leaf is 0.
pub fn leaf_of(account: Option<&Account>) -> Fr {
    account.map_or(Fr::zero(), Account::leaf)
}

impl Encode for Account {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.pk.to_bytes());
        out.extend_from_slice(&self.balance.to_be_bytes());
        out.extend_from_slice(&self.nonce.to_be_bytes());
    }
}

impl Decode for Account {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let pk = PublicKey::decode_from(r)?;
        Ok(Self {
            pk,
            balance: r.u64()?,
            nonce: r.u64()?,
        })
    }
}
