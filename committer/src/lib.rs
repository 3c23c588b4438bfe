//! # keel-committer: where the rollup settles
//!
//! The rules that make a failed sequencer survivable live here, on the L1 side:
//!
//! ```text
//!  sequencer ──L1Tx::SubmitBatch{data, proof}──▶ SettlementLayer ◀── citizens: Deposit, Force,
//!  standby   ──L1Tx::ClaimLease────────────────▶  (EmbeddedL1:        ActivateExitMode, Exit
//!                                                   rules + RocksDB)
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`settlement`] | the seam to any L1: [`SettlementLayer`] (reads) and [`Settler`] (role-level writes, signed by the implementation), their views, receipts and typed [`Rejection`]s; [`EmbeddedChain`] (the embedded chain's own transactions) and [`Keyed`], a settler on it |
//! | [`embedded`] | [`EmbeddedL1`]: the default L1, a single-node chain persisted in RocksDB, and its rules |
//! | [`tx`] | signed L1 transactions ([`L1Tx`], [`Call`]) with replay protection |
//! | [`genesis`] | what a deployment fixes at its start |
//! | [`council`] | the council's key on every L1: FROST over secp256k1 with its DKG ([`CouncilKey`], [`CouncilSignature`]) |
//! | [`committer`] | the [`Committer`] service: proven batches in any order, posted in order, exactly once |
//! | [`api`] | the committer's HTTP API (what `keel committer` serves): proven batches from provers in other processes, checked against the L1, the paired sequencer and the verifier before they are held; [`CommitterClient`] |
//! | [`follower`] | the [`QueueFollower`]: the L1's forced-inclusion queue, handed to the sequencer in order |
//! | [`reconstruct`] | the state rebuilt from L1 data alone, and the exit built from it |
//! | [`rpc`] | the L1's JSON-RPC API (what `keel l1` serves) and [`RpcL1`], its client as a [`SettlementLayer`] |
//! | [`sla`] | the published deadlines |
//!
//! ## The rules the embedded L1 enforces
//!
//! - **A batch** is accepted only from the lease holder, carrying the current epoch, numbered
//!   next, starting from the last proven root and the consumed-queue hash, consuming exactly the
//!   next queue entries in order, with data that matches its commitment and a proof that verifies
//!   (verifying key pinned at genesis) for the public inputs that data implies. The L1 derives
//!   the public inputs from the posted data; it never takes them on trust.
//! - **The forced-inclusion queue**: anyone enqueues a deposit (the L1 assigns the account index)
//!   or a signed transfer. Once the oldest unserved entry is older than the forced-inclusion
//!   deadline, or no batch was proven for the proof deadline, anyone may activate exit mode.
//! - **Exit mode**: batches, deposits and claims stop; each account exits once, by its owner, with
//!   a Merkle proof against the last proven root, and is paid from the rollup's escrow.
//!   Withdrawals in proven batches are paid when the batch is accepted. A deposit still queued
//!   (no proven batch consumed it) is refunded to the L1 address that paid it (`Reclaim`), so
//!   the escrow pays out in full.
//! - **The sequencer lease**: a registered sequencer may claim it (epoch + 1) once the holder has
//!   settled no batch and sent no heartbeat for the failover timeout. Heartbeats keep a holder
//!   whose proofs are slow from being replaced; one that never proves is still caught by the
//!   proof deadline.
//! - **The council**: a t-of-n FROST(secp256k1) key from a DKG ([`council`], default 6-of-8) whose signature,
//!   numbered against replay, may rotate the sequencer set or activate exit mode. No call lets it
//!   post a batch, change a root or move a balance; a sequencer it installs is bound by every
//!   batch rule above.
//!
//! Forced *withdrawals* are refused at the queue for now: whether one succeeded on L2 is not a
//! public input of the batch proof, so the L1 could not know whether to pay it.

pub mod api;
pub mod committer;
pub mod council;
pub mod embedded;
pub mod follower;
pub mod genesis;
pub mod reconstruct;
pub mod rpc;
pub mod settlement;
pub mod sla;
pub mod tx;

pub use api::{CommitterApi, CommitterClient, Courier, OfferError, SequencedBatches};
pub use committer::{Committer, CommitterConfig, CommitterError, CommitterStatus, Offered};
pub use council::{CouncilKey, CouncilSignature};
pub use embedded::{BlockProducer, EmbeddedL1, OpenError};
pub use follower::QueueFollower;
pub use genesis::Genesis;
pub use reconstruct::{ReconstructError, Replayed};
pub use rpc::RpcL1;
pub use settlement::{
    Checkpoint, EmbeddedChain, Event, ExitMode, ExitReason, Head, Keyed, L1Error, Lease,
    PostedBatch, QueuedEntry, Receipt, Rejection, RollupView, Sequencer, SettlementLayer, Settler,
};
pub use sla::Deadlines;
pub use tx::{address_of, Call, CouncilAction, L1Tx};
