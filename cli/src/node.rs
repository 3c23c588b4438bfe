//! `keel sequencer --l1.rpc URL`: a sequencer node that is the primary while it holds the L1's
//! lease and a hot standby otherwise. The wiring of library parts; no rule lives here.
//!
//! ```text
//!            ┌──────────── the L1's lease decides the role (polled every 100 ms) ─────────────┐
//!  primary:  Sequencer + API ─▶ stream ─▶ prover thread (keel_prover::worker: witness from a
//!            shadow state replayed from L1 data, halo2 proof) ─▶ Committer ─▶ L1
//!            QueueFollower: L1 queue ─▶ Sequencer
//!            (--sequencer.proving remote: no prover thread, no committer; `keel prover run`
//!            streams from the API, `keel committer` posts; the node reads the proven
//!            checkpoint from the L1)
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
//! The API listener is bound once, so a node keeps its address across role changes.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, OnceLock,
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context};
use axum::{extract::State as AxState, routing::get, Json, Router};
use keel_committer::{
    Call, Committer, CommitterConfig, L1Error, QueueFollower, Rejection, RollupView, RpcL1,
    SettlementLayer,
};
use keel_prover::{
    gpu::GpuPolicy,
    keys::Srs,
    worker::{Event, WorkerConfig},
    BatchProver, Shape,
};
use keel_sequencer::{api, replica, Replica, ReplicaError, Sequencer, SequencerConfig};
use keel_state::{Batch, BatchNumber, Decode, Epoch, PublicKey, SecretKey};

/// How often the node reads the L1.
const POLL: Duration = Duration::from_millis(100);
/// How long a fenced primary waits for its committer to hear the L1's verdict on what it held.
const FENCE_GRACE: Duration = Duration::from_secs(5);
/// The L1 client's timeout: a partitioned L1 must not stall the node (nor a committer).
pub(crate) const L1_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a primary's API may take to close its connections when the role ends.
const SERVER_GRACE: Duration = Duration::from_secs(5);

/// What the node needs besides the sequencer's own settings.
pub(crate) struct NodeOptions {
    pub(crate) config: SequencerConfig,
    pub(crate) listen: std::net::SocketAddr,
    pub(crate) l1_url: String,
    pub(crate) key: SecretKey,
    pub(crate) peers: Vec<String>,
    pub(crate) backoff: Duration,
    pub(crate) standby_first: bool,
    pub(crate) keys_dir: PathBuf,
    /// The HTTP edge's flags (the ready file among them).
    pub(crate) http: crate::http::HttpArgs,
    pub(crate) srs: Srs,
    pub(crate) k: Option<u32>,
    pub(crate) gpu: GpuPolicy,
    pub(crate) proving: Proving,
}

/// Where a primary's batches are proven and posted.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Proving {
    /// In this process: a prover thread and a committer.
    #[default]
    Local,
    /// By `keel prover run` and `keel committer` processes: the node only sequences, streams,
    /// heartbeats and reads the proven checkpoint from the L1.
    Remote,
}

use keel_sequencer::node::{CommitterView, NodeStatus, Role};

type Shared = Arc<Mutex<NodeStatus>>;

fn edit(s: &Shared, f: impl FnOnce(&mut NodeStatus)) {
    f(&mut s.lock().unwrap_or_else(|p| p.into_inner()));
}

fn node_router(s: Shared) -> Router {
    Router::new()
        .route(
            "/v1/node",
            get(|AxState(s): AxState<Shared>| async move {
                Json(s.lock().unwrap_or_else(|p| p.into_inner()).clone())
            }),
        )
        .with_state(s)
}

