//! # keel-sequencer
//!
//! Will own the primary sequencer: ingest API, mempool, ordering, batching, the write-ahead log,
//! the batch stream, standby follow and take-over, and prover-task dispatch.
//!
//! Nothing is here yet: it arrives with the sequencer-lite issue. It will validate operations
//! against a `keel_state::Pending` overlay and cut batches with `keel_state::State::execute_batch`.
