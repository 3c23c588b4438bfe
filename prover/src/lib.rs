//! # keel-prover
//!
//! The GPU runtime and its engines, and (with the batch-circuit issue) the halo2 batch circuit,
//! key management and the proving service.
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
//! Both engines implement [`gpu::Msm`], so callers (the KZG commitment wrapper) do not care
//! which one they hold.

pub mod gpu;