/// An API server on a clone of the node's listener; dropping it stops accepting, and
/// [`Server::stop`] also waits for its connections to end (they hold the sequencer).
struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    fn start(
        rt: &tokio::runtime::Runtime,
        listener: &TcpListener,
        app: Router,
        limits: keel_http::Limits,
    ) -> anyhow::Result<Self> {
        let l = listener.try_clone()?;
        l.set_nonblocking(true)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let _enter = rt.enter();
        let l = tokio::net::TcpListener::from_std(l)?;
        let task = rt.spawn(async move {
            let served = keel_http::serve(l, app, limits, async {
                let _ = rx.await;
            });
            if let Err(e) = served.await {
                tracing::error!("serving the API: {e}");
            }
        });
        Ok(Self {
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// Stops accepting and waits (at most [`SERVER_GRACE`]) for open connections to end.
    fn stop(mut self, rt: &tokio::runtime::Runtime) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(task) = self.task.take() {
            // the timer is made inside the runtime, which drives it
            let ended = rt.block_on(async { tokio::time::timeout(SERVER_GRACE, task).await });
            if ended.is_err() {
                tracing::warn!("the API's connections did not end within {SERVER_GRACE:?}");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// The batch prover, loaded in the background at start so that a take-over does not wait for it.
type ProverSlot = Arc<OnceLock<Result<Arc<BatchProver>, String>>>;

fn load_prover(opts: &NodeOptions, shape: Shape, status: Shared) -> ProverSlot {
    let slot: ProverSlot = Arc::default();
    let (dir, srs, gpu, s) = (
        opts.keys_dir.clone(),
        opts.srs.clone(),
        opts.gpu,
        slot.clone(),
    );
    thread::spawn(move || {
        let r = match crate::prover::open_prover(&dir, shape, &srs, gpu) {
            Ok(p) => {
                edit(&status, |st| st.prover = p.backend());
                tracing::info!("prover ready ({})", p.backend());
                Ok(Arc::new(p))
            }
            Err(e) => {
                let e = format!("the prover could not load its keys: {e:#}");
                edit(&status, |st| st.prover = e.clone());
                tracing::warn!("{e}");
                Err(e)
            }
        };
        let _ = s.set(r);
    });
    slot
}

/// How a role ended.
enum Ended {
    /// Stopped by a signal or by exit mode.
    Stopped,
    /// Switch roles.
    Switch,
}

struct Node {
    opts: NodeOptions,
    l1: Arc<RpcL1>,
    me: PublicKey,
    listener: TcpListener,
    rt: tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
    status: Shared,
    prover: ProverSlot,
}

pub(crate) fn run(opts: NodeOptions) -> anyhow::Result<()> {
    let l1 = Arc::new(
        RpcL1::connect_with(&opts.l1_url, L1_TIMEOUT)
            .with_context(|| format!("connecting to the L1 at {}", opts.l1_url))?,
    );
    let me = opts.key.public_key();
    let view = l1.rollup()?;
    anyhow::ensure!(
        view.sequencers.contains(&me),
        "this key is not a registered sequencer of the rollup (the L1 lists {} sequencers)",
        view.sequencers.len()
    );
    anyhow::ensure!(
        opts.config.depth == view.depth,
        "--sequencer.depth {} differs from the rollup's depth {} (fixed at genesis)",
        opts.config.depth,
        view.depth
    );
    let listener =
        TcpListener::bind(opts.listen).with_context(|| format!("binding {}", opts.listen))?;
    let status: Shared = Arc::new(Mutex::new(NodeStatus {
        prover: "loading".into(),
        ..Default::default()
    }));
    let shape = crate::prover::shape(opts.config.batch_capacity, view.depth, opts.k)?;
    let prover = match opts.proving {
        Proving::Local => load_prover(&opts, shape, status.clone()),
        Proving::Remote => {
            edit(&status, |s| s.prover = "remote (keel prover run)".into());
            ProverSlot::default()
        }
    };
    let rt = tokio::runtime::Runtime::new()?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        rt.spawn(async move {
            let _ = crate::stop_signal().await;
            stop.store(true, Ordering::Release);
        });
    }
    tracing::info!(
        "{} (depth {}, batch {}), L1 {}, API on http://{}",
        opts.config.dir.display(),
        view.depth,
        opts.config.batch_capacity,
        opts.l1_url,
        listener.local_addr()?
    );
    opts.http.ready("node", listener.local_addr()?)?;
    if opts.standby_first != (view.lease.sequencer != me) {
        tracing::warn!(
            "started as {} but the L1's lease (epoch {}) says otherwise: the lease decides",
            if opts.standby_first {
                "standby"
            } else {
                "primary"
            },
            view.lease.epoch
        );
    }
    let node = Node {
        opts,
        l1,
        me,
        listener,
        rt,
        stop,
        status,
        prover,
    };
    loop {
        let view = node.rollup_retrying()?;
        let Some(view) = view else { break };
        if let Some(x) = view.exit_mode {
            tracing::info!("the L1 is in exit mode ({}); nothing to sequence", x.reason);
            break;
        }
        let ended = if view.lease.sequencer == node.me {
            node.primary(&view)?
        } else {
            node.standby(&view)?
        };
        if let Ended::Stopped = ended {
            break;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Moves a data directory aside (kept for inspection, never deleted) and returns where.
fn move_aside(dir: &Path, why: &str) -> anyhow::Result<PathBuf> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sequencer".into());
    let to = dir.with_file_name(format!("{name}.{why}-{}", now_ms()));
    std::fs::rename(dir, &to)
        .with_context(|| format!("moving {} aside to {}", dir.display(), to.display()))?;
    tracing::info!("moved {} aside to {}", dir.display(), to.display());
    Ok(to)
}

/// Brings `replica` up to the L1's proven checkpoint with the posted data, after checking that
/// what it holds agrees with the L1. `Ok(false)`: it disagrees (its history diverged).
fn catch_up(
    l1: &dyn SettlementLayer,
    replica: &Replica,
    view: &RollupView,
) -> anyhow::Result<bool> {
    let c = view.checkpoint;
    let last = replica.last_batch();
    if last >= c.batch && c.batch.0 > 0 {
        let held = replica.batch(c.batch)?.context("a held batch is missing")?;
        return Ok(held.new_root == c.root);
    }
    for n in last.0 + 1..=c.batch.0 {
        let posted = l1
            .batch(BatchNumber(n))?
            .with_context(|| format!("the L1 has no batch {n}"))?;
        let batch =
            Batch::decode(&posted.data).map_err(|e| anyhow::anyhow!("L1 batch {n}: {e}"))?;
        match replica.apply(&batch) {
            Ok(_) => {}
            Err(ReplicaError::Diverged(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(replica.root()? == c.root)
}

impl Node {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// The rollup view, retried while the L1 is unreachable; `None` once stopped.
    fn rollup_retrying(&self) -> anyhow::Result<Option<RollupView>> {
        let mut said = false;
        loop {
            if self.stopping() {
                return Ok(None);
            }
            match self.l1.rollup() {
                Ok(v) => return Ok(Some(v)),
                Err(L1Error::Unavailable(e)) => {
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

    fn send(&self, call: Call) -> Result<keel_committer::Receipt, L1Error> {
        self.l1.send(&self.opts.key, call)
    }

    /// Opens the replica, moving the directory aside if it holds a primary's unbatched
    /// operations, then [`Node::checked`].
    fn open_replica(&self, view: &RollupView, why: &str) -> anyhow::Result<Replica> {
        let replica = match Replica::open(self.opts.config.clone()) {
            Ok(r) => r,
            Err(e @ ReplicaError::NotAReplica(..)) => {
                tracing::warn!("{e}");
                move_aside(&self.opts.config.dir, why)?;
                Replica::open(self.opts.config.clone())?
            }
            Err(e) => return Err(e.into()),
        };
        self.checked(replica, view, why)
    }

    /// Catches `replica` up to the L1's checkpoint; if what it holds disagrees with the L1, its
    /// directory is moved aside and a fresh replica is caught up instead.
    fn checked(&self, replica: Replica, view: &RollupView, why: &str) -> anyhow::Result<Replica> {
        if catch_up(self.l1.as_ref(), &replica, view)? {
            return Ok(replica);
        }
        let dir = &self.opts.config.dir;
        tracing::warn!(
            "the data in {} disagrees with the L1's proven batch {}",
            dir.display(),
            view.checkpoint.batch
        );
        drop(replica);
        move_aside(dir, why)?;
        let replica = Replica::open(self.opts.config.clone())?;
        anyhow::ensure!(
            catch_up(self.l1.as_ref(), &replica, view)?,
            "the L1's own batches do not reach its proven root"
        );
        Ok(replica)
    }

    fn standby(&self, view: &RollupView) -> anyhow::Result<Ended> {
        let replica = self.open_replica(view, "diverged")?;
        edit(&self.status, |s| {
            s.role = Role::Standby;
            s.committer = None;
        });
        let server = Server::start(
            &self.rt,
            &self.listener,
            replica::router(replica.watch()).merge(node_router(self.status.clone())),
            self.opts.config.http,
        )?;
        let (stop_follow, stop_rx) = tokio::sync::watch::channel(false);
        let following = self.rt.spawn(replica::follow(
            replica.clone(),
            self.opts.peers.clone(),
            self.opts.key.clone(),
            stop_rx,
            Duration::from_millis(500),
        ));
        tracing::info!(
            "standby at batch {}, following {:?}",
            replica.last_batch(),
            self.opts.peers
        );
        let mut refused = None;
        let claimed = loop {
            if self.stopping() {
                break false;
            }
            let st = replica.status();
            if st.refused.is_some() && st.refused != refused {
                tracing::warn!("refused {}", st.refused.as_deref().unwrap_or(""));
                refused = st.refused;
            }
            thread::sleep(POLL);
            let view = match self.l1.rollup() {
                Ok(v) => v,
                Err(_) => continue,
            };
            if view.exit_mode.is_some() {
                break false;
            }
            if view.lease.sequencer == self.me {
                break true;
            }
            if view.head.time_ms < self.claimable_at(&view) {
                continue;
            }
            match self.send(Call::ClaimLease) {
                Ok(_) => {
                    tracing::info!(
                        "claimed the lease (epoch {}) at batch {}",
                        view.lease.epoch.0 + 1,
                        replica.last_batch()
                    );
                    break true;
                }
                Err(L1Error::Rejected(
                    Rejection::LeaseNotExpired { .. } | Rejection::BadNonce { .. },
                )) => {}
                Err(e) => tracing::warn!("claiming the lease: {e}"),
            }
        };
        let _ = stop_follow.send(true);
        self.rt.block_on(following).ok();
        drop(server);
        // the primary role resumes from the proven checkpoint plus every replicated batch
        Ok(if claimed {
            Ended::Switch
        } else {
            Ended::Stopped
        })
    }

    /// The registered sequencers other than this one: the standbys whose acknowledgements count.
    fn standbys(&self, view: &RollupView) -> Vec<PublicKey> {
        view.sequencers
            .iter()
            .copied()
            .filter(|k| *k != self.me)
            .collect()
    }

    /// When this node may claim: the lease's claimable time plus its rank's back-off.
    fn claimable_at(&self, view: &RollupView) -> u64 {
        let set = &view.sequencers;
        let n = set.len().max(1);
        let holder = set.iter().position(|k| *k == view.lease.sequencer);
        let mine = set.iter().position(|k| *k == self.me).unwrap_or(0);
        let rank = match holder {
            Some(h) => (mine + n - h - 1) % n,
            None => mine,
        };
        view.lease
            .claimable_at_ms(view.deadlines.failover_timeout)
            .saturating_add(rank as u64 * self.opts.backoff.as_millis() as u64)
    }

    fn primary(&self, view: &RollupView) -> anyhow::Result<Ended> {
        let epoch = view.lease.epoch;
        let c = view.checkpoint;
        // a directory with the primary's own unbatched operations is opened as it is; anything
        // else is first checked against the L1 and caught up to its checkpoint
        match Replica::open(self.opts.config.clone()) {
            Ok(r) => drop(self.checked(r, view, "diverged")?),
            Err(ReplicaError::NotAReplica(..)) => {}
            Err(e) => return Err(e.into()),
        }
        let mut config = self.opts.config.clone();
        config.epoch = epoch;
        let seq = Sequencer::open(config.clone())
            .with_context(|| format!("opening the sequencer in {}", config.dir.display()))?;
        let st = seq.status()?;
        anyhow::ensure!(
            st.last_batch >= c.batch.0,
            "the sequencer is at batch {} but the L1 has proven batch {}",
            st.last_batch,
            c.batch
        );
        seq.mark_posted(c.batch);
        seq.mark_proven(c.batch);
        // the standbys whose signed acknowledgements make operations `replicated`
        seq.set_standbys(self.standbys(view));
        tracing::info!(
            "primary in epoch {} at batch {} ({} proven on the L1, {} waiting)",
            epoch.0,
            st.last_batch,
            c.batch,
            st.waiting
        );
        edit(&self.status, |s| {
            s.role = Role::Primary;
            s.epoch = epoch.0;
        });

        let s = seq.clone();
        let follower = QueueFollower::spawn(self.l1.clone(), st.next_l1, POLL, move |i, entry| {
            s.submit_l1_blocking(i, entry)
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        let mut local = match self.opts.proving {
            Proving::Local => Some(self.local_proving(&seq, &config, epoch)?),
            Proving::Remote => None,
        };
        let server = Server::start(
            &self.rt,
            &self.listener,
            api::router(seq.clone()).merge(node_router(self.status.clone())),
            config.http,
        )?;

        let mut proven = c.batch;
        let heartbeat_every = view.deadlines.failover_timeout / 4;
        let mut last_heartbeat = Instant::now();
        let ended = loop {
            if self.stopping() {
                break Ended::Stopped;
            }
            let halted = local.as_ref().and_then(|l| l.pass_on(&self.status));
            thread::sleep(POLL);
            let view = match self.l1.rollup() {
                Ok(v) => v,
                Err(_) => continue,
            };
            if let Some(x) = view.exit_mode {
                tracing::info!("the L1 is in exit mode ({}); stopping", x.reason);
                break Ended::Stopped;
            }
            if view.lease.sequencer != self.me || view.lease.epoch != epoch {
                break self.fenced(&seq, local.as_ref().map(|l| &l.committer), epoch, &view);
            }
            if let Some(why) = halted {
                bail!("the committer stopped while this node holds the lease: {why}");
            }
            // the council may rotate the sequencers: the registry decides who acknowledges
            seq.set_standbys(self.standbys(&view));
            if local.is_none() && view.checkpoint.batch > proven {
                // proven and posted by other processes: the L1 says so
                proven = view.checkpoint.batch;
                seq.mark_posted(proven);
                seq.mark_proven(proven);
                tracing::info!("batch {proven} proven on the L1");
            }
            let silent = view.head.time_ms.saturating_sub(view.lease.last_batch_ms);
            if silent >= heartbeat_every.as_millis() as u64
                && last_heartbeat.elapsed() >= heartbeat_every
            {
                last_heartbeat = Instant::now();
                if let Err(e) = self.send(Call::Heartbeat) {
                    tracing::warn!("heartbeat: {e}");
                }
            }
        };
        // everything that holds the sequencer ends before its directory is moved or reopened
        seq.shutdown();
        server.stop(&self.rt);
        drop(follower);
        if let Some(l) = local.take() {
            // switching roles reopens the directory, so the prover thread must let go of the
            // sequencer first; a node that stops exits, and a proof under way is abandoned
            l.stop(matches!(ended, Ended::Switch));
        }
        if let Ended::Switch = ended {
            move_aside(&config.dir, &format!("fenced-epoch{}", epoch.0))?;
        }
        Ok(ended)
    }

    /// The L1 moved the lease on: stop accepting at once, give the committer a moment to hear
    /// the L1's verdict on what it still held, and report.
    fn fenced(
        &self,
        seq: &Sequencer,
        committer: Option<&Committer>,
        epoch: Epoch,
        view: &RollupView,
    ) -> Ended {
        seq.shutdown();
        let start = Instant::now();
        let verdict = loop {
            let Some(committer) = committer else {
                break "its batches are posted by its own committer process".into();
            };
            let cs = committer.status();
            if let Some(h) = cs.halted {
                break h;
            }
            if cs.held.is_empty() {
                break "nothing was waiting to be posted".into();
            }
            if start.elapsed() > FENCE_GRACE {
                break format!("batches {:?} were still held", cs.held);
            }
            thread::sleep(POLL);
        };
        let why = format!(
            "fenced in epoch {}: the L1's lease is in epoch {}; {verdict}",
            epoch.0, view.lease.epoch.0
        );
        // recorded before it is said, so whoever reads the log finds it in /v1/node
        edit(&self.status, |s| s.fenced.push(why.clone()));
        tracing::warn!("{why}; rejoining as a standby");
        Ended::Switch
    }
}

/// A primary's prover thread and committer, in this process.
struct LocalProving {
    committer: Committer,
    proofs: crossbeam_channel::Receiver<(Vec<u8>, Vec<u8>)>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl LocalProving {
    /// Hands the prover's proofs to the committer and shows its status; returns why the
    /// committer halted, if it did.
    fn pass_on(&self, status: &Shared) -> Option<String> {
        while let Ok((data, proof)) = self.proofs.try_recv() {
            if let Err(e) = self.committer.offer(data, proof) {
                tracing::warn!("the committer refused a proven batch: {e}");
            }
        }
        let cs = self.committer.status();
        edit(status, |s| {
            s.committer = Some(CommitterView {
                settled: cs.settled.0,
                included: cs.included.0,
                held: cs.held.iter().map(|n| n.0).collect(),
                posted: cs.posted,
                halted: cs.halted.clone(),
            })
        });
        cs.halted
    }

    /// Stops the committer and tells the prover thread to stop; with `wait`, waits for it (a
    /// proof under way is finished first: the thread holds the sequencer until it ends).
    fn stop(mut self, wait: bool) {
        self.stop.store(true, Ordering::Release);
        if wait && self.thread.join().is_err() {
            tracing::warn!("the prover thread panicked");
        }
        self.committer.shutdown();
    }
}

impl Node {
    /// Starts the committer and the prover thread of a primary in epoch `epoch`.
    fn local_proving(
        &self,
        seq: &Sequencer,
        config: &SequencerConfig,
        epoch: Epoch,
    ) -> anyhow::Result<LocalProving> {
        let s = seq.clone();
        let mut committer_config = CommitterConfig::new(config.dir.join("committer"));
        committer_config.retry_max = Duration::from_secs(1);
        committer_config.poll = POLL;
        let committer = Committer::open(
            committer_config,
            self.l1.clone(),
            self.opts.key.clone(),
            Box::new(move |n| {
                s.mark_posted(n);
                s.mark_proven(n);
                tracing::info!("batch {n} proven on the L1");
            }),
        )?;
        let stop = Arc::new(AtomicBool::new(false));
        let (out, proofs) = crossbeam_channel::unbounded();
        let (l1, seq, slot, stopping, status) = (
            self.l1.clone(),
            seq.clone(),
            self.prover.clone(),
            stop.clone(),
            self.status.clone(),
        );
        let thread = thread::Builder::new()
            .name("keel-node-prover".into())
            .spawn(move || {
                let mut upstream = crate::proving::InProcess { l1, seq };
                let mut sink = crate::proving::ToNode { out, epoch };
                if let Err(e) =
                    prove_in_process(&slot, &mut upstream, &mut sink, &stopping, &status)
                {
                    tracing::warn!("the prover stopped: {e:#}");
                }
            })?;
        Ok(LocalProving {
            committer,
            proofs,
            stop,
            thread,
        })
    }
}

/// Waits for the prover to load, then runs the proving worker until `stop` turns true.
fn prove_in_process(
    slot: &ProverSlot,
    upstream: &mut crate::proving::InProcess,
    sink: &mut crate::proving::ToNode,
    stop: &AtomicBool,
    status: &Shared,
) -> anyhow::Result<()> {
    let prover = loop {
        if stop.load(Ordering::Acquire) {
            return Ok(());
        }
        match slot.get() {
            Some(Ok(p)) => break p.clone(),
            Some(Err(e)) => bail!("{e}"),
            None => thread::sleep(POLL),
        }
    };
    keel_prover::worker::run(
        |w| prover.prove(w, |_| {}),
        upstream,
        sink,
        WorkerConfig::default(),
        stop,
        |e| report(status, &e),
    )?;
    Ok(())
}

/// Shows what the worker reports in `/v1/node` and the log.
fn report(status: &Shared, e: &Event<'_>) {
    match e {
        Event::Proved(n, t) => edit(status, |s| s.proofs.record(n.0, t.total.as_millis() as u64)),
        Event::Synced(n) => tracing::info!("prover: state rebuilt from the L1 at batch {n}"),
        Event::Trouble(why) => tracing::warn!("prover: {why}"),
        _ => {}
    }
}
