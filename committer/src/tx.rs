//! Transactions of the embedded L1: who may call what, signed, with replay protection.
//!
//! Every call is an [`L1Tx`]: a signer's Grumpkin key (the same Schnorr scheme as the rollup's
//! own accounts, so a citizen's L2 key is also their L1 key), the signer's next L1 nonce, the
//! call, and a signature over
//!
//! ```text
//! msg = Fr::from_uniform_bytes(BLAKE2b-512("keel/l1-tx/v1" ‖ chain_id ‖ signer ‖ nonce ‖ call))
//! ```
//!
//! The chain id keeps a transaction of one deployment from replaying on another; the nonce keeps
//! it from replaying on the same one. A signer's L1 address is the last 20 bytes of
//! `BLAKE2b-256("keel/l1-address/v1" ‖ pk)` ([`address_of`]).

use halo2_proofs::halo2curves::ff::FromUniformBytes;
use keel_state::{
    encoding::{DecodeResult, Reader},
    signature::PUBLIC_KEY_BYTES,
    Account, Decode, DecodeError, Encode, Fr, L1Address, MerkleProof, PublicKey, SecretKey,
    Signature, SignedOp,
};

use crate::council::CouncilSignature;

/// Encoding version of [`L1Tx`].
pub const TX_VERSION: u8 = 2;

/// What a transaction asks the L1 to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// Settle the next batch: its canonical encoding (the data anyone can re-execute) and a proof
    /// of it. Only the current lease holder may call it.
    SubmitBatch {
        /// `keel_state::Batch` encoding.
        data: Vec<u8>,
        /// halo2 proof bytes for the public inputs the data implies.
        proof: Vec<u8>,
    },
    /// Move `amount` from the signer's L1 balance into the rollup account owned by `pk`. The L1
    /// assigns the account index (the key's existing index, or the next free one) and queues the
    /// deposit.
    Deposit {
        /// The L2 account's key.
        pk: PublicKey,
        /// Amount.
        amount: u64,
    },
    /// Queue a signed L2 operation so the sequencer must include it (forced inclusion).
    Force(SignedOp),
    /// Activate exit mode; allowed to anyone once a deadline has passed.
    ActivateExitMode,
    /// Claim the sequencer lease (the signer must be a registered sequencer).
    ClaimLease,
    /// The lease holder is alive: restarts the failover clock. Proofs take longer than a
    /// failover timeout should, so a holder proving slowly keeps its lease with heartbeats
    /// (a holder that never proves is still caught by the proof deadline).
    Heartbeat,
    /// A council action, authorised by the council's threshold signature (whoever relays it
    /// signs the transaction itself).
    Council {
        /// What the council decided.
        action: CouncilAction,
        /// The council's next action number: each is accepted once, in order.
        sequence: u64,
        /// The council's FROST signature over [`CouncilAction::message`].
        signature: CouncilSignature,
    },
    /// In exit mode: pay out the signer's rollup account, proven against the last proven root.
    Exit {
        /// The account as the last proven state holds it; `pk` must be the signer.
        account: Account,
        /// Its Merkle proof against the last proven root.
        proof: MerkleProof,
        /// Who is paid on the L1.
        recipient: L1Address,
    },
    /// In exit mode: refund a deposit that no proven batch consumed to the L1 address that paid
    /// it (anyone may call; the refund goes to the depositor).
    Reclaim {
        /// The deposit's queue position.
        position: u64,
    },
}

/// What the council may do, and nothing else: it cannot post a batch, change a root or move a
/// balance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CouncilAction {
    /// Replace the registered sequencers. If the lease holder is not in the new set, the lease
    /// passes to the set's first member in the next epoch.
    RotateSequencers(Vec<PublicKey>),
    /// Activate exit mode at once.
    ActivateExitMode,
}

/// The most sequencers a set may register.
pub const MAX_SEQUENCERS: usize = 64;

const ACTION_ROTATE: u8 = 1;
const ACTION_EXIT_MODE: u8 = 2;

