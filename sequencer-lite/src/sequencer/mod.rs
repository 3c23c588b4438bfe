//! The sequencer core: admission, the group-commit writer, the batcher, recovery and the
//! in-process batch stream. The HTTP API ([`crate::api`]) is a thin layer over it.
//!
//! ```text
//!  submit ─▶ hash message, challenge ─▶ verifier ─▶ lock: rules vs view, seq ─▶ WAL writer ─▶ ack
//!            (caller's core,             (group      (admission.rs)              (group commit,
//!             outside any lock)           check)                                  fsync policy)
//!                                   batcher: cut durable ops (capacity | deadline)
//!                                   ─▶ plan (tree, witness; state read lock) ─▶ log batch (fsync)
//!                                   ─▶ commit state ─▶ trim view ─▶ subscribers
//! ```
//!
//! The verifier threads (`verify_threads`, two by default) each check the signatures queued
//! since their last check as one batch ([`keel_state::signature::verify_batch`]: one shared
//! chain of doublings instead of a double-scalar product each). If a group fails, each of its
//! submitters checks its own signature, so one forged signature costs the others no more than
//! checking alone.
//!
//! CPU priority: acknowledging comes first. The batcher runs at niceness `batcher_nice`
//! (10 by default), so during a burst the hashing, signature checks and log take the cores and
//! the backlog is executed once the burst passes; the batcher still gets a share of a busy
//! machine, and `max_pending` bounds the backlog (refusals past it cost no signature work).
//!
//! Crash safety: an operation is acknowledged only after its group is in the log; a batch is
//! logged (with its operations, dropping their `a` records) before its state is committed. On
//! restart, logged batches the state lacks are re-executed and checked against the logged
//! header, and the remaining logged operations are re-admitted in order. So the sequencer
//! reopens at exactly the acknowledged state: nothing lost, nothing twice.
//!
//! | module | role |
//! |---|---|
//! | this one | the handle, its types and queries |
//! | `submit` | submission: limits, signatures, admission, the wait for a durability level |
//! | `durability` | the levels past `accepted`: standbys' signed acknowledgements, posted, proven |
//! | `verifier` | the verifier threads: signatures checked in groups |
//! | `writer` | the group-commit writer of the write-ahead log |
//! | `batcher` | cutting durable operations into batches and committing them |
//! | `stream` | the in-process batch stream and logged batches |
//! | `recovery` | opening: the state brought up to the log, the log's operations re-admitted |

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Condvar, Mutex, MutexGuard, RwLock,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, Sender};
use keel_state::{
    signature::verify_batch, Account, AccountIndex, Batch, BatchNumber, BatchOp, BatchWitness, Fr,
    PreparedSignature, PublicKey, QueueEntry, RocksStore, RocksStoreOptions, SignedOp, State,
    StfError,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

use crate::{
    ack::{Ack, AckError},
    admission::{self, Admission, Waiting},
    config::SequencerConfig,
    error::{SequencerError, SubmitError},
    metrics::Metrics,
    wal::{LogOp, Wal},
};

/// Recent witnesses kept for in-process subscribers.
const WITNESS_RING: usize = 64;

mod batcher;
mod durability;
mod recovery;
mod stream;
mod submit;
mod verifier;
mod writer;

pub(crate) use recovery::recover;
use verifier::{checked, VerifyJob};
use writer::WalMsg;

/// Durability levels, weakest first (DESIGN.md section 5).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// In the primary's write-ahead log.
    #[default]
    Accepted,
    /// A standby has its batch.
    Replicated,
    /// Its batch is in L1 data.
    Posted,
    /// Its batch's proof is on the L1.
    Proven,
}

impl Level {
    /// The level's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Replicated => "replicated",
            Self::Posted => "posted",
            Self::Proven => "proven",
        }
    }
}

/// Where an operation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpStatus {
    /// Its sequence number.
    pub seq: u64,
    /// The strongest level reached.
    pub level: Level,
    /// Its batch, once cut and committed.
    pub batch: Option<u64>,
}

