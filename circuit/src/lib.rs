//! # keel-circuit
//!
//! Keel's batch circuit, its keys and its verifier: everything a chain, a committer or an exit
//! tool needs to check a batch proof, with no GPU stack (`keel-prover` adds the engines and the
//! proving pipeline on top).
//!
//! ```text
//!  BatchWitness (keel-state) ──▶ circuit::Shape (N ops, depth D, 2^k rows) ──▶ BatchCircuit
//!   custom gates: Poseidon chip, Merkle gadget,   keys: dev SRS or ceremony file;
//!   Schnorr on incomplete additions, lookups      pk/vk cached by wiring digest
//!  BatchProof { public inputs, proof } ──▶ BatchVerifier: halo2-axiom's VerifierSHPLONK, unchanged
//! ```

pub mod circuit;
pub mod keys;
pub mod proof;

pub use circuit::{BadShape, BatchCircuit, CircuitError, PublicInputs, Shape, Statistics};
pub use keys::{BatchKeys, KeyError, KeySource, Srs};
pub use proof::{BatchProof, BatchVerifier, ProveError, Transcript};
