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

/// Durability levels, weakest first (DESIGN.md section 5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    pub root: String,
    /// The next L1 queue index expected.
    pub next_l1: u64,
    /// Why the sequencer stopped accepting, if it did.
    pub halted: Option<String>,
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

struct WalMsg {
    op: LogOp,
    done: oneshot::Sender<Result<(), String>>,
}

/// A signature for the verifier thread. The answer: `Some(valid)` when it is known, `None`
/// when the group failed and the submitter must check its own signature.
struct VerifyJob {
    sig: PreparedSignature,
    done: oneshot::Sender<Option<bool>>,
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

/// Lowers the calling thread's priority to niceness `nice` (capped at 19) where threads have
/// their own (Linux). It never raises it: a thread already at `nice` or above (say, a node
/// started under `nice -n 15`) is left alone. A failure is logged and changes nothing else.
fn lower_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // On Linux the nice value is per thread: `None` (0) names the calling thread.
        use rustix::process::{getpriority_process, setpriority_process};
        let nice = nice.min(19);
        let result = getpriority_process(None).and_then(|current| {
            if current < nice {
                setpriority_process(None, nice)
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            tracing::warn!(target: "keel::sequencer", nice, error = %e, "could not lower the batcher's priority");
        }
    }
}

/// `pk` if the signature is valid: the verifier's answer when it has one, else checked here.
fn checked(pk: PublicKey, sig: &PreparedSignature, group: Option<bool>) -> Option<PublicKey> {
    group.unwrap_or_else(|| sig.verify().is_ok()).then_some(pk)
}

/// Opens the state and the log in `config.dir` and brings the state up to the log: batches
/// logged but not committed (a crash between the two writes) are re-executed and checked against
/// their logged headers. Shared by the primary and the standby's replica, which keep the same
/// layout.
pub(crate) fn recover(
    config: &SequencerConfig,
) -> Result<(State<RocksStore>, Wal, crate::wal::Recovered), SequencerError> {
    std::fs::create_dir_all(&config.dir)?;
    let store = RocksStore::open(config.dir.join("state"), RocksStoreOptions::default())?;
    let mut state = State::open(store, config.depth)?;
    let wal = Wal::open(&config.dir.join("wal"), config.fsync)?;
    let rec = wal.recover()?;

    let logged_last = rec.batches.last().map_or(BatchNumber(0), |b| b.1);
    for (i, (_, n)) in rec.batches.iter().enumerate() {
        if n.0 != i as u64 + 1 {
            return Err(SequencerError::Recovery(format!(
                "logged batches jump to {n} after {i}"
            )));
        }
    }
    if state.last_batch() > logged_last {
        return Err(SequencerError::Recovery(format!(
            "the state is at batch {} but the log ends at batch {logged_last}",
            state.last_batch()
        )));
    }
    let committed_last = state.last_batch();
    for (_, n) in rec.batches.iter().filter(|b| b.1 > committed_last) {
        let logged = wal
            .batch(*n)?
            .ok_or_else(|| SequencerError::Recovery(format!("batch {n} vanished")))?;
        let planned = state.plan_batch(logged.batch.epoch, logged.batch.ops.clone())?;
        if planned.witness().batch != logged.batch {
            return Err(SequencerError::Recovery(format!(
                "re-executing logged batch {n} gives another header"
            )));
        }
        state.commit_batch(planned)?;
        tracing::info!(target: "keel::sequencer", batch = %n, "recovered a logged batch");
    }
    Ok((state, wal, rec))
}

impl Sequencer {
    /// Opens the sequencer in `config.dir`, recovering from its log, and starts the writer and
    /// batcher threads.
    pub fn open(config: SequencerConfig) -> Result<Self, SequencerError> {
        let (state, wal, rec) = recover(&config)?;

        let mut adm = Admission {
            next_seq: rec
                .ops
                .last()
                .map(|o| o.0)
                .max(rec.batches.last().map(|b| b.0))
                .unwrap_or(0)
                + 1,
            next_l1: rec.next_l1,
            batches: rec.batches.clone(),
            ..Default::default()
        };
        let depth = state.depth();
        let committed = |i| state.account(i);
        let recovered_ops = rec.ops.len();
        for (seq, op) in rec.ops {
            let writes = adm.check(&op, depth, &committed, None).map_err(|e| {
                SequencerError::Recovery(format!("logged operation {seq} no longer applies: {e}"))
            })?;
            adm.next_seq = seq;
            adm.record(op, writes);
        }
        let durable = adm.next_seq - 1;
        let last_batch = state.last_batch();
        tracing::info!(target: "keel::sequencer", batch = %last_batch, waiting = recovered_ops, next_seq = adm.next_seq, "sequencer opened");

        let (wal_tx, wal_rx) = crossbeam_channel::unbounded();
        let (verify_tx, verify_rx) = crossbeam_channel::unbounded();
        let (progress, _) = watch::channel(Progress {
            durable_seq: durable,
            last_batch,
            ..Default::default()
        });
        let inner = Arc::new(Inner {
            config,
            state: RwLock::new(state),
            wal,
            adm: Mutex::new(adm),
            wake: Condvar::new(),
            wal_tx: Mutex::new(Some(wal_tx)),
            verify_tx: Mutex::new(Some(verify_tx)),
            durable_seq: AtomicU64::new(durable),
            progress,
            witnesses: Mutex::new(VecDeque::new()),
            metrics: Metrics::default(),
            shutdown: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            standbys: RwLock::new(Vec::new()),
        });
        let writer = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("keel-wal".into())
                .spawn(move || inner.write_loop(wal_rx))?
        };
        let verifiers = (0..inner.config.verify_threads.max(1))
            .map(|_| {
                let (inner, rx) = (inner.clone(), verify_rx.clone());
                std::thread::Builder::new()
                    .name("keel-verify".into())
                    .spawn(move || inner.verify_loop(rx))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batcher = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("keel-batcher".into())
                .spawn(move || inner.batch_loop())?
        };
        lock(&inner.threads).extend([writer, batcher].into_iter().chain(verifiers));
        Ok(Self { inner })
    }