impl CouncilAction {
    /// The message the council signs on the embedded L1: `"keel/council/embedded/v1" ‖
    /// chain_id ‖ sequence ‖ action` (FROST hashes it). The sequence number makes each signature
    /// usable once; the rollup contract's messages have their own prefix and binding (the chain
    /// and the contract), so no signature serves both.
    pub fn message(&self, chain_id: u64, sequence: u64) -> Vec<u8> {
        let mut m = b"keel/council/embedded/v1".to_vec();
        m.extend_from_slice(&chain_id.to_be_bytes());
        m.extend_from_slice(&sequence.to_be_bytes());
        self.encode_to(&mut m);
        m
    }
}

impl Encode for CouncilAction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Self::RotateSequencers(set) => {
                out.push(ACTION_ROTATE);
                out.push(set.len() as u8);
                for pk in set {
                    out.extend_from_slice(&pk.to_bytes());
                }
            }
            Self::ActivateExitMode => out.push(ACTION_EXIT_MODE),
        }
    }
}

impl Decode for CouncilAction {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let at = r.position();
        Ok(match r.u8()? {
            ACTION_ROTATE => {
                let n = r.u8()?;
                if usize::from(n) > MAX_SEQUENCERS {
                    return Err(DecodeError::TooLong {
                        count: n.into(),
                        max: MAX_SEQUENCERS as u64,
                    });
                }
                Self::RotateSequencers(
                    (0..n)
                        .map(|_| PublicKey::decode_from(r))
                        .collect::<DecodeResult<_>>()?,
                )
            }
            ACTION_EXIT_MODE => Self::ActivateExitMode,
            tag => return Err(DecodeError::UnknownTag { tag, at }),
        })
    }
}

const CALL_SUBMIT: u8 = 1;
const CALL_DEPOSIT: u8 = 2;
const CALL_FORCE: u8 = 3;
const CALL_EXIT_MODE: u8 = 4;
const CALL_CLAIM: u8 = 5;
const CALL_EXIT: u8 = 6;
const CALL_COUNCIL: u8 = 7;
const CALL_RECLAIM: u8 = 8;
const CALL_HEARTBEAT: u8 = 9;

/// The most bytes of batch data or proof a transaction may carry.
pub const MAX_BLOB_BYTES: usize = 64 << 20;

impl Call {
    /// A short name for logs and receipts.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SubmitBatch { .. } => "submit_batch",
            Self::Deposit { .. } => "deposit",
            Self::Force(_) => "force",
            Self::ActivateExitMode => "activate_exit_mode",
            Self::ClaimLease => "claim_lease",
            Self::Heartbeat => "heartbeat",
            Self::Exit { .. } => "exit",
            Self::Council { .. } => "council",
            Self::Reclaim { .. } => "reclaim",
        }
    }
}

/// A key list as genesis and the chain's metadata store it: `count(4) ‖ keys`.
pub(crate) fn put_keys(out: &mut Vec<u8>, keys: &[PublicKey]) {
    out.extend_from_slice(&(keys.len() as u32).to_be_bytes());
    for pk in keys {
        pk.encode_to(out);
    }
}

/// Reads what [`put_keys`] wrote, allocating no more than the input could hold.
pub(crate) fn keys(r: &mut Reader<'_>) -> DecodeResult<Vec<PublicKey>> {
    let n = r.u32()? as usize;
    let mut keys = Vec::with_capacity(n.min(r.remaining() / PUBLIC_KEY_BYTES));
    for _ in 0..n {
        keys.push(PublicKey::decode_from(r)?);
    }
    Ok(keys)
}

fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    let len = u32::try_from(b.len()).expect("blobs are bounded by MAX_BLOB_BYTES");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
}

fn blob(r: &mut Reader<'_>) -> DecodeResult<Vec<u8>> {
    let len = r.u32()?;
    if len as usize > MAX_BLOB_BYTES {
        return Err(DecodeError::TooLong {
            count: len.into(),
            max: MAX_BLOB_BYTES as u64,
        });
    }
    Ok(r.bytes(len as usize)?.to_vec())
}

