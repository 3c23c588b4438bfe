//! # keel-benches
//!
//! Criterion benchmarks of Keel, each figure beside a named peer measured in the same run. The
//! benchmarks live in `benches/`; figures and the machines they were taken on are in
//! `BENCHMARKS.md` at the workspace root.
//!
//! - `stf`: native state transitions, Poseidon, signature checks, tree updates
//!   (`cargo bench -p keel-benches -- stf`).
