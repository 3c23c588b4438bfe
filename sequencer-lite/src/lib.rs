//! # keel-sequencer: the primary sequencer and its standby replica
//!
//! Takes signed operations from citizens and L1 queue entries from the L1 follower, orders them
//! first come first served, makes every acknowledged one durable, cuts them into batches, and
//! streams the batches to provers and standby sequencers.
//!
//! ```text
//!  HTTP POST /v1/ops ─▶ api.rs ─▶ Sequencer::submit ─▶ admission.rs (keel_state::rules vs the
//!  L1 follower ──────────────────▶ submit_l1 ─────────┘    accounts as admitted so far)
//!                                                            │ seq, in order
//!                                                            ▼
//!                                   wal.rs group commit (RocksDB, fsync policy) ─▶ acknowledged
//!                                                            │ durable
//!                                                            ▼
//!                  batcher: capacity | deadline ─▶ State::plan_batch (tree, witness)
//!                  ─▶ log the batch (fsync) ─▶ State::commit_batch ─▶ subscribers:
//!                       in process: Sequencer::subscribe (crossbeam, with witnesses)
//!                       network:    GET /v1/stream?from=n (client.rs: BatchStream)
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | settings and their defaults |
//! | [`sequencer`] | the core: admission, group commit, batching, recovery, subscriptions |
//! | [`wal`] | the write-ahead log's records |
//! | [`api`] | the HTTP JSON API and the network batch stream |
//! | [`client`] | the API's client, with fail-over along a list of endpoints |
//! | [`follow`] | submitting an operation and following it to a durability level, across a failover |
//! | [`wallet`] | one account's key on a client: signing with the next nonce, submitting, following |
//! | [`node`] | the node's view (`/v1/node`): its role, proofs and committer |
//! | [`replica`] | a standby's replica: the stream checked with our own STF, acknowledged, durable |
//! | [`error`] | typed refusals (reason code, HTTP status) and failures |

pub mod ack;
pub(crate) mod admission;
pub mod api;
pub mod client;
pub mod config;
pub mod error;
pub mod follow;
mod metrics;
pub mod node;
pub mod replica;
pub mod sequencer;
pub mod wal;
pub mod wallet;

pub use client::{BatchStream, Client, ClientError};
pub use config::{FsyncPolicy, SequencerConfig};
pub use error::{Reason, SequencerError, SubmitError, WalError};
pub use follow::{Event, FollowError, Followed};
pub use replica::{Applied, Replica, ReplicaError, ReplicaStatus};
pub use sequencer::{Level, OpStatus, Progress, Sequencer, Status, StreamItem};
pub use wallet::{Wallet, WalletError};
