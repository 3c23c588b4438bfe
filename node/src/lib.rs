//! # keel-node: a sequencer node, the primary while it holds the L1's lease and a hot standby
//! otherwise
//!
//! The wiring of library parts; no rule lives here.
//!
//! ```text
//!            ┌──────────── the L1's lease decides the role (polled every 100 ms) ─────────────┐
//!  primary:  Sequencer + API ─▶ stream ─▶ prover thread (keel_prover::worker: witness from a
//!            shadow state replayed from L1 data, halo2 proof) ─▶ Committer ─▶ L1
//!            QueueFollower: L1 queue ─▶ Sequencer
//!            (Proving::Remote: no prover thread, no committer; `keel prover run` streams from
//!            the API, `keel committer` posts; the node reads the proven checkpoint from the L1)
//!            heartbeats keep the lease while proofs are slow; a new epoch on the L1 = fenced:
//!            stop accepting, let the committer hear the L1's refusal, move the data aside,
//!            rejoin as a standby
//!  standby:  replica::follow(peers) ─▶ Replica (own STF) ─▶ ack `replicated`   API: 503 not_primary
//!            lease silent for the failover timeout + (rank × back-off) ─▶ ClaimLease ─▶ catch up
//!            from L1 data to the proven checkpoint ─▶ a Sequencer on the same directory, new epoch
//! ```
//!
//! Take-over order: the registered sequencers in the L1's order, starting after the holder; the
//! `r`-th waits `r × back-off` beyond the moment the lease becomes claimable, and the L1 lets only
//! the first claim through (a claim restarts the clock), so exactly one wins.
//!
//! The API listener is bound once, by the caller, so a node keeps its address across role
//! changes. [`start`] runs a node on its own thread and returns a [`NodeHandle`]: its address,
//! its status (`GET /v1/node`), and a way to stop it. `keel sequencer --l1.rpc` is this over an
//! [`RpcL1`](keel_committer::RpcL1); the tests run several nodes in one process over an
//! embedded L1.

mod catchup;
pub mod keys;
mod primary;
pub mod proving;
mod server;
mod standby;

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, OnceLock,
    },
    thread,
    time::Duration,
};

use keel_committer::{CommitterError, L1Error, RollupView, SettlementLayer, Settler};
use keel_prover::BatchProver;
use keel_sequencer::{ReplicaError, SequencerConfig, SequencerError};
use keel_state::{BatchNumber, DecodeError, L1Address, PublicKey, SecretKey};

pub use keel_sequencer::node::{NodeStatus, ProverStatus, Role};

/// How often the node reads the L1.
pub const POLL: Duration = Duration::from_millis(100);
/// How long a fenced primary waits for its committer to hear the L1's verdict on what it held.
const FENCE_GRACE: Duration = Duration::from_secs(5);
/// How long a primary's API may take to close its connections when the role ends.
const SERVER_GRACE: Duration = Duration::from_secs(5);

/// An error from the caller's code (a prover that could not load), kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Loads the batch prover for the rollup's tree depth (read from the L1). Runs on a thread of its
/// own at start, so a take-over does not wait for the keys.
pub type ProverLoader = Box<dyn FnOnce(u8) -> Result<BatchProver, BoxError> + Send>;

/// Where a primary's batches are proven and posted.
pub enum Proving {
    /// In this process: a prover thread (with the prover the loader makes) and a committer.
    Local(ProverLoader),
    /// By `keel prover run` and `keel committer` processes: the node only sequences, streams,
    /// heartbeats and reads the proven checkpoint from the L1.
    Remote,
}

impl std::fmt::Debug for Proving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proving::Local(_) => "Local",
            Proving::Remote => "Remote",
        })
    }
}

/// A node's settings.
#[derive(Debug)]
pub struct NodeConfig {
    /// The sequencer's own settings (its directory, capacity, deadline, HTTP limits). Its epoch
    /// is the lease's.
    pub sequencer: SequencerConfig,
    /// This node's Grumpkin key: it signs the acknowledgements a standby sends (on the embedded
    /// L1 it is also the sequencer's L1 identity, through the settler).
    pub key: SecretKey,
    /// The other nodes' API URLs: a standby follows whichever of them is the primary.
    pub peers: Vec<String>,
    /// The wait between the standbys' take-over slots.
    pub backoff: Duration,
    /// Whether the operator started it as a standby (only a warning if the lease disagrees).
    pub standby_first: bool,
    /// Where its batches are proven.
    pub proving: Proving,
}