impl Encode for Call {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Self::SubmitBatch { data, proof } => {
                out.push(CALL_SUBMIT);
                put_blob(out, data);
                put_blob(out, proof);
            }
            Self::Deposit { pk, amount } => {
                out.push(CALL_DEPOSIT);
                out.extend_from_slice(&pk.to_bytes());
                out.extend_from_slice(&amount.to_be_bytes());
            }
            Self::Force(op) => {
                out.push(CALL_FORCE);
                op.encode_to(out);
            }
            Self::ActivateExitMode => out.push(CALL_EXIT_MODE),
            Self::ClaimLease => out.push(CALL_CLAIM),
            Self::Heartbeat => out.push(CALL_HEARTBEAT),
            Self::Council {
                action,
                sequence,
                signature,
            } => {
                out.push(CALL_COUNCIL);
                action.encode_to(out);
                out.extend_from_slice(&sequence.to_be_bytes());
                out.extend_from_slice(&signature.to_bytes());
            }
            Self::Exit {
                account,
                proof,
                recipient,
            } => {
                out.push(CALL_EXIT);
                account.encode_to(out);
                proof.encode_to(out);
                out.extend_from_slice(&recipient.0);
            }
            Self::Reclaim { position } => {
                out.push(CALL_RECLAIM);
                out.extend_from_slice(&position.to_be_bytes());
            }
        }
    }
}

impl Decode for Call {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let at = r.position();
        Ok(match r.u8()? {
            CALL_SUBMIT => Self::SubmitBatch {
                data: blob(r)?,
                proof: blob(r)?,
            },
            CALL_DEPOSIT => Self::Deposit {
                pk: PublicKey::decode_from(r)?,
                amount: r.u64()?,
            },
            CALL_FORCE => Self::Force(SignedOp::decode_from(r)?),
            CALL_EXIT_MODE => Self::ActivateExitMode,
            CALL_CLAIM => Self::ClaimLease,
            CALL_HEARTBEAT => Self::Heartbeat,
            CALL_COUNCIL => Self::Council {
                action: CouncilAction::decode_from(r)?,
                sequence: r.u64()?,
                signature: CouncilSignature::decode_from(r)?,
            },
            CALL_EXIT => Self::Exit {
                account: Account::decode_from(r)?,
                proof: MerkleProof::decode_from(r)?,
                recipient: L1Address(r.array()?),
            },
            CALL_RECLAIM => Self::Reclaim { position: r.u64()? },
            tag => return Err(DecodeError::UnknownTag { tag, at }),
        })
    }
}

/// A signed L1 transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L1Tx {
    /// Who signs (and pays, for a deposit).
    pub signer: PublicKey,
    /// The signer's L1 nonce: the number of its transactions the L1 has executed before.
    pub nonce: u64,
    /// What it asks.
    pub call: Call,
    /// Schnorr signature over [`L1Tx::message`].
    pub signature: Signature,
}

impl L1Tx {
    /// The message a transaction's signature covers.
    pub fn message(chain_id: u64, signer: &PublicKey, nonce: u64, call: &Call) -> Fr {
        let mut h = blake2b_simd::Params::new().hash_length(64).to_state();
        h.update(b"keel/l1-tx/v1");
        h.update(&chain_id.to_be_bytes());
        h.update(&signer.to_bytes());
        h.update(&nonce.to_be_bytes());
        h.update(&call.encode());
        Fr::from_uniform_bytes(h.finalize().as_array())
    }

    /// Builds and signs a transaction.
    pub fn sign(sk: &SecretKey, chain_id: u64, nonce: u64, call: Call) -> Self {
        let signer = sk.public_key();
        let signature = sk.sign(&[Self::message(chain_id, &signer, nonce, &call)]);
        Self {
            signer,
            nonce,
            call,
            signature,
        }
    }

    /// Whether the signature is the signer's over this transaction on `chain_id`.
    pub fn verify(&self, chain_id: u64) -> bool {
        let msg = Self::message(chain_id, &self.signer, self.nonce, &self.call);
        self.signer.verify(&[msg], &self.signature).is_ok()
    }

    /// The signer's L1 address.
    pub fn sender(&self) -> L1Address {
        address_of(&self.signer)
    }
}

impl Encode for L1Tx {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(TX_VERSION);
        out.extend_from_slice(&self.signer.to_bytes());
        out.extend_from_slice(&self.nonce.to_be_bytes());
        self.call.encode_to(out);
        out.extend_from_slice(&self.signature.to_bytes());
    }
}

impl Decode for L1Tx {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let version = r.u8()?;
        if version != TX_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        Ok(Self {
            signer: PublicKey::decode_from(r)?,
            nonce: r.u64()?,
            call: Call::decode_from(r)?,
            signature: Signature::decode_from(r)?,
        })
    }
}

