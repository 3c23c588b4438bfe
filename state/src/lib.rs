//! # keel-state: the rollup's rules, defined once
//!
//! Every other part of Keel (the sequencer that orders operations, the prover that proves them,
//! the L1 rules that settle them, the exit tool that rebuilds state from L1 data) calls this crate
//! for what an operation means. The circuit proves exactly what [`Pending::apply`] does.
//!
//! ```text
//!  bytes ──decode──▶ BatchOp ──▶ Pending::apply ──▶ OpWitness ─┐
//!  (encoding.rs)    (ops.rs)     (stf.rs: rules,                ├─▶ BatchWitness ──▶ prover
//!                                 overlay on State)             │   (witness.rs)
//!                      │               │ reads/writes           │
//!                      ▼               ▼                        ▼
//!              signature.rs      tree.rs (Poseidon SMT) ──▶ ChangeSet ──commit──▶ StateStore
//!              (Schnorr over     poseidon.rs                                      (MemStore |
//!               Grumpkin)                                                         RocksStore)
//!                                            Batch (batch.rs): header + ops + data commitment
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`poseidon`] | the one Poseidon permutation and its domain-separated sponges (the prover's circuit chip computes the same) |
//! | [`signature`] | Schnorr over Grumpkin: keys, deterministic signing, verification, encodings |
//! | [`tree`] | the sparse Merkle tree: empty subtrees, paths, proofs |
//! | [`store`] | the storage seam: in-memory and RocksDB stores, atomic change sets |
//! | [`ops`], [`account`], [`batch`] | operations, accounts, batches; their encodings and hashes |
//! | [`rules`] | the account rules alone (no tree): shared by the STF and the sequencer's admission |
//! | [`stf`] | the state-transition function and its typed errors |
//! | [`witness`] | what the circuit needs, with a self-check |
//! | [`encoding`] | the canonical binary encoding's reader and errors |

pub mod account;
pub mod batch;
pub mod cpu;
mod curve;
pub mod encoding;
pub mod field;
pub mod ids;
pub mod ops;
pub mod poseidon;
pub mod rules;
pub mod signature;
pub mod stf;
pub mod store;
pub mod tree;
#[cfg(feature = "serde")]
pub mod wire;
pub mod witness;

#[cfg(feature = "test-utils")]
pub mod test_utils;

pub use account::Account;
pub use batch::{data_commitment, Batch};
pub use encoding::{Decode, DecodeError, Encode};
pub use field::Fr;
pub use ids::{AccountIndex, BadL1Address, BatchNumber, Epoch, L1Address};
pub use ops::{BatchOp, Deposit, QueueEntry, SignedOp, Transfer, Withdraw};
pub use signature::{PreparedSignature, PublicKey, SecretKey, Signature, SignatureError};
pub use stf::{BatchError, OpenError, Pending, PlannedBatch, State, StfError};
pub use store::{MemStore, RocksStore, RocksStoreOptions, StateStore, StoreError};
pub use tree::{MerkleProof, DEFAULT_DEPTH, MAX_DEPTH};
pub use witness::{BatchWitness, LeafUpdate, OpWitness, Outcome};
