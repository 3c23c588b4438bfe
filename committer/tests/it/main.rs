//! keel-committer integration tests: every rule of the embedded L1, each shown to refuse, over
//! real proofs at test size (one operation, depth 3).

mod api;
mod conservation;
mod council;
mod crash;
mod fixture;
mod rpc;
mod rules;
mod service;
mod store;