/// The L1 address of a key.
pub fn address_of(pk: &PublicKey) -> L1Address {
    let h = blake2b_simd::Params::new()
        .hash_length(32)
        .to_state()
        .update(b"keel/l1-address/v1")
        .update(&pk.to_bytes())
        .finalize();
    let mut a = [0; 20];
    a.copy_from_slice(&h.as_bytes()[12..]);
    L1Address(a)
}

#[cfg(test)]
mod tests {
    use keel_state::{
        test_utils::{key, signed_transfer},
        AccountIndex, Decode, Encode, Fr, L1Address, MerkleProof,
    };
    use proptest::prelude::*;

    use super::*;

    /// A council signature (over nothing in particular: the encoding is what is tested).
    fn council_signature() -> crate::CouncilSignature {
        use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};
        static SIG: std::sync::OnceLock<crate::CouncilSignature> = std::sync::OnceLock::new();
        *SIG.get_or_init(|| {
            let (keys, public) = crate::council::dkg(3, 2, ChaCha20Rng::seed_from_u64(9)).unwrap();
            let signers: Vec<_> = keys.keys().take(2).copied().collect();
            crate::council::sign(
                &keys,
                &public,
                &signers,
                b"m",
                ChaCha20Rng::seed_from_u64(10),
            )
            .unwrap()
        })
    }

    fn calls(amount: u64, blob: Vec<u8>) -> Vec<Call> {
        let pk = key(1).public_key();
        vec![
            Call::SubmitBatch {
                data: blob.clone(),
                proof: blob.iter().rev().copied().collect(),
            },
            Call::Deposit { pk, amount },
            Call::Force(signed_transfer(0, 1, amount, 3)),
            Call::ActivateExitMode,
            Call::ClaimLease,
            Call::Heartbeat,
            Call::Council {
                action: CouncilAction::RotateSequencers(vec![pk, key(2).public_key()]),
                sequence: amount,
                signature: council_signature(),
            },
            Call::Council {
                action: CouncilAction::ActivateExitMode,
                sequence: amount,
                signature: council_signature(),
            },
            Call::Exit {
                account: Account {
                    pk,
                    balance: amount,
                    nonce: 9,
                },
                proof: MerkleProof {
                    index: AccountIndex(5),
                    siblings: vec![Fr::from(amount), Fr::one()],
                },
                recipient: L1Address([3; 20]),
            },
            Call::Reclaim { position: amount },
        ]
    }

    proptest! {
        #[test]
        fn every_call_round_trips_and_its_signature_binds_it(
            amount in any::<u64>(),
            nonce in any::<u64>(),
            blob in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            for call in calls(amount, blob.clone()) {
                let tx = L1Tx::sign(&key(2), 5, nonce, call);
                let bytes = tx.encode();
                prop_assert_eq!(L1Tx::decode(&bytes).unwrap(), tx.clone());
                prop_assert!(tx.verify(5));
                prop_assert!(!tx.verify(6));
                let mut other = tx.clone();
                other.nonce = nonce.wrapping_add(1);
                prop_assert!(!other.verify(5));
                // a truncated or extended encoding is refused, never misread
                prop_assert!(L1Tx::decode(&bytes[..bytes.len() - 1]).is_err());
                let mut longer = bytes.clone();
                longer.push(0);
                prop_assert!(L1Tx::decode(&longer).is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = L1Tx::decode(&bytes);
            let _ = Call::decode(&bytes);
        }
    }

    #[test]
    fn unknown_versions_and_tags_are_refused() {
        let tx = L1Tx::sign(&key(2), 5, 0, Call::ClaimLease);
        let mut bytes = tx.encode();
        bytes[0] = TX_VERSION + 1;
        assert_eq!(
            L1Tx::decode(&bytes),
            Err(DecodeError::UnknownVersion(TX_VERSION + 1))
        );
        assert!(matches!(
            Call::decode(&[0x7f]),
            Err(DecodeError::UnknownTag { tag: 0x7f, at: 0 })
        ));
        // a blob longer than allowed is refused before any allocation
        let mut huge = vec![CALL_SUBMIT];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Call::decode(&huge),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn addresses_differ_per_key() {
        assert_ne!(
            address_of(&key(1).public_key()),
            address_of(&key(2).public_key())
        );
        assert_eq!(
            address_of(&key(1).public_key()),
            address_of(&key(1).public_key())
        );
    }
}
