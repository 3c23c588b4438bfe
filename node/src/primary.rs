//! The primary role: the sequencer and its API, the L1 queue follower, heartbeats, and proving
//! in this process or by others; fenced when the L1's lease moves on.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use keel_committer::{Committer, CommitterConfig, QueueFollower, RollupView};
use keel_prover::worker::{Event, WorkerConfig};
use keel_sequencer::{
    api,
    node::{CommitterView, Role},
    Replica, ReplicaError, Sequencer, SequencerConfig,
};
use keel_state::Epoch;

use crate::{
    edit, io,
    proving::{InProcess, ToNode},
    server::{node_router, Server},
    Node, NodeError, ProverSlot, Shared, State, FENCE_GRACE, POLL,
};

impl Node {
    pub(crate) fn primary(&self, view: &RollupView) -> Result<State, NodeError> {
        let epoch = view.lease.epoch;
        let c = view.checkpoint;
        // a directory with the primary's own unbatched operations is opened as it is; anything
        // else is first checked against the L1 and caught up to its checkpoint
        match Replica::open(self.config.sequencer.clone()) {
            Ok(r) => drop(self.checked(r, view, "diverged")?),
            Err(ReplicaError::NotAReplica(..)) => {}
            Err(e) => return Err(e.into()),
        }
        let mut config = self.config.sequencer.clone();
        config.epoch = epoch;
        let seq = Sequencer::open(config.clone())?;
        let st = seq.status()?;
        if st.last_batch < c.batch.0 {
            return Err(NodeError::Behind {
                at: st.last_batch,
                proven: c.batch,
            });
        }
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
        })
        .map_err(io("starting the L1 queue follower"))?;
        let mut local = if self.local_proving {
            Some(self.local_proving(&seq, &config, epoch)?)
        } else {
            None
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
                break Ok(State::Stopped);
            }
            let halted = local.as_ref().and_then(|l| l.pass_on(&self.status));
            thread::sleep(POLL);
            let view = match self.l1.rollup() {
                Ok(v) => v,
                Err(_) => continue,
            };
            if let Some(x) = view.exit_mode {
                tracing::info!("the L1 is in exit mode ({}); stopping", x.reason);
                break Ok(State::Stopped);
            }
            if view.lease.sequencer != self.me || view.lease.epoch != epoch {
                break Ok(self.fenced(&seq, local.as_ref().map(|l| &l.committer), epoch, &view));
            }
            if let Some(why) = halted {
                break Err(NodeError::CommitterHalted(why));
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
                if let Err(e) = self.settler.heartbeat() {
                    tracing::warn!("heartbeat: {e}");
                }
            }
        };
        // everything that holds the sequencer ends before its directory is moved or reopened
        seq.shutdown();
        server.stop(&self.rt);
        drop(follower);
        let switching = matches!(ended, Ok(State::Fenced { .. }));
        if let Some(l) = local.take() {
            // switching roles reopens the directory, so the prover thread must let go of the
            // sequencer first; a node that stops exits, and a proof under way is abandoned
            l.stop(switching);
        }
        ended
    }

    /// The L1 moved the lease on: stop accepting at once, give the committer a moment to hear
    /// the L1's verdict on what it still held, and report.
    fn fenced(
        &self,
        seq: &Sequencer,
        committer: Option<&Committer>,
        epoch: Epoch,
        view: &RollupView,
    ) -> State {
        seq.shutdown();
        edit(&self.status, |s| s.role = Role::Fenced);
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
        State::Fenced { epoch }
    }

    /// Starts the committer and the prover thread of a primary in epoch `epoch`.
    fn local_proving(
        &self,
        seq: &Sequencer,
        config: &SequencerConfig,
        epoch: Epoch,
    ) -> Result<LocalProving, NodeError> {
        let s = seq.clone();
        let mut committer_config = CommitterConfig::new(config.dir.join("committer"));
        committer_config.retry_max = Duration::from_secs(1);
        committer_config.poll = POLL;
        let committer = Committer::open(
            committer_config,
            self.l1.clone(),
            self.settler.clone(),
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
                let mut upstream = InProcess { l1, seq };
                let mut sink = ToNode { out, epoch };
                prove_in_process(&slot, &mut upstream, &mut sink, &stopping, &status);
            })
            .map_err(io("starting the prover thread"))?;
        Ok(LocalProving {
            committer,
            proofs,
            stop,
            thread,
        })
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

/// Waits for the prover to load, then runs the proving worker until `stop` turns true.
fn prove_in_process(
    slot: &ProverSlot,
    upstream: &mut InProcess,
    sink: &mut ToNode,
    stop: &AtomicBool,
    status: &Shared,
) {
    let prover = loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        match slot.get() {
            Some(Ok(p)) => break p.clone(),
            Some(Err(e)) => {
                tracing::warn!("the prover stopped: {e}");
                return;
            }
            None => thread::sleep(POLL),
        }
    };
    let worked = keel_prover::worker::run(
        &*prover,
        upstream,
        sink,
        WorkerConfig::default(),
        stop,
        |e| report(status, &e),
    );
    if let Err(e) = worked {
        tracing::warn!("the prover stopped: {e}");
    }
}

/// Shows what the worker reports in `/v1/node` and the log.
fn report(status: &Shared, e: &Event<'_>) {
    match e {
        Event::Proved(n, t) => edit(status, |s| {
            let busy = t.gpu_busy().unwrap_or_default();
            s.proofs
                .record(n.0, t.total.as_millis() as u64, busy.as_millis() as u64)
        }),
        Event::Synced(n) => tracing::info!("prover: state rebuilt from the L1 at batch {n}"),
        Event::Trouble(why) => tracing::warn!("prover: {why}"),
        _ => {}
    }
}
