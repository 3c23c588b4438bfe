//! The committer: proven batches in, in any order; onto the L1 in order, each exactly once.
//!
//! ```text
//!  prover ──offer(data, proof)──▶ held: RocksDB `p` ‖ number (synced) ──┐
//!                                                                       ▼
//!  poster thread: settled = L1 checkpoint ─▶ drop held ≤ settled (checked against the L1's data)
//!                 held[settled + 1]? ─▶ Settler::post_batch (the lease holder's signer)
//!                    Ok ─▶ watch inclusion: head.height ≥ receipt.height ─▶ on_included(n)
//!                    refused, the head has it (not settled yet) ─▶ the next one the head lacks
//!                    store / network failure ─▶ retry with back-off
//!                    refused by a rule ─▶ halt, holding the batch, and say why
//! ```
//!
//! **No skip, no double post, across restarts.** The L1 is the only record of what was posted:
//! after a restart the committer reads the checkpoint and posts `checkpoint + 1` next, whatever
//! it believed before. A batch it posted just before a crash is on the L1 already, so it is
//! dropped, not posted again (and the L1 would refuse its number anyway). A batch it held but had
//! not posted is still in its store. A held batch is dropped only once the L1 holds that number;
//! if the L1's data for it differs, another sequencer settled that number (this one was fenced),
//! and the committer halts instead of posting batches built on a state the L1 never accepted.
//!
//! **Settled means confirmed.** On an L1 whose reads are `confirmations` blocks deep (an EVM
//! chain), a posted batch stays held until it is settled; meanwhile the committer posts the
//! batches after it (the head's `WrongBatchNumber` says which it lacks). A reorg that drops a
//! posted batch makes the head lack it again, and it is posted again from what is held.

use std::{
    collections::{BTreeMap, VecDeque},
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::{self, JoinHandle},
    time::Duration,
};

use keel_state::{Batch, BatchNumber, Decode};
use rocksdb::{Options, WriteOptions, DB};

use crate::settlement::{L1Error, Rejection, SettlementLayer, Settler};

/// First wait after a failed L1 call; it doubles up to [`DEFAULT_RETRY_MAX`].
pub const DEFAULT_RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest wait between retries.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(10);
/// How often the L1 is read while nothing is held (to see inclusion and others' batches).
pub const DEFAULT_POLL: Duration = Duration::from_millis(250);

/// A committer's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitterConfig {
    /// Where held batches are kept (a RocksDB store).
    pub dir: PathBuf,
    /// First retry wait.
    pub retry_min: Duration,
    /// Longest retry wait.
    pub retry_max: Duration,
    /// L1 polling interval.
    pub poll: Duration,
}

impl CommitterConfig {
    /// Defaults, with the store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            retry_min: DEFAULT_RETRY_MIN,
            retry_max: DEFAULT_RETRY_MAX,
            poll: DEFAULT_POLL,
        }
    }
}

/// Why the committer refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitterError {
    /// The committer's store failed.
    #[error("committer store: {0}")]
    Store(#[source] rocksdb::Error),
    /// The store holds what the committer did not write.
    #[error("committer store: {0}")]
    Corrupt(String),
    /// A file or thread could not be made.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The offered data is not a batch.
    #[error("offered data is not a batch: {0}")]
    BadData(#[source] keel_state::DecodeError),
    /// A different batch with this number is held already.
    #[error("a different batch {0} is held already")]
    Conflict(BatchNumber),
    /// The L1 failed while opening.
    #[error(transparent)]
    L1(#[from] L1Error),
}

/// What happened to an offered batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// Held (durably) until it is posted.
    Held,
    /// The L1 has settled this number already; nothing was kept.
    AlreadySettled,
}

/// Where the committer stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitterStatus {
    /// The L1's last proven batch, as last read.
    pub settled: BatchNumber,
    /// The last batch whose block is sealed.
    pub included: BatchNumber,
    /// Batches held, not yet settled, in order.
    pub held: Vec<BatchNumber>,
    /// Batches this committer posted since it opened.
    pub posted: u64,
    /// Failed L1 calls retried since it opened.
    pub retries: u64,
    /// Why the committer stopped posting, if it did.
    pub halted: Option<String>,
}

