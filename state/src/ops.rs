//! Operations, the messages users sign, and their canonical encoding.
//!
//! Where an operation comes from is part of its type: a [`BatchOp`] is either an L2 operation the
//! sequencer took from its mempool ([`SignedOp`]) or the next entry of the L1 forced-inclusion
//! queue ([`QueueEntry`]: a deposit, or a signed operation forced through the L1). Deposits exist
//! only as queue entries: accounts are created on the L1, which assigns their index.
//!
//! ```text
//! fields(op)  Deposit  [1, to, pk.x, pk.y, amount]
//!             Transfer [2, from, to, amount, nonce]
//!             Withdraw [3, from, recipient, amount, nonce]
//! msg         Poseidon(fields)                           (what the owner signs)
//! entry hash  Poseidon(source, msg, R.x, R.y, s_lo, s_hi) (source 0 = L2, 1 = L1 queue;
//!                                                         R, s = 0 for a deposit)
//! ```
//!
//! Encoding: a tag byte (`0x01` deposit, `0x02`/`0x03` L2 transfer/withdraw, `0x12`/`0x13`
//! forced transfer/withdraw), then the fields in order (indices `u32`, amounts and nonces `u64`,
//! big-endian; keys and signatures as in [`crate::signature`]).

use crate::{
    encoding::{Decode, DecodeError, DecodeResult, Encode, Reader},
    field::{fr_from_address, split_u256, Fr},
    ids::{AccountIndex, L1Address},
    poseidon,
    signature::{PublicKey, SecretKey, Signature},
};

const KIND_DEPOSIT: u64 = 1;
const KIND_TRANSFER: u64 = 2;
const KIND_WITHDRAW: u64 = 3;

const TAG_DEPOSIT: u8 = 0x01;
const TAG_TRANSFER: u8 = 0x02;
const TAG_WITHDRAW: u8 = 0x03;
const TAG_FORCED: u8 = 0x10;

/// A deposit from the L1: creates the account at `to` with key `pk`, or tops it up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deposit {
    /// The account, assigned by the L1's registry.
    pub to: AccountIndex,
    /// The owner's key; must equal the key already at `to`, if any.
    pub pk: PublicKey,
    /// Amount credited.
    pub amount: u64,
}

/// A signed transfer between two existing accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Debited account; its key signs.
    pub from: AccountIndex,
    /// Credited account (must exist).
    pub to: AccountIndex,
    /// Amount moved.
    pub amount: u64,
    /// Must equal `from`'s nonce.
    pub nonce: u64,
    /// Signature over [`Transfer::message`].
    pub signature: Signature,
}

/// A signed withdrawal: burns on L2, paid to `recipient` on the L1 once its batch is proven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Withdraw {
    /// Debited account; its key signs.
    pub from: AccountIndex,
    /// L1 address paid.
    pub recipient: L1Address,
    /// Amount burnt and paid out.
    pub amount: u64,
    /// Must equal `from`'s nonce.
    pub nonce: u64,
    /// Signature over [`Withdraw::message`].
    pub signature: Signature,
}

/// An operation that its owner signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedOp {
    /// See [`Transfer`].
    Transfer(Transfer),
    /// See [`Withdraw`].
    Withdraw(Withdraw),
}

/// An entry of the L1 forced-inclusion queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueEntry {
    /// See [`Deposit`].
    Deposit(Deposit),
    /// A signed operation submitted through the L1 so the sequencer cannot censor it.
    Forced(SignedOp),
}

/// One operation of a batch, with its origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOp {
    /// From the sequencer's mempool. If it breaks a rule, the batch is invalid.
    L2(SignedOp),
    /// The next L1 queue entry. It is consumed even if it breaks a rule (then it has no effect),
    /// so that an invalid entry cannot block the queue.
    L1(QueueEntry),
}

impl Transfer {
    /// The signed message for these fields.
    pub fn message(from: AccountIndex, to: AccountIndex, amount: u64, nonce: u64) -> Fr {
        poseidon::hash(&[
            Fr::from(KIND_TRANSFER),
            Fr::from(u64::from(from.0)),
            Fr::from(u64::from(to.0)),
            Fr::from(amount),
            Fr::from(nonce),
        ])
    }