/// Why a node could not start, or stopped on its own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The key is not one of the rollup's sequencers.
    #[error(
        "this key is not a registered sequencer of the rollup (the L1 lists {listed} sequencers)"
    )]
    NotRegistered {
        /// How many the L1 lists.
        listed: usize,
    },
    /// The configured depth is not the rollup's.
    #[error("--sequencer.depth {configured} differs from the rollup's depth {rollup} (fixed at genesis)")]
    Depth {
        /// Configured.
        configured: u8,
        /// The rollup's.
        rollup: u8,
    },
    /// The L1 failed or refused.
    #[error("the L1: {0}")]
    L1(#[from] L1Error),
    /// The replica failed.
    #[error("the replica: {0}")]
    Replica(#[from] ReplicaError),
    /// The sequencer failed.
    #[error("the sequencer: {0}")]
    Sequencer(#[from] SequencerError),
    /// The committer failed to open.
    #[error("the committer: {0}")]
    Committer(#[from] CommitterError),
    /// The committer stopped while this node holds the lease.
    #[error("the committer stopped while this node holds the lease: {0}")]
    CommitterHalted(String),
    /// A file, a thread or the listener failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The L1 has proven a batch it holds no data for.
    #[error("the L1 has no data for its batch {0}")]
    NoL1Batch(BatchNumber),
    /// A batch's data on the L1 does not decode.
    #[error("the L1's batch {number} does not decode: {source}")]
    BadL1Batch {
        /// The batch.
        number: BatchNumber,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// The replica lost a batch it reports holding.
    #[error("the replica reports batch {0} but does not hold it")]
    MissingBatch(BatchNumber),
    /// Replaying the L1's own batches does not reach its proven root.
    #[error("the L1's own batches do not reach its proven root")]
    L1Diverged,
    /// The sequencer is behind the L1's proven batch.
    #[error("the sequencer is at batch {at} but the L1 has proven batch {proven}")]
    Behind {
        /// Where the sequencer is.
        at: u64,
        /// What the L1 has proven.
        proven: BatchNumber,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
    let what = what.into();
    move |source| NodeError::Io { what, source }
}

/// What `/v1/node` shows, shared between the node's roles and its API.
pub(crate) type Shared = Arc<Mutex<NodeStatus>>;

pub(crate) fn edit(s: &Shared, f: impl FnOnce(&mut NodeStatus)) {
    f(&mut s.lock().unwrap_or_else(|p| p.into_inner()));
}

/// The batch prover, loaded in the background at start so that a take-over does not wait for it.
pub(crate) type ProverSlot = Arc<OnceLock<Result<Arc<BatchProver>, String>>>;

/// The node's states. The L1's lease decides each move:
///
/// ```text
///  Deciding ──lease is mine──▶ Primary ──lease moved on──▶ Fenced ──data aside──▶ Deciding
///     │                           │                                                 ▲
///     └──lease is another's──▶ Standby ──claimed the lease──────────────────────────┘
///  any state ──stop flag, exit mode──▶ Stopped
/// ```
#[derive(Debug)]
pub(crate) enum State {
    /// Reading the L1 to learn which role the lease gives.
    Deciding,
    /// Holding the lease in this epoch.
    Primary(RollupView),
    /// Following the primary, ready to claim.
    Standby(RollupView),
    /// The L1's lease moved on from `epoch` while this node was its primary: it has stopped
    /// accepting; its directory is moved aside before it rejoins.
    Fenced {
        /// The epoch it sequenced in.
        epoch: keel_state::Epoch,
    },
    /// Stopped by the caller or by exit mode.
    Stopped,
}

/// A running node.
pub(crate) struct Node {
    pub(crate) config: NodeConfig,
    pub(crate) local_proving: bool,
    pub(crate) l1: Arc<dyn SettlementLayer>,
    pub(crate) settler: Arc<dyn Settler>,
    /// The settler's address: how the L1 names this sequencer.
    pub(crate) me: L1Address,
    pub(crate) listener: TcpListener,
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) status: Shared,
    pub(crate) prover: ProverSlot,
}

/// A node running on its own thread.
#[derive(Debug)]
pub struct NodeHandle {
    addr: SocketAddr,
    status: Shared,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Result<(), NodeError>>>,
}

impl NodeHandle {
    /// Where its API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its API's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What its `/v1/node` shows now.
    pub fn status(&self) -> NodeStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Its role now.
    pub fn role(&self) -> Role {
        self.status().role
    }

    /// The flag that stops it (a signal handler sets it).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Whether it has stopped.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for it to stop on its own (or by its flag), with its outcome.
    pub fn join(mut self) -> Result<(), NodeError> {
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(NodeError::Io {
                what: "the node's thread".into(),
                source: std::io::Error::other("it panicked"),
            }),
            None => Ok(()),
        }
    }

    /// Stops it (its roles end as on a signal) and waits.
    pub fn stop(self) -> Result<(), NodeError> {
        self.stop.store(true, Ordering::Release);
        self.join()
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a node that reads `l1` and calls it through `settler` (its lease identity), serving on
/// `listener` (bound by the caller, kept across roles). Checks that it is registered and its
/// depth is the rollup's before it returns.
pub fn start(
    config: NodeConfig,
    l1: Arc<dyn SettlementLayer>,
    settler: Arc<dyn Settler>,
    listener: TcpListener,
) -> Result<NodeHandle, NodeError> {
    let me = settler.address();
    let view = l1.rollup()?;
    if !view.registered(&me) {
        return Err(NodeError::NotRegistered {
            listed: view.sequencers.len(),
        });
    }
    if config.sequencer.depth != view.depth {
        return Err(NodeError::Depth {
            configured: config.sequencer.depth,
            rollup: view.depth,
        });
    }
    let addr = listener
        .local_addr()
        .map_err(io("reading the listener's address"))?;
    let status: Shared = Arc::new(Mutex::new(NodeStatus {
        prover: "loading".into(),
        ..Default::default()
    }));
    let mut config = config;
    let proving = std::mem::replace(&mut config.proving, Proving::Remote);
    let (prover, local_proving) = match proving {
        Proving::Local(loader) => (load_prover(loader, view.depth, status.clone()), true),
        Proving::Remote => {
            edit(&status, |s| s.prover = "remote (keel prover run)".into());
            (ProverSlot::default(), false)
        }
    };
    let rt = tokio::runtime::Runtime::new().map_err(io("starting the node's runtime"))?;
    tracing::info!(
        "{} (depth {}, batch {}), API on http://{addr}",
        config.sequencer.dir.display(),
        view.depth,
        config.sequencer.batch_capacity,
    );
    if config.standby_first != (view.lease.sequencer != me) {
        tracing::warn!(
            "started as {} but the L1's lease (epoch {}) says otherwise: the lease decides",
            if config.standby_first {
                "standby"
            } else {
                "primary"
            },
            view.lease.epoch
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let node = Node {
        config,
        local_proving,
        l1,
        settler,
        me,
        listener,
        rt,
        stop: stop.clone(),
        status: status.clone(),
        prover,
    };
    let thread = thread::Builder::new()
        .name("keel-node".into())
        .spawn(move || node.run())
        .map_err(io("starting the node's thread"))?;
    Ok(NodeHandle {
        addr,
        status,
        stop,
        thread: Some(thread),
    })
}

fn load_prover(loader: ProverLoader, depth: u8, status: Shared) -> ProverSlot {
    let slot: ProverSlot = Arc::default();
    let s = slot.clone();
    thread::spawn(move || {
        let r = match loader(depth) {
            Ok(p) => {
                edit(&status, |st| st.prover = p.backend());
                tracing::info!("prover ready ({})", p.backend());
                Ok(Arc::new(p))
            }
            Err(e) => {
                let e = format!("the prover could not load its keys: {e}");
                edit(&status, |st| st.prover = e.clone());
                tracing::warn!("{e}");
                Err(e)
            }
        };
        let _ = s.set(r);
    });
    slot
}

impl Node {
    fn run(self) -> Result<(), NodeError> {
        let mut state = State::Deciding;
        loop {
            state = match state {
                State::Deciding => match self.rollup_retrying()? {
                    None => State::Stopped,
                    Some(view) if view.exit_mode.is_some() => {
                        let reason = view.exit_mode.map(|x| x.reason.to_string());
                        tracing::info!(
                            "the L1 is in exit mode ({}); nothing to sequence",
                            reason.unwrap_or_default()
                        );
                        State::Stopped
                    }
                    Some(view) if view.lease.sequencer == self.me => State::Primary(view),
                    Some(view) => State::Standby(view),
                },
                State::Primary(view) => self.primary(&view)?,
                State::Standby(view) => self.standby(&view)?,
                State::Fenced { epoch } => {
                    catchup::move_aside(&self.dir(), &format!("fenced-epoch{}", epoch.0))?;
                    State::Deciding
                }
                State::Stopped => break,
            };
        }
        tracing::info!("stopped");
        Ok(())
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// The rollup view, retried while the L1 is unreachable; `None` once stopped.
    fn rollup_retrying(&self) -> Result<Option<RollupView>, NodeError> {
        let mut said = false;
        loop {
            if self.stopping() {
                return Ok(None);
            }
            match self.l1.rollup() {
                Ok(v) => return Ok(Some(v)),
                Err(e @ L1Error::Unavailable { .. }) => {
                    if !said {
                        tracing::warn!("the L1 is unreachable ({e}); retrying");
                        said = true;
                    }
                    thread::sleep(POLL);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The registered sequencers other than this one: the standbys whose acknowledgements count.
    /// (Those the L1 registers an acknowledgement key for.)
    pub(crate) fn standbys(&self, view: &RollupView) -> Vec<PublicKey> {
        view.sequencers
            .iter()
            .filter(|s| s.address != self.me)
            .filter_map(|s| s.ack_key)
            .collect()
    }

    pub(crate) fn dir(&self) -> PathBuf {
        self.config.sequencer.dir.clone()
    }
}
