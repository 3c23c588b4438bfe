//! Operations, the messages users sign, and their canonical encoding.
//!
//! Where an operation comes from is part of its type: a [`BatchOp`] is either an L2 operation the
//! sequencer took from its mempool ([`SignedOp`]) or the next entry of the L1 forced-inclusion
//! queue ([`QueueEntry`]: a deposit, or a signed operation forced through the L1). Deposits exist
//! only as queue entries: accounts are created on the L1, which assigns their index.
//!
//! ```text
//! word(op)    kind + 2^8·a + 2^40·b + 2^72·amount + 2^136·nonce    (< 2^200, one field element)
//!             Deposit  kind 1, a = to,   b = 0,  nonce = 0
//!             Transfer kind 2, a = from, b = to
//!             Withdraw kind 3, a = from, b = 0
//! (e₁, e₂)    Deposit (pk.x, pk.y)   Transfer (0, 0)   Withdraw (recipient, 0)
//! msg         Transfer [word]        Withdraw [word, recipient]
//!             (what the owner signs: the signature's challenge absorbs these elements)
//! entry hash  sponge(Entry, source, word, e₁, e₂, R.x, R.y, s_lo, s_hi)   (four permutations)
//!             (source 0 = L2, 1 = L1 queue; R, s = 0 for a deposit)
//! ```
//!
//! The scalar fields share one word because each is range-bounded (indices 32 bits, amounts and
//! nonces 64), so the word encodes them injectively. The signature covers the words themselves
//! rather than a hash of them ([`crate::signature`]), so checking a transfer's signature costs the
//! challenge's three Poseidon permutations and nothing more: the check is on the sequencer's
//! acknowledgement path. Messages of different kinds cannot coincide: the kind is in the word,
//! and the challenge's sponge names the message's length in its capacity.
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
/// The kind in an exit authorisation's word ([`exit_message`]).
pub const KIND_EXIT: u64 = 4;

const TAG_DEPOSIT: u8 = 0x01;
const TAG_TRANSFER: u8 = 0x02;
const TAG_WITHDRAW: u8 = 0x03;
const TAG_FORCED: u8 = 0x10;

/// Where each scalar field starts in an operation's word (see the module doc): `a`, `b`, amount,
/// nonce; the kind is in bits 0–7.
pub const WORD_SHIFTS: [u32; 4] = [8, 40, 72, 136];

/// An operation's scalar fields in one field element:
/// `kind + 2^8·a + 2^40·b + 2^72·amount + 2^136·nonce` (below 2^200, so below the modulus).
pub fn word(kind: u64, a: AccountIndex, b: AccountIndex, amount: u64, nonce: u64) -> Fr {
    debug_assert!(kind < 1 << 8);
    let (a, b) = (u64::from(a.0), u64::from(b.0));
    Fr::from_raw([
        kind | a << 8 | b << 40,
        b >> 24 | amount << 8,
        amount >> 56 | nonce << 8,
        nonce >> 56,
    ])
}

/// What an account's owner signs to exit it, in exit mode, to `recipient` on the L1 of the
/// deployment `chain_id`: `[word(4, index, 0, 0, 0), recipient, chain_id]`. Three elements, so it
/// can equal no operation's message (the challenge's capacity names the length), and the kind
/// in the word tells it from any other three-element message.
pub fn exit_message(chain_id: u64, index: AccountIndex, recipient: &L1Address) -> [Fr; 3] {
    [
        word(KIND_EXIT, index, AccountIndex(0), 0, 0),
        fr_from_address(&recipient.0),
        Fr::from(chain_id),
    ]
}

/// What an operation's owner signs: `[word]` for a transfer, `[word, recipient]` for a
/// withdrawal (see the module doc). Dereferences to the elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// `(word, e₁, e₂)` as the entry hash absorbs them; the message is the first `len`.
    elements: [Fr; 3],
    len: usize,
}

impl std::ops::Deref for Message {
    type Target = [Fr];