/// Called with `n` once batches up to `n` are in sealed L1 blocks (posted and proven: on the
/// embedded L1 one transaction does both).
pub type OnIncluded = Box<dyn Fn(BatchNumber) + Send + Sync>;

/// Held batches by number: data and proof.
type Held = BTreeMap<u64, (Vec<u8>, Vec<u8>)>;

struct Shared {
    held: Held,
    status: CommitterStatus,
    shutdown: bool,
}

struct Inner {
    config: CommitterConfig,
    db: DB,
    l1: Arc<dyn SettlementLayer>,
    signer: Arc<dyn Settler>,
    on_included: OnIncluded,
    shared: Mutex<Shared>,
    wake: Condvar,
}

/// The committer service. Dropping it stops its thread; held batches stay in its store.
pub struct Committer {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("dir", &self.inner.config.dir)
            .finish_non_exhaustive()
    }
}

fn held_key(n: u64) -> [u8; 9] {
    let mut k = [b'p'; 9];
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}

fn store_err(e: rocksdb::Error) -> CommitterError {
    CommitterError::Store(e)
}

fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Held record: `len(data) (4) ‖ data ‖ proof`.
fn held_value(data: &[u8], proof: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + data.len() + proof.len());
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v.extend_from_slice(proof);
    v
}

fn split_held(v: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let len = u32::from_be_bytes(v.get(..4)?.try_into().ok()?) as usize;
    let data = v.get(4..4 + len)?;
    Some((data.to_vec(), v[4 + len..].to_vec()))
}

fn load_held(db: &DB) -> Result<Held, CommitterError> {
    let mut held = BTreeMap::new();
    for item in db.prefix_iterator(b"p") {
        let (k, v) = item.map_err(store_err)?;
        if k.first() != Some(&b'p') {
            break;
        }
        let n = k
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| CommitterError::Corrupt(format!("bad held key {k:?}")))?;
        let entry = split_held(&v)
            .ok_or_else(|| CommitterError::Corrupt(format!("held batch {n} is cut")))?;
        held.insert(n, entry);
    }
    Ok(held)
}