    /// Builds and signs a transfer.
    pub fn sign(
        sk: &SecretKey,
        from: AccountIndex,
        to: AccountIndex,
        amount: u64,
        nonce: u64,
    ) -> Self {
        let signature = sk.sign(Self::message(from, to, amount, nonce));
        Self {
            from,
            to,
            amount,
            nonce,
            signature,
        }
    }
}

impl Withdraw {
    /// The signed message for these fields.
    pub fn message(from: AccountIndex, recipient: &L1Address, amount: u64, nonce: u64) -> Fr {
        poseidon::hash(&[
            Fr::from(KIND_WITHDRAW),
            Fr::from(u64::from(from.0)),
            fr_from_address(&recipient.0),
            Fr::from(amount),
            Fr::from(nonce),
        ])
    }

    /// Builds and signs a withdrawal.
    pub fn sign(
        sk: &SecretKey,
        from: AccountIndex,
        recipient: L1Address,
        amount: u64,
        nonce: u64,
    ) -> Self {
        let signature = sk.sign(Self::message(from, &recipient, amount, nonce));
        Self {
            from,
            recipient,
            amount,
            nonce,
            signature,
        }
    }
}

impl Deposit {
    /// `Poseidon(fields)` of the deposit (unsigned; used in the entry hash).
    pub fn message(&self) -> Fr {
        let (x, y) = self.pk.xy();
        poseidon::hash(&[
            Fr::from(KIND_DEPOSIT),
            Fr::from(u64::from(self.to.0)),
            x,
            y,
            Fr::from(self.amount),
        ])
    }
}

impl SignedOp {
    /// The signing account.
    pub fn from(&self) -> AccountIndex {
        match self {
            Self::Transfer(t) => t.from,
            Self::Withdraw(w) => w.from,
        }
    }

    /// The nonce the operation carries.
    pub fn nonce(&self) -> u64 {
        match self {
            Self::Transfer(t) => t.nonce,
            Self::Withdraw(w) => w.nonce,
        }
    }

    /// The amount debited.
    pub fn amount(&self) -> u64 {
        match self {
            Self::Transfer(t) => t.amount,
            Self::Withdraw(w) => w.amount,
        }
    }

    /// The signature.
    pub fn signature(&self) -> &Signature {
        match self {
            Self::Transfer(t) => &t.signature,
            Self::Withdraw(w) => &w.signature,
        }
    }

    /// The message the signature covers.
    pub fn message(&self) -> Fr {
        match self {
            Self::Transfer(t) => Transfer::message(t.from, t.to, t.amount, t.nonce),
            Self::Withdraw(w) => Withdraw::message(w.from, &w.recipient, w.amount, w.nonce),
        }
    }

    /// Checks the signature against `pk`.
    pub fn verify(&self, pk: &PublicKey) -> Result<(), crate::signature::SignatureError> {
        pk.verify(self.message(), self.signature())
    }

    fn entry_hash(&self, source: Fr) -> Fr {
        let sig = self.signature();
        let r = sig.r();
        let (s_lo, s_hi) = split_u256(&sig.s_bytes());
        poseidon::hash(&[source, self.message(), r.x, r.y, s_lo, s_hi])
    }
}

impl QueueEntry {
    /// The hash the L1 queue's running hash absorbs for this entry.
    pub fn entry_hash(&self) -> Fr {
        BatchOp::L1(*self).entry_hash()
    }

    /// The queue's running hash after this entry: `Poseidon(previous, entry_hash)`.
    pub fn chain(&self, queue_hash: Fr) -> Fr {
        poseidon::hash2(queue_hash, self.entry_hash())
    }
}

impl BatchOp {
    /// Whether the op comes from the L1 queue.
    pub fn is_queue_entry(&self) -> bool {
        matches!(self, Self::L1(_))
    }

    /// `Poseidon(source, msg, R.x, R.y, s_lo, s_hi)`: what the data commitment and the queue hash
    /// absorb.
    pub fn entry_hash(&self) -> Fr {
        match self {
            Self::L2(op) => op.entry_hash(Fr::zero()),
            Self::L1(QueueEntry::Forced(op)) => op.entry_hash(Fr::one()),
            Self::L1(QueueEntry::Deposit(d)) => {
                let z = Fr::zero();
                poseidon::hash(&[Fr::one(), d.message(), z, z, z, z])
            }
        }
    }