    /// The configuration.
    pub fn config(&self) -> &SequencerConfig {
        &self.inner.config
    }

    /// Admits a signed operation and returns once it is in the log (per the fsync policy).
    pub async fn submit(&self, op: SignedOp) -> Result<u64, SubmitError> {
        let verified = match self.prepare(&op)? {
            Some((pk, sig)) => {
                let group = match self.queue_check(sig) {
                    Some(rx) => rx.await.ok().flatten(),
                    None => None,
                };
                checked(pk, &sig, group)
            }
            None => None,
        };
        let (seq, done) = self.admit(BatchOp::L2(op), None, verified)?;
        self.inner.durable(seq, done.await)
    }

    /// [`Sequencer::submit`] for callers outside an async runtime.
    pub fn submit_blocking(&self, op: SignedOp) -> Result<u64, SubmitError> {
        let verified = self.prepare(&op)?.and_then(|(pk, sig)| {
            let group = self
                .queue_check(sig)
                .and_then(|rx| rx.blocking_recv().ok().flatten());
            checked(pk, &sig, group)
        });
        let (seq, done) = self.admit(BatchOp::L2(op), None, verified)?;
        self.inner.durable(seq, done.blocking_recv())
    }

    /// Sequences L1 queue entry `index` (from the L1 follower). Entries must come in queue
    /// order; one already sequenced is ignored (`Ok(None)`), so a follower may resend after a
    /// restart.
    pub fn submit_l1_blocking(
        &self,
        index: u64,
        entry: QueueEntry,
    ) -> Result<Option<u64>, SubmitError> {
        let next = lock(&self.inner.adm).next_l1;
        if index < next {
            return Ok(None);
        }
        let (seq, done) = self.admit(BatchOp::L1(entry), Some(index), None)?;
        self.inner.durable(seq, done.blocking_recv()).map(Some)
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

    /// Waits until operation `seq` reaches `level`, for at most `timeout`.
    pub async fn wait_for(
        &self,
        seq: u64,
        level: Level,
        timeout: Duration,
    ) -> Result<OpStatus, SubmitError> {
        let mut rx = self.inner.progress.subscribe();
        let wait = async {
            loop {
                if let Some(s) = self.op_status(seq) {
                    if s.level >= level {
                        return Ok(s);
                    }
                }
                if rx.changed().await.is_err() {
                    return Err(SubmitError::Halted("shut down".into()));
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(SubmitError::WaitTimeout {
                seq,
                level: level.name(),
            }))
    }

    /// The sender's key and the signature with its challenge hashed, outside any lock (keys
    /// never change once an account exists). `None` if the account is unknown: the rules then
    /// report it.
    ///
    /// The limits that need no signature (halted, mempool full, the sender's share) are checked
    /// first, under the same lock: a refused operation, a flood from one account say, costs no
    /// hashing and no curve work. [`Sequencer::admit`] checks them again, authoritatively.
    fn prepare(
        &self,
        op: &SignedOp,
    ) -> Result<Option<(PublicKey, PreparedSignature)>, SubmitError> {
        let account = {
            let adm = lock(&self.inner.adm);
            if let Err(e) = self.inner.limits(&adm, Some(op.from())) {
                self.inner.metrics.reject(e.reason().as_str());
                return Err(e);
            }
            self.inner.account(&adm, op.from())
        };
        Ok(account
            .ok()
            .flatten()
            .map(|a| (a.pk, a.pk.prepare(&op.message(), op.signature()))))
    }

    /// Queues the curve check for the verifier thread (`None` once it has stopped).
    fn queue_check(&self, sig: PreparedSignature) -> Option<oneshot::Receiver<Option<bool>>> {
        let (done, rx) = oneshot::channel();
        lock(&self.inner.verify_tx)
            .as_ref()
            .and_then(|tx| tx.send(VerifyJob { sig, done }).ok())
            .map(|()| rx)
    }

    fn admit(
        &self,
        op: BatchOp,
        l1_index: Option<u64>,
        verified: Option<PublicKey>,
    ) -> Result<(u64, oneshot::Receiver<Result<(), String>>), SubmitError> {
        let inner = &self.inner;
        let result = (|| {
            let mut adm = lock(&inner.adm);
            inner.limits(&adm, admission::sender(&op))?;
            if let Some(i) = l1_index {
                if i != adm.next_l1 {
                    return Err(SubmitError::QueueOrder {
                        expected: adm.next_l1,
                        got: i,
                    });
                }
            }
            let writes = {
                let state = inner.state.read().unwrap_or_else(|p| p.into_inner());
                let committed = |i| state.account(i);
                adm.check(&op, inner.config.depth, &committed, verified.as_ref())?
            };
            let seq = adm.record(op, writes);
            if l1_index.is_some() {
                adm.next_l1 += 1;
            }
            let (done, rx) = oneshot::channel();
            let msg = WalMsg {
                op: LogOp { seq, op, l1_index },
                done,
            };
            // sent under the lock, so the log receives operations in sequence order
            let sent = lock(&inner.wal_tx)
                .as_ref()
                .is_some_and(|tx| tx.send(msg).is_ok());
            if !sent {
                adm.halted = Some("shutting down".into());
                return Err(SubmitError::Halted("shutting down".into()));
            }
            Ok((seq, rx))
        })();
        match &result {
            Ok(_) => {
                inner.metrics.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => inner.metrics.reject(e.reason().as_str()),
        }
        result
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
        Ok(Status {
            epoch: self.inner.config.epoch.0,
            depth: state.depth(),
            next_seq: adm.next_seq,
            durable_seq: self.inner.durable_seq.load(Ordering::Acquire),
            waiting: adm.uncommitted(),
            last_batch: state.last_batch().0,
            root: keel_state::field::fr_to_hex(&state.root()?),
            next_l1: adm.next_l1,
            halted: adm.halted.clone(),
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

    /// The standbys whose acknowledgements count: the rollup's other registered sequencers, as
    /// the node reads them from the L1. None by default, so a bare sequencer counts no
    /// acknowledgement and nothing it acknowledges reaches `replicated` by anyone's word.
    pub fn set_standbys(&self, keys: impl IntoIterator<Item = PublicKey>) {
        let keys: Vec<PublicKey> = keys.into_iter().collect();
        let mut s = self
            .inner
            .standbys
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if *s != keys {
            tracing::info!(target: "keel::sequencer", standbys = keys.len(), "registered standbys");
            *s = keys;
        }
    }

    /// Takes a standby's acknowledgement ([`crate::ack`]): a registered standby, this
    /// primary's epoch, a signature that verifies, and a batch logged here with that root;
    /// then the batch and every one before it are `replicated`. A refused one changes nothing.
    pub fn acknowledge(&self, ack: &Ack) -> Result<(), AckError> {
        let registered = self
            .inner
            .standbys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&ack.standby);
        if !registered {
            return Err(AckError::UnknownStandby(hex::encode(
                ack.standby.to_bytes(),
            )));
        }
        let current = self.inner.config.epoch;
        if ack.epoch != current {
            return Err(AckError::StaleEpoch {
                got: ack.epoch.0,
                current: current.0,
            });
        }
        ack.verify()?;
        match self.batch(ack.batch) {
            Ok(Some(b)) if b.new_root == ack.root => {
                self.mark_replicated(b.number);
                Ok(())
            }
            Ok(Some(b)) => Err(AckError::RootMismatch {
                batch: ack.batch.0,
                logged: keel_state::field::fr_to_hex(&b.new_root),
                got: keel_state::field::fr_to_hex(&ack.root),
            }),
            Ok(None) => Err(AckError::UnknownBatch(ack.batch.0)),
            Err(e) => Err(AckError::Store(e.to_string())),
        }
    }

    /// A standby holds batches up to `n` (called by the replication path).
    pub fn mark_replicated(&self, n: BatchNumber) {
        self.inner
            .progress
            .send_modify(|p| p.replicated = p.replicated.max(n));
    }

    /// Batches up to `n` are in L1 data (called by the committer).
    pub fn mark_posted(&self, n: BatchNumber) {
        self.inner
            .progress
            .send_modify(|p| p.posted = p.posted.max(n));
    }

    /// Batches up to `n` are proven on the L1 (called by the committer).
    pub fn mark_proven(&self, n: BatchNumber) {
        self.inner
            .progress
            .send_modify(|p| p.proven = p.proven.max(n));
    }

    /// The logged batch `n`, if it exists.
    pub fn batch(&self, n: BatchNumber) -> Result<Option<Batch>, SequencerError> {
        Ok(self.inner.wal.batch(n)?.map(|l| l.batch))
    }

    /// Subscribes in process from batch `from` (1 for everything): batches arrive in order, with
    /// no gap and no repeat, over a channel of `buffer` items. A subscriber that lags holds up
    /// only its own feeder thread (which reads old batches back from the log), never the
    /// sequencer. Dropping the receiver ends the subscription.
    ///
    /// The feeder thread ends with the subscription or at [`Sequencer::shutdown`], which waits
    /// for it; after shutdown, subscribing is refused ([`SequencerError::ShutDown`]).
    pub fn subscribe(
        &self,
        from: BatchNumber,
        buffer: usize,
    ) -> Result<Receiver<StreamItem>, SequencerError> {
        let mut threads = lock(&self.inner.threads);
        if self.is_shut_down() {
            return Err(SequencerError::ShutDown);
        }
        let (tx, rx) = crossbeam_channel::bounded(buffer.max(1));
        let inner = self.inner.clone();
        let feeder = std::thread::Builder::new()
            .name("keel-subscriber".into())
            .spawn(move || inner.feed(from.0.max(1), tx))?;
        threads.retain(|t| !t.is_finished());
        threads.push(feeder);
        Ok(rx)
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

    fn durable(
        &self,
        seq: u64,
        done: Result<Result<(), String>, oneshot::error::RecvError>,
    ) -> Result<u64, SubmitError> {
        match done {
            Ok(Ok(())) => Ok(seq),
            Ok(Err(e)) => Err(SubmitError::Halted(e)),
            Err(_) => Err(SubmitError::Halted("the log writer stopped".into())),
        }
    }

    fn halt(&self, why: String) {
        tracing::error!(target: "keel::sequencer", "halting: {why}");
        lock(&self.adm).halted.get_or_insert(why);
        self.wake.notify_all();
    }

    /// The group-commit writer: takes every operation queued since its last write, logs them
    /// in one write, then acknowledges them all.
    fn write_loop(&self, rx: Receiver<WalMsg>) {
        let max = self.config.group_max.max(1);
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            group.extend(rx.try_iter().take(max - 1));
            let ops: Vec<LogOp> = group.iter().map(|m| m.op.clone()).collect();
            let start = Instant::now();
            let result = self.wal.append(&ops);
            self.metrics.wal_group(ops.len(), start.elapsed());
            match result {
                Ok(()) => {
                    let last = ops.last().map_or(0, |o| o.seq);
                    self.durable_seq.store(last, Ordering::Release);
                    self.progress.send_modify(|p| p.durable_seq = last);
                    // take the lock so the batcher cannot miss the wake-up
                    drop(lock(&self.adm));
                    self.wake.notify_all();
                    for m in group {
                        let _ = m.done.send(Ok(()));
                    }
                }
                Err(e) => {
                    let why = format!("write-ahead log write failed: {e}");
                    self.halt(why.clone());
                    for m in group {
                        let _ = m.done.send(Err(why.clone()));
                    }
                }
            }
        }
    }

    /// Checks every signature queued since the last check as one batch and answers each
    /// submitter: valid, invalid (a group of one), or "check your own" (a failed group).
    fn verify_loop(&self, rx: Receiver<VerifyJob>) {
        let max = self.config.verify_group_max.max(1);
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            group.extend(rx.try_iter().take(max - 1));
            let sigs: Vec<PreparedSignature> = group.iter().map(|j| j.sig).collect();
            let start = Instant::now();
            let valid = verify_batch(&sigs);
            self.metrics
                .verify_group(sigs.len(), valid, start.elapsed());
            let answer = (valid || sigs.len() == 1).then_some(valid);
            for j in group {
                let _ = j.done.send(answer);
            }
        }
    }

    /// Cuts a batch when `capacity` durable operations wait or the oldest has waited
    /// `deadline`; returns once the sequencer halts (a batch being cut is finished first).
    fn batch_loop(&self) {
        lower_priority(self.config.batcher_nice);
        let cap = self.config.batch_capacity.max(1);
        let deadline = self.config.batch_deadline;
        loop {
            let cut: Vec<Waiting> = {
                let mut adm = lock(&self.adm);
                loop {
                    if adm.halted.is_some() {
                        // shut down, or a failed log write: cut nothing more (what waits is in
                        // the log, and the next start re-admits it)
                        return;
                    }
                    let durable = self.durable_seq.load(Ordering::Acquire);
                    let ready = adm.waiting.iter().take_while(|w| w.seq <= durable).count();
                    let age = adm.waiting.front().map(|w| w.since.elapsed());
                    if ready >= cap || (ready > 0 && age >= Some(deadline)) {
                        adm.in_flight = ready.min(cap);
                        break adm.waiting.drain(..ready.min(cap)).collect();
                    }
                    let wait = match age {
                        Some(a) if ready > 0 => deadline.saturating_sub(a),
                        _ => deadline,
                    };
                    adm = self
                        .wake
                        .wait_timeout(adm, wait.max(Duration::from_millis(1)))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            };
            if let Err(e) = self.cut(cut) {
                self.halt(format!("batch failed: {e}"));
                return;
            }
        }
    }

    fn cut(&self, cut: Vec<Waiting>) -> Result<(), SequencerError> {
        let start = Instant::now();
        let first = cut.first().map_or(0, |w| w.seq);
        let last = cut.last().map_or(0, |w| w.seq);
        let ops: Vec<BatchOp> = cut.into_iter().map(|w| w.op).collect();
        let planned = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            state.plan_batch(self.config.epoch, ops)?
        };
        let batch = &planned.witness().batch;
        self.wal.log_batch(first, last, batch, None)?;
        let witness = self
            .state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .commit_batch(planned)?;
        let number = witness.batch.number;
        lock(&self.adm).committed(number, last, &witness.batch.ops);
        self.metrics.batch(witness.batch.ops.len(), start.elapsed());
        tracing::debug!(target: "keel::sequencer", batch = %number, ops = witness.batch.ops.len(), "batch committed");
        {
            let mut ring = lock(&self.witnesses);
            if ring.len() == WITNESS_RING {
                ring.pop_front();
            }
            ring.push_back(witness);
        }
        self.progress.send_modify(|p| p.last_batch = number);
        self.wake.notify_all();
        Ok(())
    }

    /// Feeds an in-process subscriber from batch `next` on.
    fn feed(&self, mut next: u64, tx: Sender<StreamItem>) {
        let mut rx = self.progress.subscribe();
        loop {
            let last = rx.borrow_and_update().last_batch.0;
            while next <= last {
                let batch = match self.wal.batch(BatchNumber(next)) {
                    Ok(Some(l)) => l.batch,
                    Ok(None) | Err(_) => return,
                };
                let witness = lock(&self.witnesses)
                    .iter()
                    .find(|w| w.batch.number.0 == next)
                    .cloned();
                // a subscriber that stops reading holds up only this thread, until shutdown
                let mut item = StreamItem { batch, witness };
                loop {
                    match tx.send_timeout(item, Duration::from_millis(100)) {
                        Ok(()) => break,
                        Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => {
                            if self.shutdown.load(Ordering::Acquire) {
                                return;
                            }
                            item = back;
                        }
                        Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return,
                    }
                }
                next += 1;
            }
            // wait for the next batch, checking now and then whether the receiver left
            loop {
                if self.shutdown.load(Ordering::Acquire) {
                    return;
                }
                if rx.has_changed().unwrap_or(false) {
                    break;
                }
                // (a receiver dropped while no batch comes is noticed at the next batch)
                let adm = lock(&self.adm);
                let _ = self.wake.wait_timeout(adm, Duration::from_millis(100));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_state::test_utils;

    #[cfg(target_os = "linux")]
    #[test]
    fn lower_priority_changes_only_the_calling_thread() {
        let own = rustix::process::getpriority_process(None).unwrap();
        let lowered = std::thread::spawn(|| {
            lower_priority(7);
            rustix::process::getpriority_process(None).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, 7.max(own));
        // this thread keeps its niceness
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), own);
        // 0 leaves the thread alone; above 19 is capped
        let capped = std::thread::spawn(|| {
            lower_priority(0);
            let before = rustix::process::getpriority_process(None).unwrap();
            lower_priority(40);
            (before, rustix::process::getpriority_process(None).unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(capped, (own, 19.max(own)));
        // a thread already lower than asked keeps its niceness (it is never raised)
        let kept = std::thread::spawn(|| {
            lower_priority(12);
            lower_priority(5);
            rustix::process::getpriority_process(None).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(kept, 12.max(own));
    }

    fn config(dir: &std::path::Path) -> SequencerConfig {
        let mut c = SequencerConfig::new(dir);
        c.depth = 6;
        c.batch_deadline = Duration::from_millis(20);
        c
    }

    fn settle(seq: &Sequencer) -> Status {
        for _ in 0..500 {
            let s = seq.status().unwrap();
            if s.waiting == 0 {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("did not settle")
    }

    fn funded(dir: &std::path::Path) -> Status {
        let seq = Sequencer::open(config(dir)).unwrap();
        for i in 0..2 {
            seq.submit_l1_blocking(u64::from(i), test_utils::deposit_entry(i, 100))
                .unwrap();
        }
        seq.submit_blocking(test_utils::signed_transfer(0, 1, 10, 0))
            .unwrap();
        let st = settle(&seq);
        seq.shutdown();
        st
    }

    #[test]
    fn a_batch_logged_but_not_committed_is_re_executed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let before = funded(dir.path());
        // the crash window: the batch is in the log, the state was not committed
        {
            let c = config(dir.path());
            let store =
                RocksStore::open(c.dir.join("state"), RocksStoreOptions::default()).unwrap();
            let state = State::open(store, c.depth).unwrap();
            let wal = Wal::open(&c.dir.join("wal"), c.fsync).unwrap();
            let planned = state
                .plan_batch(c.epoch, vec![test_utils::transfer(1, 0, 5, 0)])
                .unwrap();
            let s = before.next_seq;
            wal.log_batch(s, s, &planned.witness().batch, None).unwrap();
        }
        let seq = Sequencer::open(config(dir.path())).unwrap();
        let st = seq.status().unwrap();
        assert_eq!(st.last_batch, before.last_batch + 1);
        assert_eq!(st.next_seq, before.next_seq + 1);
        let a1 = seq.committed_account(AccountIndex(1)).unwrap().unwrap();
        assert_eq!((a1.balance, a1.nonce), (105, 1));
        // and the next operation of that account follows it
        let seq_no = seq
            .submit_blocking(test_utils::signed_transfer(1, 0, 5, 1))
            .unwrap();
        assert_eq!(seq_no, before.next_seq + 1);
        seq.shutdown();
    }

    #[test]
    fn a_state_ahead_of_its_log_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        funded(dir.path());
        {
            let c = config(dir.path());
            let store =
                RocksStore::open(c.dir.join("state"), RocksStoreOptions::default()).unwrap();
            let mut state = State::open(store, c.depth).unwrap();
            state
                .execute_batch(c.epoch, vec![test_utils::transfer(1, 0, 5, 0)])
                .unwrap();
        }
        let err = Sequencer::open(config(dir.path())).unwrap_err();
        assert!(matches!(err, SequencerError::Recovery(_)), "{err}");
    }
}