/// Watermarks the later stages report (standbys, the committer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Operations up to this seq are in the log.
    pub durable_seq: u64,
    /// The last committed batch.
    pub last_batch: BatchNumber,
    /// Batches up to this one are held by a standby.
    pub replicated: BatchNumber,
    /// Batches up to this one are in L1 data.
    pub posted: BatchNumber,
    /// Batches up to this one are proven on the L1.
    pub proven: BatchNumber,
}

/// The sequencer's summary, as `GET /v1/status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Status {
    /// The epoch stamped on batches.
    pub epoch: u64,
    /// Tree depth.
    pub depth: u8,
    /// The next operation sequence number.
    pub next_seq: u64,
    /// Operations in the log.
    pub durable_seq: u64,
    /// Accepted operations not yet in a committed batch.
    pub waiting: usize,
    /// The last committed batch.
    pub last_batch: u64,
    /// The committed state root (`0x`, big-endian hex).
    #[serde(with = "keel_state::wire::fr")]
    #[schema(value_type = String)]
    pub root: keel_state::Fr,
    /// The next L1 queue index expected.
    pub next_l1: u64,
    /// Why the sequencer stopped accepting, if it did.
    pub halted: Option<String>,
    /// Batches up to this one are held by a registered standby (`replicated`).
    #[serde(default)]
    pub replicated: u64,
    /// Batches up to this one are in L1 data (`posted`).
    #[serde(default)]
    pub posted: u64,
    /// Batches up to this one are proven on the L1 (`proven`).
    #[serde(default)]
    pub proven: u64,
}

/// A batch as subscribers receive it; in-process subscribers also get its witness while it is
/// recent (the last 64 batches).
#[derive(Clone, Debug)]
pub struct StreamItem {
    /// The batch.
    pub batch: Batch,
    /// Its witness, if still held.
    pub witness: Option<BatchWitness>,
}

pub(crate) struct Inner {
    pub(crate) config: SequencerConfig,
    state: RwLock<State<RocksStore>>,
    pub(crate) wal: Wal,
    adm: Mutex<Admission>,
    /// Woken when operations become durable, when a batch commits, and at shutdown.
    wake: Condvar,
    wal_tx: Mutex<Option<Sender<WalMsg>>>,
    verify_tx: Mutex<Option<Sender<VerifyJob>>>,
    durable_seq: AtomicU64,
    pub(crate) progress: watch::Sender<Progress>,
    witnesses: Mutex<VecDeque<BatchWitness>>,
    pub(crate) metrics: Metrics,
    shutdown: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The keys whose acknowledgements count ([`Sequencer::set_standbys`]).
    standbys: RwLock<Vec<PublicKey>>,
}