    /// The encoding's tag byte.
    fn tag(&self) -> u8 {
        let kind = |op: &SignedOp| match op {
            SignedOp::Transfer(_) => TAG_TRANSFER,
            SignedOp::Withdraw(_) => TAG_WITHDRAW,
        };
        match self {
            Self::L2(op) => kind(op),
            Self::L1(QueueEntry::Forced(op)) => kind(op) | TAG_FORCED,
            Self::L1(QueueEntry::Deposit(_)) => TAG_DEPOSIT,
        }
    }
}

impl Encode for BatchOp {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        match self {
            Self::L2(SignedOp::Transfer(t))
            | Self::L1(QueueEntry::Forced(SignedOp::Transfer(t))) => {
                out.extend_from_slice(&t.from.0.to_be_bytes());
                out.extend_from_slice(&t.to.0.to_be_bytes());
                out.extend_from_slice(&t.amount.to_be_bytes());
                out.extend_from_slice(&t.nonce.to_be_bytes());
                out.extend_from_slice(&t.signature.to_bytes());
            }
            Self::L2(SignedOp::Withdraw(w))
            | Self::L1(QueueEntry::Forced(SignedOp::Withdraw(w))) => {
                out.extend_from_slice(&w.from.0.to_be_bytes());
                out.extend_from_slice(&w.recipient.0);
                out.extend_from_slice(&w.amount.to_be_bytes());
                out.extend_from_slice(&w.nonce.to_be_bytes());
                out.extend_from_slice(&w.signature.to_bytes());
            }
            Self::L1(QueueEntry::Deposit(d)) => {
                out.extend_from_slice(&d.to.0.to_be_bytes());
                out.extend_from_slice(&d.pk.to_bytes());
                out.extend_from_slice(&d.amount.to_be_bytes());
            }
        }
    }
}

impl Decode for BatchOp {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let at = r.position();
        let tag = r.u8()?;
        let signed = |r: &mut Reader<'_>, kind: u8| -> DecodeResult<SignedOp> {
            let from = AccountIndex(r.u32()?);
            Ok(if kind == TAG_TRANSFER {
                SignedOp::Transfer(Transfer {
                    from,
                    to: AccountIndex(r.u32()?),
                    amount: r.u64()?,
                    nonce: r.u64()?,
                    signature: Signature::decode_from(r)?,
                })
            } else {
                SignedOp::Withdraw(Withdraw {
                    from,
                    recipient: L1Address(r.array()?),
                    amount: r.u64()?,
                    nonce: r.u64()?,
                    signature: Signature::decode_from(r)?,
                })
            })
        };
        match tag {
            TAG_DEPOSIT => Ok(Self::L1(QueueEntry::Deposit(Deposit {
                to: AccountIndex(r.u32()?),
                pk: PublicKey::decode_from(r)?,
                amount: r.u64()?,
            }))),
            TAG_TRANSFER | TAG_WITHDRAW => Ok(Self::L2(signed(r, tag)?)),
            t if t == TAG_TRANSFER | TAG_FORCED || t == TAG_WITHDRAW | TAG_FORCED => {
                Ok(Self::L1(QueueEntry::Forced(signed(r, t & !TAG_FORCED)?)))
            }
            tag => Err(DecodeError::UnknownTag { tag, at }),
        }
    }
}

impl Encode for QueueEntry {
    fn encode_to(&self, out: &mut Vec<u8>) {
        BatchOp::L1(*self).encode_to(out)
    }
}

impl Decode for QueueEntry {
    /// Accepts only queue-entry tags (`0x01`, `0x12`, `0x13`).
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let at = r.position();
        match BatchOp::decode_from(r)? {
            BatchOp::L1(e) => Ok(e),
            op => Err(DecodeError::UnknownTag { tag: op.tag(), at }),
        }
    }
}

impl Encode for SignedOp {
    fn encode_to(&self, out: &mut Vec<u8>) {
        BatchOp::L2(*self).encode_to(out)
    }
}

impl Decode for SignedOp {
    /// Accepts only L2 tags (`0x02`, `0x03`): what a user submits to the sequencer.
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let at = r.position();
        match BatchOp::decode_from(r)? {
            BatchOp::L2(op) => Ok(op),
            op => Err(DecodeError::UnknownTag { tag: op.tag(), at }),
        }
    }
}