impl Committer {
    /// Opens the committer's store, reads the L1 once, and starts posting through `signer` (the
    /// sequencer's, as the lease names it). `on_included` hears of every batch whose block is
    /// sealed.
    pub fn open(
        config: CommitterConfig,
        l1: Arc<dyn SettlementLayer>,
        signer: Arc<dyn Settler>,
        on_included: OnIncluded,
    ) -> Result<Self, CommitterError> {
        std::fs::create_dir_all(&config.dir).map_err(|source| CommitterError::Io {
            what: "creating the committer's directory",
            source,
        })?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, config.dir.join("held")).map_err(store_err)?;
        let held = load_held(&db)?;
        let settled = l1.rollup()?.checkpoint.batch;
        // batches settled before a restart whose blocks are not sealed yet
        let height = l1.head()?.height;
        let mut inflight = VecDeque::new();
        let mut included = settled.0;
        while included > 0 {
            match l1.batch(BatchNumber(included))? {
                Some(p) if p.height > height => {
                    inflight.push_front((BatchNumber(included), p.height))
                }
                _ => break,
            }
            included -= 1;
        }
        tracing::info!(target: "keel::committer", held = held.len(), settled = settled.0, "committer opened");
        let held_numbers = held.keys().map(|&n| BatchNumber(n)).collect();
        let inner = Arc::new(Inner {
            config,
            db,
            l1,
            signer,
            on_included,
            shared: Mutex::new(Shared {
                held,
                status: CommitterStatus {
                    settled,
                    included: BatchNumber(included),
                    held: held_numbers,
                    ..CommitterStatus::default()
                },
                shutdown: false,
            }),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&inner);
        let thread = thread::Builder::new()
            .name("keel-committer".into())
            .spawn(move || worker.run(inflight))
            .map_err(|source| CommitterError::Io {
                what: "spawning the poster",
                source,
            })?;
        Ok(Self {
            inner,
            thread: Some(thread),
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.inner.config.dir
    }

    /// Hands over a proven batch (its `keel_state::Batch` encoding and proof), in any order.
    /// It is durable when this returns [`Offered::Held`]; offering the same batch again is
    /// harmless.
    pub fn offer(&self, data: Vec<u8>, proof: Vec<u8>) -> Result<Offered, CommitterError> {
        let number = Batch::decode(&data)
            .map_err(CommitterError::BadData)?
            .number;
        let mut s = lock(&self.inner.shared);
        if number <= s.status.settled {
            return Ok(Offered::AlreadySettled);
        }
        if let Some((d, p)) = s.held.get(&number.0) {
            return if *d == data && *p == proof {
                Ok(Offered::Held)
            } else {
                Err(CommitterError::Conflict(number))
            };
        }
        self.inner
            .db
            .put_opt(held_key(number.0), held_value(&data, &proof), &synced())
            .map_err(store_err)?;
        s.held.insert(number.0, (data, proof));
        s.status.held = s.held.keys().map(|&n| BatchNumber(n)).collect();
        self.inner.wake.notify_all();
        Ok(Offered::Held)
    }

    /// The data of the batch held as number `n`, if one is.
    pub fn held(&self, n: BatchNumber) -> Option<Vec<u8>> {
        lock(&self.inner.shared)
            .held
            .get(&n.0)
            .map(|(d, _)| d.clone())
    }

    /// Where the committer stands.
    pub fn status(&self) -> CommitterStatus {
        lock(&self.inner.shared).status.clone()
    }

    /// Waits until batches up to `n` are included, the committer halts, or `timeout` passes;
    /// returns the status then.
    pub fn wait_included(&self, n: BatchNumber, timeout: Duration) -> CommitterStatus {
        let s = lock(&self.inner.shared);
        let (s, _) = self
            .inner
            .wake
            .wait_timeout_while(s, timeout, |s| {
                s.status.included < n && s.status.halted.is_none() && !s.shutdown
            })
            .unwrap_or_else(|p| p.into_inner());
        s.status.clone()
    }

    /// Stops the poster thread (held batches stay in the store).
    pub fn shutdown(&mut self) {
        lock(&self.inner.shared).shutdown = true;
        self.inner.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What one round of the poster found to do.
enum Step {
    /// Nothing to post: wait for an offer or the next poll.
    Idle,
    /// Go round again now.
    Again,
    /// Every held batch past the settled one is on the L1's head, not settled yet: read the L1
    /// again at the next poll.
    Pending,
    /// An L1 call failed: wait, then go round again.
    Failed(String),
}

impl Inner {
    fn run(&self, mut inflight: VecDeque<(BatchNumber, u64)>) {
        let mut backoff = self.config.retry_min;
        loop {
            let mut pending = false;
            let wait = match self.round(&mut inflight) {
                Step::Again => {
                    backoff = self.config.retry_min;
                    Duration::ZERO
                }
                Step::Pending => {
                    backoff = self.config.retry_min;
                    pending = true;
                    self.config.poll
                }
                Step::Idle => {
                    backoff = self.config.retry_min;
                    self.config.poll
                }
                Step::Failed(e) => {
                    tracing::warn!(target: "keel::committer", error = %e, retry_in = ?backoff, "L1 call failed; retrying");
                    lock(&self.shared).status.retries += 1;
                    let w = backoff;
                    backoff = (backoff * 2).min(self.config.retry_max);
                    w
                }
            };
            // wait for the poll, a retry, an offer of the next batch, or shutdown
            let s = lock(&self.shared);
            let (s, _) = self
                .wake
                .wait_timeout_while(s, wait, |s| {
                    let next_ready = wait == self.config.poll
                        && !pending
                        && s.status.halted.is_none()
                        && s.held.contains_key(&(s.status.settled.0 + 1));
                    !(s.shutdown || next_ready)
                })
                .unwrap_or_else(|p| p.into_inner());
            if s.shutdown {
                return;
            }
        }
    }

    /// Reads the L1, settles what it holds, watches inclusion, and posts the next batch.
    fn round(&self, inflight: &mut VecDeque<(BatchNumber, u64)>) -> Step {
        let (view, head) = match (self.l1.rollup(), self.l1.head()) {
            (Ok(v), Ok(h)) => (v, h),
            (Err(e), _) | (_, Err(e)) => return Step::Failed(e.to_string()),
        };
        let settled = view.checkpoint.batch;
        if let Err(e) = self.drop_settled(settled) {
            return e;
        }
        self.watch_inclusion(inflight, head.height);
        if lock(&self.shared).status.halted.is_some() {
            return Step::Idle;
        }
        // the next batch the L1 lacks: settled + 1, or past it while the L1's head holds batches
        // not settled yet (an L1 read `confirmations` deep)
        let mut number = BatchNumber(settled.0 + 1);
        loop {
            let Some((data, proof)) = lock(&self.shared).held.get(&number.0).cloned() else {
                return if number.0 == settled.0 + 1 {
                    Step::Idle
                } else {
                    Step::Pending
                };
            };
            if view.exit_mode.is_some() {
                self.halt(format!(
                    "exit mode is active; batch {} cannot be posted",
                    number.0
                ));
                return Step::Idle;
            }
            return match self.signer.post_batch(&data, &proof) {
                Ok(receipt) => {
                    tracing::info!(target: "keel::committer", batch = number.0, height = receipt.height, "batch posted and proven");
                    inflight.push_back((number, receipt.height));
                    lock(&self.shared).status.posted += 1;
                    Step::Again
                }
                // posted already, not settled yet: post the next one the head lacks. A reorg
                // that drops a batch makes it the one the head lacks again.
                Err(L1Error::Rejected(Rejection::WrongBatchNumber { expected, .. }))
                    if expected > number =>
                {
                    number = expected;
                    continue;
                }
                // the L1 moved meanwhile (another transaction of this key, or another batch
                // landed): read it again
                Err(
                    e @ L1Error::Rejected(
                        Rejection::BadNonce { .. } | Rejection::WrongBatchNumber { .. },
                    ),
                ) => Step::Failed(e.to_string()),
                Err(L1Error::Rejected(r)) => {
                    self.halt(format!("the L1 refused batch {}: {r}", number.0));
                    Step::Idle
                }
                Err(e) => Step::Failed(e.to_string()),
            };
        }
    }

    /// Drops held batches the L1 has settled, each checked against the L1's data.
    fn drop_settled(&self, settled: BatchNumber) -> Result<(), Step> {
        let done: Vec<(u64, Vec<u8>)> = {
            let s = lock(&self.shared);
            s.held
                .range(..=settled.0)
                .map(|(&n, (d, _))| (n, d.clone()))
                .collect()
        };
        for (n, data) in done {
            let posted = self
                .l1
                .batch(BatchNumber(n))
                .map_err(|e| Step::Failed(e.to_string()))?;
            self.delete_held(n)
                .map_err(|e| Step::Failed(e.to_string()))?;
            if posted.as_ref().is_some_and(|p| p.data != data) {
                self.halt(format!(
                    "batch {n} on the L1 is not the one held here: another sequencer settled it (this one is fenced)"
                ));
            }
        }
        // reported once what it settled is no longer held, so the status never shows both
        lock(&self.shared).status.settled = settled;
        Ok(())
    }

    fn delete_held(&self, n: u64) -> Result<(), CommitterError> {
        self.db
            .delete_opt(held_key(n), &synced())
            .map_err(store_err)?;
        let mut s = lock(&self.shared);
        s.held.remove(&n);
        s.status.held = s.held.keys().map(|&n| BatchNumber(n)).collect();
        Ok(())
    }

    fn watch_inclusion(&self, inflight: &mut VecDeque<(BatchNumber, u64)>, height: u64) {
        let mut included = None;
        while inflight.front().is_some_and(|&(_, h)| h <= height) {
            included = inflight.pop_front().map(|(n, _)| n);
        }
        if let Some(n) = included {
            lock(&self.shared).status.included = n;
            (self.on_included)(n);
            self.wake.notify_all();
        }
    }

    fn halt(&self, why: String) {
        tracing::error!(target: "keel::committer", reason = %why, "committer halted");
        lock(&self.shared).status.halted.get_or_insert(why);
        self.wake.notify_all();
    }
}