/// The primary sequencer. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Sequencer {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("dir", &self.inner.config.dir)
            .finish()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sequencer {
    /// The configuration.
    pub fn config(&self) -> &SequencerConfig {
        &self.inner.config
    }

    /// The Prometheus text exposition that `GET /metrics` serves: counters, then gauges from
    /// [`Sequencer::status`] (`NaN` if the state cannot be read).
    pub fn metrics_text(&self) -> String {
        let st = self.status().ok();
        let g = |f: fn(&Status) -> f64| st.as_ref().map_or(f64::NAN, f);
        self.inner.metrics.render(&[
            (
                "keel_sequencer_waiting",
                "Accepted operations waiting for a batch.",
                g(|s| s.waiting as f64),
            ),
            (
                "keel_sequencer_last_batch",
                "The last committed batch.",
                g(|s| s.last_batch as f64),
            ),
            (
                "keel_sequencer_next_seq",
                "The next operation sequence number.",
                g(|s| s.next_seq as f64),
            ),
            (
                "keel_sequencer_halted",
                "1 if the sequencer stopped accepting.",
                g(|s| f64::from(u8::from(s.halted.is_some()))),
            ),
        ])
    }

    /// The account as admitted so far (including operations not yet in a batch).
    pub fn account(&self, index: AccountIndex) -> Result<Option<Account>, StfError> {
        self.inner.account(&lock(&self.inner.adm), index)
    }

    /// The account in the last committed batch's state.
    pub fn committed_account(&self, index: AccountIndex) -> Result<Option<Account>, StfError> {
        let state = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
        state.account(index)
    }

    /// Where operation `seq` stands; `None` if no such operation was accepted.
    pub fn op_status(&self, seq: u64) -> Option<OpStatus> {
        let adm = lock(&self.inner.adm);
        if seq == 0 || seq >= adm.next_seq || seq > self.inner.durable_seq.load(Ordering::Acquire) {
            return None;
        }
        let batch = adm.batch_of(seq);
        let p = *self.inner.progress.borrow();
        let level = match batch {
            Some(b) if p.proven >= b => Level::Proven,
            Some(b) if p.posted >= b => Level::Posted,
            Some(b) if p.replicated >= b => Level::Replicated,
            _ => Level::Accepted,
        };
        Some(OpStatus {
            seq,
            level,
            batch: batch.map(|b| b.0),
        })
    }

    /// The sequencer's summary.
    pub fn status(&self) -> Result<Status, SequencerError> {
        let adm = lock(&self.inner.adm);
        let state = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
        let p = *self.inner.progress.borrow();
        Ok(Status {
            epoch: self.inner.config.epoch.0,
            depth: state.depth(),
            next_seq: adm.next_seq,
            durable_seq: self.inner.durable_seq.load(Ordering::Acquire),
            waiting: adm.uncommitted(),
            last_batch: state.last_batch().0,
            root: state.root()?,
            next_l1: adm.next_l1,
            halted: adm.halted.clone(),
            replicated: p.replicated.0,
            posted: p.posted.0,
            proven: p.proven.0,
        })
    }

    /// The committed state root.
    pub fn root(&self) -> Result<Fr, SequencerError> {
        let state = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
        Ok(state.root()?)
    }

    /// Watermarks, and a way to wait for them to move.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.inner.progress.subscribe()
    }

    /// Whether [`Sequencer::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shutdown.load(Ordering::Acquire)
    }

    /// Stops accepting and stops the threads once the batch being cut (if any) is committed.
    /// Operations still waiting stay in the log; the next [`Sequencer::open`] re-admits them.
    pub fn shutdown(&self) {
        let inner = &self.inner;
        lock(&inner.adm)
            .halted
            .get_or_insert_with(|| "shut down".into());
        lock(&inner.wal_tx).take();
        lock(&inner.verify_tx).take();
        inner.shutdown.store(true, Ordering::Release);
        inner.wake.notify_all();
        // network streams wait on the progress watch: wake them to see the shutdown
        inner.progress.send_modify(|_| {});
        let threads = std::mem::take(&mut *lock(&inner.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Inner {
    /// The account as admitted so far (`adm` is the locked admission state).
    fn account(&self, adm: &Admission, index: AccountIndex) -> Result<Option<Account>, StfError> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        adm.account(index, &|i| state.account(i))
    }

    /// The refusals that need neither the state nor a signature: a halted sequencer, a full
    /// mempool, a sender (`None` for an L1 entry) at its share of it.
    fn limits(&self, adm: &Admission, sender: Option<AccountIndex>) -> Result<(), SubmitError> {
        if let Some(why) = &adm.halted {
            return Err(SubmitError::Halted(why.clone()));
        }
        if adm.uncommitted() >= self.config.max_pending {
            return Err(SubmitError::MempoolFull {
                limit: self.config.max_pending,
            });
        }
        if let Some(from) = sender {
            if adm.per_account.get(&from).copied().unwrap_or(0) >= self.config.max_per_account {
                return Err(SubmitError::AccountLimit {
                    account: from.0,
                    limit: self.config.max_per_account,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
