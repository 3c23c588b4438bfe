//! # keel-prover
//!
//! The GPU runtime and its engines and the proving pipeline, over the batch circuit, its keys and
//! its verifier (`keel-circuit`, re-exported here as [`circuit`] and [`keys`]).
//!
//! ```text
//!  BatchWitness (keel-state) ──▶ circuit::Shape (N ops, depth D, 2^k rows) ──▶ BatchProver::prove
//!   custom gates: Poseidon chip, Merkle gadget,  keys: dev SRS or ceremony file; │ create_proof::<MsmKzg, Shplonk>
//!   Schnorr on incomplete additions, lookups     pk/vk cached by wiring digest   │   commitments ──▶ Msm engine
//!  BatchProof { public inputs, proof } ◀────────────────────────────────────────┘   (GpuMsm | CpuMsm)
//!        └──▶ BatchVerifier: halo2-axiom's VerifierSHPLONK on ParamsKZG, unchanged
//! ```
//!
//! ```text
//!  GpuPolicy (auto | require | off)
//!        │ GpuContext::acquire: discrete > integrated > virtual > software
//!        ▼
//!  GpuContext ── device, queue, limits, SHADER_INT64? ──▶ limb width (32 or 16 bits)
//!        │
//!        ▼
//!  GpuMsm::new(ctx, bases)          bases converted and uploaded once, kept resident
//!        │ msm(scalars)             decompose → scan → scatter → accumulate   (per chunk)
//!        │                          reduce (segments, then windows)            (once)
//!        ▼                          CPU: Horner over the window sums
//!  G1 ══ exact equality with CpuMsm (halo2-axiom's best_multiexp), in the tests
//! ```
//!
//! ```text
//!  worker::run: batch stream ─▶ shadow state (STF) ─▶ witness ─▶ lay out (circuit, synthesis)
//!        ─▶ prove on a proving thread (this shard's batches) ─▶ sink
//!        the next batches are applied and laid out while a proof runs (WorkerConfig::pipeline)
//! ```
//!
//! Both engines implement [`gpu::Msm`], so callers (the KZG commitment wrapper) do not care
//! which one they hold.

pub use keel_circuit::{circuit, keys};
pub mod gpu;
pub mod kzg;
pub mod plonk;
pub mod prove;
pub mod worker;

pub use circuit::{BadShape, BatchCircuit, CircuitError, PublicInputs, Shape, Statistics};
pub use keys::{BatchKeys, KeyError, KeySource, Srs};
pub use kzg::{MsmKzg, MsmParams, Shplonk};
pub use prove::{
    sample_witness, BatchProof, BatchProver, BatchVerifier, Engine, LaidOut, Pipelined, Progress,
    ProveError, SampleError, Timings, Transcript,
};
