//! # keel-committer
//!
//! Will own the settlement-layer trait, the embedded L1 and its rollup rules (proof check,
//! checkpoints, forced-inclusion queue, sequencer lease and epochs, exit mode, council), the
//! committer service and the exit tool.
//!
//! Nothing is here yet: it arrives with the committer issue. The batch it settles and the queue
//! hash it checks are defined by `keel_state::Batch` and `keel_state::QueueEntry::chain`.
