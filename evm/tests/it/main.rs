//! keel-evm's integration tests: the generated Solidity, and the contracts on anvil (from the
//! npm package that `./keel.sh` installs in contracts/).

mod conformance;
mod conservation;
mod council;
mod generated;
mod harness;
mod l1;
mod poseidon;
mod reorg;
mod rollup;
mod verifier;