    fn deref(&self) -> &[Fr] {
        &self.elements[..self.len]
    }
}

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
    /// The signed message for these fields: `[word]`.
    pub fn message(from: AccountIndex, to: AccountIndex, amount: u64, nonce: u64) -> Message {
        Message {
            elements: [
                word(KIND_TRANSFER, from, to, amount, nonce),
                Fr::zero(),
                Fr::zero(),
            ],
            len: 1,
        }
    }

    /// Builds and signs a transfer.
    pub fn sign(
        sk: &SecretKey,
        from: AccountIndex,
        to: AccountIndex,
        amount: u64,
        nonce: u64,
    ) -> Self {
        let signature = sk.sign(&Self::message(from, to, amount, nonce));
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
    /// The signed message for these fields: `[word, recipient]`.
    pub fn message(from: AccountIndex, recipient: &L1Address, amount: u64, nonce: u64) -> Message {
        Message {
            elements: [
                word(KIND_WITHDRAW, from, AccountIndex(0), amount, nonce),
                fr_from_address(&recipient.0),
                Fr::zero(),
            ],
            len: 2,
        }
    }

    /// Builds and signs a withdrawal.
    pub fn sign(
        sk: &SecretKey,
        from: AccountIndex,
        recipient: L1Address,
        amount: u64,
        nonce: u64,
    ) -> Self {
        let signature = sk.sign(&Self::message(from, &recipient, amount, nonce));
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
    /// `(word, pk.x, pk.y)`: what the entry hash absorbs of a deposit.
    fn elements(&self) -> [Fr; 3] {
        let (x, y) = self.pk.xy();
        let w = word(KIND_DEPOSIT, self.to, AccountIndex(0), self.amount, 0);
        [w, x, y]
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
    pub fn message(&self) -> Message {
        match self {
            Self::Transfer(t) => Transfer::message(t.from, t.to, t.amount, t.nonce),
            Self::Withdraw(w) => Withdraw::message(w.from, &w.recipient, w.amount, w.nonce),
        }
    }

    /// Checks the signature against `pk`.
    pub fn verify(&self, pk: &PublicKey) -> Result<(), crate::signature::SignatureError> {
        pk.verify(&self.message(), self.signature())
    }

    /// `(R.x, R.y, s_lo, s_hi)`: what the entry hash absorbs of the signature.
    fn signature_elements(&self) -> [Fr; 4] {
        let sig = self.signature();
        let r = sig.r();
        let (s_lo, s_hi) = split_u256(&sig.s_bytes());
        [r.x, r.y, s_lo, s_hi]
    }
}

impl QueueEntry {
    /// The hash the L1 queue's running hash absorbs for this entry.
    pub fn entry_hash(&self) -> Fr {
        BatchOp::L1(*self).entry_hash()
    }

    /// The queue's running hash after this entry: `compress(Queue, previous, entry_hash)`.
    pub fn chain(&self, queue_hash: Fr) -> Fr {
        poseidon::compress(poseidon::Domain::Queue, queue_hash, self.entry_hash())
    }
}

impl BatchOp {
    /// Whether the op comes from the L1 queue.
    pub fn is_queue_entry(&self) -> bool {
        matches!(self, Self::L1(_))
    }

    /// `sponge(Entry, source, word, e₁, e₂, R.x, R.y, s_lo, s_hi)`: what the data commitment and
    /// the queue hash absorb.
    pub fn entry_hash(&self) -> Fr {
        let source = Fr::from(u64::from(self.is_queue_entry()));
        let ([w, e1, e2], [rx, ry, s_lo, s_hi]) = match self {
            Self::L2(op) | Self::L1(QueueEntry::Forced(op)) => {
                (op.message().elements, op.signature_elements())
            }
            Self::L1(QueueEntry::Deposit(d)) => (d.elements(), [Fr::zero(); 4]),
        };
        entry(&[source, w, e1, e2, rx, ry, s_lo, s_hi])
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

/// The entry sponge over its eight elements.
fn entry(elements: &[Fr; 8]) -> Fr {
    poseidon::sponge(poseidon::Domain::Entry, elements)
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

#[cfg(test)]
mod tests {
    use halo2_proofs::halo2curves::ff::{Field, PrimeField};
    use proptest::prelude::*;

    use super::*;

    fn pow2(n: u32) -> Fr {
        Fr::from(2).pow_vartime([u64::from(n)])
    }

    /// The fields back out of a word's little-endian integer.
    fn unpack(w: Fr) -> (u64, u32, u32, u64, u64) {
        let bytes = w.to_repr();
        let bits = |from: u32, len: u32| -> u64 {
            (0..len).fold(0u64, |acc, i| {
                let bit = from + i;
                let set = bytes.as_ref()[(bit / 8) as usize] >> (bit % 8) & 1;
                acc | u64::from(set) << i
            })
        };
        let [sa, sb, sm, sn] = WORD_SHIFTS;
        let high = (200..256).any(|bit| bytes.as_ref()[bit / 8] >> (bit % 8) & 1 == 1);
        assert!(!high, "a word is below 2^200");
        (
            bits(0, 8),
            bits(sa, 32) as u32,
            bits(sb, 32) as u32,
            bits(sm, 64),
            bits(sn, 64),
        )
    }

    #[test]
    fn the_word_is_the_documented_sum_at_the_edges() {
        for (kind, a, b, amount, nonce) in [
            (0, 0, 0, 0, 0),
            (2, 1, 2, 3, 4),
            (3, u32::MAX, 0, u64::MAX, u64::MAX),
            (255, u32::MAX, u32::MAX, u64::MAX, u64::MAX),
            (1, 1 << 31, 1 << 23, 1 << 55, 1 << 56),
        ] {
            let [sa, sb, sm, sn] = WORD_SHIFTS;
            let sum = Fr::from(kind)
                + Fr::from(u64::from(a)) * pow2(sa)
                + Fr::from(u64::from(b)) * pow2(sb)
                + Fr::from(amount) * pow2(sm)
                + Fr::from(nonce) * pow2(sn);
            let w = word(kind, AccountIndex(a), AccountIndex(b), amount, nonce);
            assert_eq!(w, sum);
            assert_eq!(unpack(w), (kind, a, b, amount, nonce));
        }
    }

    proptest! {
        #[test]
        fn the_word_decodes_to_its_fields(
            kind in 0u64..4, a: u32, b: u32, amount: u64, nonce: u64,
        ) {
            let w = word(kind, AccountIndex(a), AccountIndex(b), amount, nonce);
            prop_assert_eq!(unpack(w), (kind, a, b, amount, nonce));
        }
    }

    #[test]
    fn messages_bind_every_field_and_the_kind() {
        let (from, to) = (AccountIndex(5), AccountIndex(6));
        let base = Transfer::message(from, to, 7, 8);
        for other in [
            Transfer::message(AccountIndex(6), to, 7, 8),
            Transfer::message(from, AccountIndex(5), 7, 8),
            Transfer::message(from, to, 8, 8),
            Transfer::message(from, to, 7, 9),
            // the fields a withdrawal to "address 6" would have
            Withdraw::message(
                from,
                &L1Address(*b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x06"),
                7,
                8,
            ),
        ] {
            assert_ne!(*base, *other);
        }
        // a transfer's message is its one word
        let expected = Fr::from(2)
            + Fr::from(5) * pow2(8)
            + Fr::from(6) * pow2(40)
            + Fr::from(7) * pow2(72)
            + Fr::from(8) * pow2(136);
        assert_eq!(*base, [expected]);
        // a withdrawal's, its word and the recipient
        let addr = L1Address([9; 20]);
        let w = Withdraw::message(from, &addr, 7, 8);
        assert_ne!(*w, *Withdraw::message(from, &L1Address([8; 20]), 7, 8));
        assert_eq!(
            *w,
            [
                word(3, from, AccountIndex(0), 7, 8),
                fr_from_address(&addr.0)
            ]
        );
    }

    #[test]
    fn entry_hashes_absorb_the_documented_elements() {
        let sk = crate::test_utils::key(1);
        let z = Fr::zero();
        let t = Transfer::sign(&sk, AccountIndex(1), AccountIndex(2), 3, 4);
        let (s_lo, s_hi) = split_u256(&t.signature.s_bytes());
        let r = t.signature.r();
        let w = word(2, AccountIndex(1), AccountIndex(2), 3, 4);
        let op = SignedOp::Transfer(t);
        assert_eq!(
            BatchOp::L2(op).entry_hash(),
            entry(&[z, w, z, z, r.x, r.y, s_lo, s_hi])
        );
        assert_eq!(
            BatchOp::L1(QueueEntry::Forced(op)).entry_hash(),
            entry(&[Fr::one(), w, z, z, r.x, r.y, s_lo, s_hi])
        );
        let addr = L1Address([9; 20]);
        let wd = Withdraw::sign(&sk, AccountIndex(1), addr, 3, 4);
        let (s_lo, s_hi) = split_u256(&wd.signature.s_bytes());
        let r = wd.signature.r();
        let w = word(3, AccountIndex(1), AccountIndex(0), 3, 4);
        let a = fr_from_address(&addr.0);
        assert_eq!(
            BatchOp::L2(SignedOp::Withdraw(wd)).entry_hash(),
            entry(&[z, w, a, z, r.x, r.y, s_lo, s_hi])
        );
        let pk = sk.public_key();
        let (x, y) = pk.xy();
        let d = Deposit {
            to: AccountIndex(7),
            pk,
            amount: 9,
        };
        let w = word(1, AccountIndex(7), AccountIndex(0), 9, 0);
        assert_eq!(
            QueueEntry::Deposit(d).entry_hash(),
            entry(&[Fr::one(), w, x, y, z, z, z, z])
        );
    }
}
