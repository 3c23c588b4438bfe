//! keel-prover integration tests. The GPU tests run on whatever adapter `require` finds: Mesa
//! lavapipe on a machine without a GPU. They fail (not skip) where there is none.

mod circuit;
mod gpu;
mod plonk;
mod prove;
