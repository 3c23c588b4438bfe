//! # keel-prover
//!
//! Will own the GPU runtime (wgpu device, buffers, pipelines), the GPU MSM and NTT engines with
//! their CPU references, the halo2 batch circuit over `keel-state`'s batch witness, key
//! management, and the proving service.
//!
//! Nothing is here yet: it arrives with the GPU MSM and batch-circuit issues. The circuit's
//! inputs are already defined by `keel_state::BatchWitness`, and the Poseidon spec it must use by
//! `keel_state::poseidon::spec`.
