//! # keel-shaders
//!
//! Will hold the WGSL sources of Keel's GPU kernels (BN254 field and G1 arithmetic, MSM and NTT
//! stages) and their composition into modules, validated with naga on the CPU.
//!
//! Nothing is here yet: the kernels arrive with the GPU MSM issue. This crate exports nothing
//! until then, so nothing can depend on a kernel that does not exist.
