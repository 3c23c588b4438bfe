//! Shared fixtures for tests and benchmarks: deterministic keys, funded genesis states, and
//! proptest strategies for operations.

use proptest::prelude::*;

use crate::{
    ids::{AccountIndex, L1Address},
    ops::{BatchOp, Deposit, QueueEntry, SignedOp, Transfer, Withdraw},
    signature::SecretKey,
    stf::State,
    store::{MemStore, StateStore},
};

/// The deterministic secret key of demo account `i`.
pub fn key(i: u32) -> SecretKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    seed[4..12].copy_from_slice(b"keeltest");
    SecretKey::from_seed(&seed)
}

/// A deposit creating (or topping up) account `i` with its deterministic key.
pub fn deposit(i: u32, amount: u64) -> BatchOp {
    BatchOp::L1(deposit_entry(i, amount))
}

/// [`deposit`] as the L1 queue entry itself.
pub fn deposit_entry(i: u32, amount: u64) -> QueueEntry {
    QueueEntry::Deposit(Deposit {
        to: AccountIndex(i),
        pk: key(i).public_key(),
        amount,
    })
}

/// An L2 transfer signed with `from`'s deterministic key.
pub fn transfer(from: u32, to: u32, amount: u64, nonce: u64) -> BatchOp {
    BatchOp::L2(signed_transfer(from, to, amount, nonce))
}

/// [`transfer`] as the signed operation itself.
pub fn signed_transfer(from: u32, to: u32, amount: u64, nonce: u64) -> SignedOp {
    SignedOp::Transfer(Transfer::sign(
        &key(from),
        AccountIndex(from),
        AccountIndex(to),
        amount,
        nonce,
    ))
}

/// An L2 withdrawal to L1 address `0x0707…07`, signed with `from`'s deterministic key.
pub fn withdraw(from: u32, amount: u64, nonce: u64) -> BatchOp {
    BatchOp::L2(SignedOp::Withdraw(Withdraw::sign(
        &key(from),
        AccountIndex(from),
        L1Address([7; 20]),
        amount,
        nonce,
    )))
}

/// An in-memory state of `depth` with accounts `0..n` funded with `balance` each.
pub fn funded_state(depth: u8, n: u32, balance: u64) -> State<MemStore> {
    let mut s = State::open(MemStore::new(), depth).expect("valid depth");
    fund(&mut s, n, balance);
    s
}

/// Deposits `balance` into accounts `0..n` of `state`, one operation at a time.
pub fn fund<S: StateStore>(state: &mut State<S>, n: u32, balance: u64) {
    for i in 0..n {
        state.apply(&deposit(i, balance)).expect("genesis deposit");
    }
}

/// A description of an operation, signed later against the deterministic keys. Indices may
/// name accounts that do not exist, amounts may exceed balances, nonces may be stale, the signer
/// may be the wrong key: the strategies produce valid and invalid operations alike.
#[derive(Clone, Debug)]
pub enum OpSpec {
    /// A deposit.
    Deposit {
        /// Target account.
        to: u32,
        /// Key owner (normally `to`; otherwise a key mismatch when `to` exists).
        key_of: u32,
        /// Amount.
        amount: u64,
    },
    /// A transfer.
    Transfer {
        /// Sender.
        from: u32,
        /// Recipient.
        to: u32,
        /// Amount.
        amount: u64,
        /// Offset added to the sender's current nonce (0 = correct).
        nonce_skew: i8,
        /// Whose key signs (normally `from`).
        signer: u32,
        /// Submit through the L1 queue.
        forced: bool,
    },
    /// A withdrawal.
    Withdraw {
        /// Sender.
        from: u32,
        /// Amount.
        amount: u64,
        /// Offset added to the sender's current nonce.
        nonce_skew: i8,
        /// Whose key signs.
        signer: u32,
        /// Submit through the L1 queue.
        forced: bool,
    },
}

impl OpSpec {
    /// Builds the operation against `state`'s current nonces (`nonce_of`).
    pub fn build(&self, nonce_of: impl Fn(u32) -> u64) -> BatchOp {
        let skewed = |i: u32, skew: i8| nonce_of(i).wrapping_add_signed(i64::from(skew));
        let signed = |op: SignedOp, forced: bool| {
            if forced {
                BatchOp::L1(QueueEntry::Forced(op))
            } else {
                BatchOp::L2(op)
            }
        };
        match *self {
            Self::Deposit { to, key_of, amount } => BatchOp::L1(QueueEntry::Deposit(Deposit {
                to: AccountIndex(to),
                pk: key(key_of).public_key(),
                amount,
            })),
            Self::Transfer {
                from,
                to,
                amount,
                nonce_skew,
                signer,
                forced,
            } => signed(
                SignedOp::Transfer(Transfer::sign(
                    &key(signer),
                    AccountIndex(from),
                    AccountIndex(to),
                    amount,
                    skewed(from, nonce_skew),
                )),
                forced,
            ),
            Self::Withdraw {
                from,
                amount,
                nonce_skew,
                signer,
                forced,
            } => signed(
                SignedOp::Withdraw(Withdraw::sign(
                    &key(signer),
                    AccountIndex(from),
                    L1Address([0xab; 20]),
                    amount,
                    skewed(from, nonce_skew),
                )),
                forced,
            ),
        }
    }
}

/// Operation specs over accounts `0..accounts` (plus one index past them), mostly valid.
pub fn arb_op_spec(accounts: u32) -> impl Strategy<Value = OpSpec> {
    let idx = 0..=accounts;
    let amount = prop_oneof![8 => 0u64..2_000, 1 => Just(u64::MAX), 1 => any::<u64>()];
    let skew = prop_oneof![9 => Just(0i8), 1 => -2i8..=2];
    let signer_flip = prop_oneof![19 => Just(false), 1 => Just(true)];
    prop_oneof![
        2 => (idx.clone(), prop_oneof![9 => Just(false), 1 => Just(true)], amount.clone())
            .prop_map(move |(to, wrong_key, amount)| OpSpec::Deposit {
                to,
                key_of: if wrong_key { to + 1 } else { to },
                amount,
            }),
        6 => (idx.clone(), idx.clone(), amount.clone(), skew.clone(), signer_flip.clone(), any::<bool>())
            .prop_map(|(from, to, amount, nonce_skew, flip, forced)| OpSpec::Transfer {
                from,
                to,
                amount,
                nonce_skew,
                signer: if flip { from + 1 } else { from },
                forced,
            }),
        2 => (idx, amount, skew, signer_flip, any::<bool>())
            .prop_map(|(from, amount, nonce_skew, flip, forced)| OpSpec::Withdraw {
                from,
                amount,
                nonce_skew,
                signer: if flip { from + 1 } else { from },
                forced,
            }),
    ]
}
