//! keel-state integration tests: one binary, one module per area.

mod encoding;
mod fuzz;
mod persistence;
mod poseidon_circuit;
mod props;
mod signature;
mod stf;
