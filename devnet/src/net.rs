//! The running devnet: its processes, started in order and supervised, the load, the
//! `--kill-primary-at` failover and the `--exit` scenario.

use std::{
    io::{IsTerminal, Write},
    net::TcpListener,
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use keel_committer::{reconstruct, RollupView, SettlementLayer};
use keel_sequencer::{
    node::{NodeStatus, ProofStats, ProverStatus, Role},
    Status,
};
use keel_state::{field::fr_to_hex, MemStore};

use crate::{
    chain::Chain,
    layout::{read_key, Dir, DirLock, Layout, Prepared},
    load::{self, Account, LoadStats, Switches},
    report::{ExitReport, FailoverReport, Summary},
    supervisor::{Proc, Restart, Spec},
    Config, DevnetError, BACKLOG, COUNCIL, DEPOSIT,
};

/// The longest a drain (every accepted operation committed) may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(900);
/// The longest a failover (take-over, a batch committed, the killed node back) may take.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest the L1 may be unreachable (while it restarts) before the run fails.
const L1_OUTAGE: Duration = Duration::from_secs(120);
/// How long a process may take to write its ready file (a prover loads its keys first).
const READY_TIMEOUT: Duration = Duration::from_secs(300);
const TICK: Duration = Duration::from_millis(250);
/// The longest a deposit may take to be settled on the L1.
const DEPOSIT_SETTLES: Duration = Duration::from_secs(60);

pub(crate) fn free_port() -> Result<u16, DevnetError> {
    let io = |source| DevnetError::Io {
        path: "127.0.0.1:0".into(),
        source,
    };
    Ok(TcpListener::bind("127.0.0.1:0")
        .map_err(io)?
        .local_addr()
        .map_err(io)?
        .port())
}

pub(crate) fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// One sequencer node as the devnet sees it.
struct NodeProc {
    proc: Proc,
    url: String,
    /// What its `/v1/node` and `/v1/status` said last (`None` while it does not answer).
    node: Option<NodeStatus>,
    status: Option<Status>,
}

impl NodeProc {
    fn role(&self) -> Option<Role> {
        self.node.as_ref().map(|n| n.role)
    }
}

/// One prover service.
struct ProverProc {
    proc: Proc,
    url: String,
    status: Option<ProverStatus>,
}

/// A `--kill-primary-at` kill and what followed it.
struct Failover {
    node: usize,
    at: Instant,
    batch: u64,
    committed: Option<Instant>,
    restarted: bool,
    rejoined: Option<Instant>,
}

impl Failover {
    fn done(&self, stats: &LoadStats) -> bool {
        stats.accepted_elsewhere().is_some() && self.committed.is_some() && self.rejoined.is_some()
    }

    fn report(&self, accepted: Option<Instant>) -> FailoverReport {
        let ms = |t: Option<Instant>| t.map(|t| t.duration_since(self.at).as_millis() as u64);
        FailoverReport {
            killed: format!("sequencer-{}", self.node),
            at_batch: self.batch,
            first_accepted_ms: ms(accepted),
            first_committed_ms: ms(self.committed),
            restarted: self.restarted,
            rejoined_ms: ms(self.rejoined),
        }
    }
}

/// Everything a running devnet holds.
pub(crate) struct Devnet {
    dir: Dir,
    layout: Layout,
    _lock: DirLock,
    l1: Arc<dyn SettlementLayer>,
    chain: Chain,
    nodes: Vec<NodeProc>,
    committers: Vec<Proc>,
    provers: Vec<ProverProc>,
    http: reqwest::blocking::Client,
    interrupted: Arc<AtomicBool>,
    tty: bool,
    /// Proof counts and time of processes that were restarted (their counters start again).
    proofs_before: (u64, u64),
    restarts: Vec<Restart>,
    /// Since when the L1 does not answer.
    l1_down: Option<Instant>,
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_idle_timeout(keel_http::CLIENT_POOL_IDLE)
        .build()
        .expect("a TLS-less HTTP client builds")
}

fn get<T: serde::de::DeserializeOwned>(http: &reqwest::blocking::Client, url: &str) -> Option<T> {
    http.get(url)
        .send()
        .ok()?
        .error_for_status()
        .ok()?
        .json()
        .ok()
}

impl Devnet {
    pub(crate) fn start(
        cfg: &Config,
        prepared: Prepared,
        verifier: &Path,
        interrupted: Arc<AtomicBool>,
    ) -> Result<Self, DevnetError> {
        let Prepared {
            dir, layout, lock, ..
        } = prepared;
        let exe = cfg.exe.as_path();
        let (chain, l1) = Chain::start(cfg, &dir, &layout, verifier, &interrupted)?;
        let view = l1.rollup()?;
        if let Some(x) = view.exit_mode {
            return Err(DevnetError::ExitMode {
                dir: dir.root.clone(),
                reason: x.reason.to_string(),
            });
        }
        eprintln!(
            "keel devnet: {} (height {}, batch {} proven); logs in {}",
            chain.describe(),
            view.head.height,
            view.checkpoint.batch,
            dir.logs().display()
        );
        let ports = [free_port()?, free_port()?];
        let urls: Vec<String> = ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        // the lease holder starts first, and the other once the holder has restarted the
        // failover clock: after downtime longer than the failover timeout the lease is
        // claimable, and a standby started at once would take it over
        let keys = [chain.sequencer(&dir, 0)?, chain.sequencer(&dir, 1)?];
        let holder = keys
            .iter()
            .position(|k| *k == view.lease.sequencer)
            .unwrap_or(0);
        let remote = cfg.provers > 0;
        let l1_args = [chain.node_args(&dir, 0), chain.node_args(&dir, 1)];
        let spec = |i: usize| {
            let name = format!("sequencer-{i}");
            let mut args = vec![
                "sequencer".into(),
                "--role".into(),
                if i == holder { "primary" } else { "standby" }.into(),
            ];
            args.extend(l1_args[i].clone());
            args.extend([
                "--sequencer.key-file".into(),
                path(&dir.sequencer_key(i)),
                "--sequencer.dir".into(),
                path(&dir.root.join(&name)),
                "--sequencer.listen".into(),
                format!("127.0.0.1:{}", ports[i]),
                "--sequencer.depth".into(),
                layout.depth.to_string(),
                "--sequencer.batch-capacity".into(),
                layout.capacity.to_string(),
                "--sequencer.batch-deadline-ms".into(),
                cfg.batch_deadline_ms.to_string(),
                "--sequencer.peers".into(),
                urls[1 - i].clone(),
                "--sequencer.takeover-backoff-ms".into(),
                cfg.takeover_backoff_ms.to_string(),
                "--sequencer.proving".into(),
                if remote { "remote" } else { "local" }.into(),
                "--prover.keys-dir".into(),
                path(&cfg.keys_dir),
                "--prover.k".into(),
                layout.k.to_string(),
                "--prover.srs".into(),
                cfg.srs.clone(),
                "--prover.gpu".into(),
                cfg.gpu.clone(),
            ]);
            Spec {
                log: dir.log(&name),
                ready: dir.ready(&name),
                env: vec![],
                name,
                args,
            }
        };
        let spawn = |i: usize| -> Result<NodeProc, DevnetError> {
            Ok(NodeProc {
                proc: Proc::spawn(exe, spec(i))?,
                url: urls[i].clone(),
                node: None,
                status: None,
            })
        };
        let mut first = spawn(holder)?;
        first.proc.wait_ready(READY_TIMEOUT, &interrupted)?;
        let mut net = Self {
            dir: dir.clone(),
            layout: layout.clone(),
            _lock: lock,
            l1,
            chain,
            nodes: vec![first],
            committers: Vec::new(),
            provers: Vec::new(),
            http: http(),
            interrupted: interrupted.clone(),
            tty: std::io::stderr().is_terminal(),
            proofs_before: (0, 0),
            restarts: Vec::new(),
            l1_down: None,
        };
        let failover = view.deadlines.failover_timeout.as_millis() as u64;
        net.wait_until("the primary to start", |net| {
            let fresh = net.l1.rollup().is_ok_and(|v| {
                v.lease.claimable_at_ms(v.deadlines.failover_timeout)
                    > v.head.time_ms + failover / 2
            });
            Ok(net.nodes[0].role() == Some(Role::Primary) && fresh)
        })?;
        let mut second = spawn(1 - holder)?;
        second.proc.wait_ready(READY_TIMEOUT, &interrupted)?;
        net.nodes.push(second);
        if holder == 1 {
            net.nodes.swap(0, 1);
        }
        net.wait_until("the standby to start", |net| {
            Ok(net
                .nodes
                .iter()
                .all(|n| n.role().is_some_and(|r| r != Role::Starting)))
        })?;
        for (i, n) in net.nodes.iter().enumerate() {
            eprintln!(
                "keel devnet: sequencer-{i} at {} ({})",
                n.url,
                n.role().unwrap_or_default()
            );
        }
        if remote {
            net.start_farm(cfg, verifier, &urls)?;
        }
        Ok(net)
    }

    /// A `keel committer` per node and `cfg.provers` `keel prover run` shards.
    fn start_farm(
        &mut self,
        cfg: &Config,
        verifier: &Path,
        nodes: &[String],
    ) -> Result<(), DevnetError> {
        let exe = cfg.exe.as_path();
        let mut committer_urls = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let name = format!("committer-{i}");
            let port = free_port()?;
            let mut p = Proc::spawn(
                exe,
                Spec {
                    args: ["committer".into()]
                        .into_iter()
                        .chain(self.chain.committer_args(&self.dir, i))
                        .chain([
                            "--l1.verifier".into(),
                            path(verifier),
                            "--committer.sequencer".into(),
                            node.clone(),
                            "--committer.dir".into(),
                            path(&self.dir.root.join(&name)),
                            "--committer.listen".into(),
                            format!("127.0.0.1:{port}"),
                        ])
                        .collect(),
                    log: self.dir.log(&name),
                    ready: self.dir.ready(&name),
                    env: vec![],
                    name,
                },
            )?;
            committer_urls.push(p.wait_ready(READY_TIMEOUT, &self.interrupted)?.api);
            self.committers.push(p);
        }
        for j in 0..cfg.provers {
            let name = format!("prover-{j}");
            let port = free_port()?;
            let mut p = Proc::spawn(
                exe,
                Spec {
                    args: ["prover".into(), "run".into()]
                        .into_iter()
                        .chain(self.chain.reader_args())
                        .chain([
                            "--prover.shard".into(),
                            format!("{j}/{}", cfg.provers),
                            "--prover.sequencers".into(),
                            nodes.join(","),
                            "--prover.committers".into(),
                            committer_urls.join(","),
                            "--prover.listen".into(),
                            format!("127.0.0.1:{port}"),
                            "--prover.keys-dir".into(),
                            path(&cfg.keys_dir),
                            "--prover.k".into(),
                            self.layout.k.to_string(),
                            "--prover.capacity".into(),
                            self.layout.capacity.to_string(),
                            "--prover.srs".into(),
                            cfg.srs.clone(),
                            "--prover.gpu".into(),
                            cfg.gpu.clone(),
                        ])
                        .collect(),
                    log: self.dir.log(&name),
                    ready: self.dir.ready(&name),
                    env: vec![],
                    name,
                },
            )?;
            let url = p.wait_ready(READY_TIMEOUT, &self.interrupted)?.api;
            eprintln!("keel devnet: {} at {url}", p.name());
            self.provers.push(ProverProc {
                proc: p,
                url,
                status: None,
            });
        }
        Ok(())
    }

    /// Every process through its supervisor: one that died unexpectedly is restarted (after
    /// its back-off); one that keeps dying ends the run.
    fn supervise(&mut self) -> Result<(), DevnetError> {
        let mut restarted = Vec::new();
        if let Some(r) = self.chain.supervise()? {
            restarted.push(r);
        }
        for n in &mut self.nodes {
            if let Some(r) = n.proc.supervise()? {
                // its counters start again
                if let Some(s) = n.node.take() {
                    self.proofs_before.0 += s.proofs.proofs;
                    self.proofs_before.1 += s.proofs.proof_ms_total;
                }
                n.status = None;
                restarted.push(r);
            }
        }
        for c in &mut self.committers {
            if let Some(r) = c.supervise()? {
                restarted.push(r);
            }
        }
        for p in &mut self.provers {
            if let Some(r) = p.proc.supervise()? {
                if let Some(s) = p.status.take() {
                    self.proofs_before.0 += s.proofs.proofs;
                    self.proofs_before.1 += s.proofs.proof_ms_total;
                }
                restarted.push(r);
            }
        }
        for r in restarted {
            self.end_progress();
            eprintln!(
                "keel devnet: restarted {} (it ended: {}; down {:.1} s){}",
                r.name,
                r.ended,
                r.down_ms as f64 / 1000.0,
                if r.cause.is_empty() {
                    String::new()
                } else {
                    format!("; its last cause:\n  {}", r.cause.join("\n  "))
                }
            );
            self.restarts.push(r);
        }
        Ok(())
    }

    /// Polls until `done`, while every process is supervised (two minutes at most).
    fn wait_until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&Self) -> Result<bool, DevnetError>,
    ) -> Result<(), DevnetError> {
        let start = Instant::now();
        loop {
            self.supervise()?;
            self.poll();
            if done(self)? {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(120) {
                return Err(DevnetError::Timeout {
                    what: what.into(),
                    logs: self.dir.logs(),
                });
            }
            if self.interrupted.load(Ordering::Acquire) {
                return Err(DevnetError::Interrupted);
            }
            thread::sleep(TICK);
        }
    }

    fn poll(&mut self) {
        for n in &mut self.nodes {
            let alive = !n.proc.held();
            n.node = alive
                .then(|| get(&self.http, &format!("{}/v1/node", n.url)))
                .flatten();
            n.status = alive
                .then(|| get(&self.http, &format!("{}/v1/status", n.url)))
                .flatten();
        }
        for p in &mut self.provers {
            if let Some(s) = get(&self.http, &format!("{}/v1/prover", p.url)) {
                p.status = Some(s);
            }
        }
    }

    fn primary(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.role() == Some(Role::Primary))
    }

    /// The L1's view, or `None` while it does not answer (it may be restarting); an outage
    /// longer than [`L1_OUTAGE`] is an error.
    fn rollup(&mut self) -> Result<Option<RollupView>, DevnetError> {
        match self.l1.rollup() {
            Ok(v) => {
                self.l1_down = None;
                Ok(Some(v))
            }
            Err(e) => {
                let since = *self.l1_down.get_or_insert_with(Instant::now);
                if since.elapsed() > L1_OUTAGE {
                    return Err(e.into());
                }
                Ok(None)
            }
        }
    }

    /// The demo accounts: deposits made on the L1 for those that have none yet.
    fn accounts(&self) -> Result<Vec<Account>, DevnetError> {
        let mut keys = Vec::new();
        for i in 0..self.layout.accounts {
            let key = read_key(&self.dir.account_key(i))?;
            if self.l1.account_index(&key.public_key())?.is_none() {
                self.chain.deposit(&self.dir, &key.public_key(), DEPOSIT)?;
            }
            keys.push(key);
        }
        // the L1's reads are settled ones: a deposit shows once its block is deep enough
        let start = Instant::now();
        let mut out = Vec::new();
        for (i, key) in (0..).zip(keys) {
            let index = loop {
                match self.l1.account_index(&key.public_key())? {
                    Some(index) => break index,
                    None if start.elapsed() < DEPOSIT_SETTLES => thread::sleep(TICK),
                    None => return Err(DevnetError::DepositLost { account: i }),
                }
            };
            out.push(Account {
                key,
                index,
                nonce: None,
            });
        }
        Ok(out)
    }

    fn progress(&self, line: &str) {
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
        let _ = std::io::stderr().flush();
    }

    fn end_progress(&self) {
        if self.tty {
            eprintln!();
        }
    }

    /// Proofs made and their total milliseconds, this run's processes and restarted ones.
    fn proof_totals(&self) -> (u64, u64) {
        let nodes = self.nodes.iter().filter_map(|n| n.node.as_ref());
        let all = nodes.map(|n| &n.proofs).chain(
            self.provers
                .iter()
                .filter_map(|p| p.status.as_ref().map(|s| &s.proofs)),
        );
        all.fold(self.proofs_before, |(n, ms), s| {
            (n + s.proofs, ms + s.proof_ms_total)
        })
    }

    /// What the provers proving now report: the primary's own, and the prover services'.
    fn proving_now(&self) -> impl Iterator<Item = &ProofStats> {
        let primary = self.primary().and_then(|p| self.nodes[p].node.as_ref());
        primary.map(|n| &n.proofs).into_iter().chain(
            self.provers
                .iter()
                .filter_map(|p| p.status.as_ref().map(|s| &s.proofs)),
        )
    }

    /// The last batch a prover proved.
    fn proved(&self) -> u64 {
        self.proving_now().map(|s| s.proved).max().unwrap_or(0)
    }

    /// The last proof's time.
    fn last_proof_ms(&self) -> u64 {
        self.proving_now()
            .map(|s| s.proof_ms_last)
            .max()
            .unwrap_or(0)
    }

    /// What makes the proofs (the primary's prover, or the first prover service's).
    fn backend(&self) -> String {
        if let Some(s) = self.provers.iter().find_map(|p| p.status.as_ref()) {
            return s.backend.clone();
        }
        self.primary()
            .and_then(|p| self.nodes[p].node.as_ref())
            .or_else(|| self.nodes.iter().find_map(|n| n.node.as_ref()))
            .map(|n| n.prover.clone())
            .unwrap_or_default()
    }

    pub(crate) fn drive(
        &mut self,
        cfg: &Config,
        batches: Option<u64>,
        resumed: bool,
    ) -> Result<Summary, DevnetError> {
        let start = Instant::now();
        let view = self.l1.rollup()?;
        let first = view.checkpoint.batch.0;
        let accounts = self.accounts()?;
        let urls: Vec<String> = self.nodes.iter().map(|n| n.url.clone()).collect();
        let settings = self.dir.root.join("client.toml");
        std::fs::write(&settings, self.chain.client_settings(&self.dir, &urls)?).map_err(
            |source| DevnetError::Io {
                path: settings.clone(),
                source,
            },
        )?;
        eprintln!(
            "keel devnet: a citizen's commands read {}: `keel --config {0} transfer ...`",
            settings.display()
        );
        eprintln!(
            "keel devnet: {} accounts funded with {DEPOSIT} each; load up to {} transfers/s, \
             paced by the prover (at most {BACKLOG} batches waiting for a proof)",
            accounts.len(),
            cfg.rate
        );
        let switches = Switches::default();
        let stats = Arc::new(LoadStats::default());
        let loader = {
            let (switches, stats) = (switches.clone(), stats.clone());
            let endpoints = self.nodes.iter().map(|n| n.url.clone()).collect();
            let rate = cfg.rate;
            thread::spawn(move || load::run(endpoints, accounts, rate, switches, stats))
        };
        let mut summary = Summary {
            dir: self.dir.root.display().to_string(),
            resumed,
            first_batch: first + 1,
            ..Default::default()
        };
        let mut failover: Option<Failover> = None;
        let mut draining: Option<Instant> = None;
        let mut last_line = Instant::now() - Duration::from_secs(5);
        let outcome = loop {
            if self.interrupted.load(Ordering::Acquire) {
                summary.interrupted = true;
                break Ok(());
            }
            if let Err(e) = self.supervise() {
                break Err(e);
            }
            self.poll();
            let view = match self.rollup() {
                Ok(Some(v)) => v,
                Ok(None) => {
                    // the L1 is restarting: nothing to decide on until it answers
                    thread::sleep(TICK);
                    continue;
                }
                Err(e) => break Err(e),
            };
            let committed = view.checkpoint.batch.0;
            let primary = self.primary();
            let status = primary.and_then(|p| self.nodes[p].status.as_ref());
            let cut = status.map(|s| s.last_batch);
            let waiting = status.map(|s| s.waiting);
            // paced by the prover (a transfer from an account whose deposit is not sequenced
            // yet is retried by the load); during a failover the load goes on whatever the
            // backlog, so that the new primary's first acceptance is measured
            let paced = cut.is_some_and(|c| c.saturating_sub(committed) < BACKLOG);
            let failing_over = failover
                .as_ref()
                .is_some_and(|_| stats.accepted_elsewhere().is_none());
            switches.go.store(
                draining.is_none() && (paced || failing_over),
                Ordering::Release,
            );

            if let (Some(at), None, Some(p)) = (cfg.kill_primary_at, &failover, primary) {
                if committed >= first + at {
                    failover = Some(self.kill(p, committed, &stats));
                }
            }
            if let Some(f) = &mut failover {
                if f.committed.is_none() && committed > f.batch {
                    f.committed = Some(Instant::now());
                }
                if !f.restarted && stats.accepted_elsewhere().is_some() {
                    // the killed node comes back and rejoins as a standby
                    if let Err(e) = self.nodes[f.node].proc.respawn() {
                        break Err(e);
                    }
                    f.restarted = true;
                    self.end_progress();
                    eprintln!(
                        "keel devnet: restarted sequencer-{}: it rejoins as a standby",
                        f.node
                    );
                }
                if f.restarted
                    && f.rejoined.is_none()
                    && self.nodes[f.node].role() == Some(Role::Standby)
                {
                    f.rejoined = Some(Instant::now());
                    self.end_progress();
                    eprintln!("keel devnet: sequencer-{} is back as a standby", f.node);
                }
                if !f.done(&stats) && f.at.elapsed() > FAILOVER_TIMEOUT {
                    break Err(DevnetError::Timeout {
                        what: format!(
                            "the failover: {}",
                            serde_json::to_string(&f.report(stats.accepted_elsewhere()))
                                .unwrap_or_default()
                        ),
                        logs: self.dir.logs(),
                    });
                }
            }
            let failover_done = failover.as_ref().is_none_or(|f| f.done(&stats));

            let done_load = batches.is_some_and(|b| committed >= first + b)
                || cfg
                    .duration
                    .is_some_and(|d| start.elapsed() >= Duration::from_secs(d));
            if draining.is_none() && done_load && failover_done {
                draining = Some(Instant::now());
                switches.go.store(false, Ordering::Release);
                self.end_progress();
                eprintln!("keel devnet: the load stops; draining (every accepted operation proven and committed)");
            }
            if let (Some(since), Some(cut), Some(0)) = (draining, cut, waiting) {
                if committed >= cut && since.elapsed() > TICK * 2 {
                    break Ok(());
                }
            }
            if draining.is_some_and(|d| d.elapsed() > DRAIN_TIMEOUT) {
                break Err(DevnetError::Timeout {
                    what: format!(
                        "the drain (batch {committed} committed of {})",
                        cut.map_or("?".into(), |c| c.to_string())
                    ),
                    logs: self.dir.logs(),
                });
            }

            // every second on a terminal (one line, redrawn), every 5 s into a log
            let every = Duration::from_secs(if self.tty { 1 } else { 5 });
            if last_line.elapsed() >= every {
                last_line = Instant::now();
                self.progress_line(start, &stats, &view, cut);
            }
            thread::sleep(TICK);
        };
        self.end_progress();
        switches.stop.store(true, Ordering::Release);
        switches.go.store(false, Ordering::Release);
        if let Ok(Err(e)) = loader.join() {
            eprintln!("keel devnet: the load stopped: {e}");
        }
        summary.restarts = self.restarts.clone();
        outcome?;
        summary.failover = failover.map(|f| f.report(stats.accepted_elsewhere()));

        let view = self.l1.rollup()?;
        let secs = start.elapsed().as_secs_f64();
        let (proofs, ms) = self.proof_totals();
        summary.seconds = secs;
        summary.operations_accepted = stats.accepted.load(Ordering::Acquire);
        summary.operations_refused = stats.refused.load(Ordering::Acquire);
        summary.operations_per_second = summary.operations_accepted as f64 / secs.max(0.001);
        summary.last_batch = view.checkpoint.batch.0;
        summary.batches_committed = view.checkpoint.batch.0.saturating_sub(first);
        summary.proofs = proofs;
        summary.proof_seconds_mean = (proofs > 0).then(|| ms as f64 / proofs as f64 / 1000.0);
        summary.prover_backend = self.backend();
        summary.l1_height = view.head.height;
        summary.root = fr_to_hex(&view.checkpoint.root);
        summary.epoch = view.lease.epoch.0;
        summary.primary = self
            .primary()
            .map_or_else(|| "none".into(), |p| format!("sequencer-{p}"));
        if cfg.exit && !summary.interrupted {
            summary.exit = Some(self.exit_all(&view)?);
        }
        Ok(summary)
    }

    fn progress_line(
        &self,
        start: Instant,
        stats: &LoadStats,
        view: &RollupView,
        cut: Option<u64>,
    ) {
        let secs = start.elapsed().as_secs_f64();
        let accepted = stats.accepted.load(Ordering::Acquire);
        let (proofs, ms) = self.proof_totals();
        let last_proof = self.last_proof_ms();
        let primary = self.primary();
        self.progress(&format!(
            "[{secs:6.1}s] ops {accepted} ({:.2}/s) | batches cut {} proven {} committed {} | proof {} ({}, {} made{}) | L1 height {} | primary {}{}",
            accepted as f64 / secs.max(0.001),
            cut.map_or("-".into(), |c| c.to_string()),
            self.proved(),
            view.checkpoint.batch.0,
            if last_proof > 0 { format!("{:.1} s", last_proof as f64 / 1000.0) } else { "-".into() },
            short_backend(&self.backend()),
            proofs,
            if proofs > 0 { format!(", mean {:.1} s", ms as f64 / proofs as f64 / 1000.0) } else { String::new() },
            view.head.height,
            primary.map_or("none (failover)".into(), |p| format!(
                "sequencer-{p} epoch {}",
                view.lease.epoch.0
            )),
            if self.restarts.is_empty() { String::new() } else { format!(" | restarts {}", self.restarts.len()) },
        ));
    }

    /// SIGKILLs node `p` (the primary) with batch `committed` committed; the load reports the
    /// first operation another node accepts from now on.
    fn kill(&mut self, p: usize, committed: u64, stats: &LoadStats) -> Failover {
        let n = &mut self.nodes[p];
        n.proc.kill();
        let at = Instant::now();
        stats.avoid(&n.url);
        // its counters start again when it is restarted
        if let Some(s) = n.node.take() {
            self.proofs_before.0 += s.proofs.proofs;
            self.proofs_before.1 += s.proofs.proof_ms_total;
        }
        n.status = None;
        self.end_progress();
        eprintln!(
            "keel devnet: killed the primary sequencer-{p} (SIGKILL) with batch {committed} committed"
        );
        Failover {
            node: p,
            at,
            batch: committed,
            committed: None,
            restarted: false,
            rejoined: None,
        }
    }

    /// The council activates exit mode; every account exits from L1 data; payouts = supply.
    fn exit_all(&mut self, view: &RollupView) -> Result<ExitReport, DevnetError> {
        self.chain
            .council_exit_mode(&self.dir, &self.layout, view.council_sequence)?;
        eprintln!(
            "keel devnet: the council ({}-of-{}) activated exit mode; the sequencers stop",
            COUNCIL.0, COUNCIL.1
        );
        let replayed = reconstruct::replay(self.l1.as_ref(), MemStore::new(), |_, _| {})?;
        eprintln!(
            "keel devnet: state rebuilt from L1 data alone: batch {}, root {}",
            replayed.checkpoint.batch,
            fr_to_hex(&replayed.checkpoint.root)
        );
        let mut paid = 0u64;
        for i in 0..self.layout.accounts {
            let key = read_key(&self.dir.account_key(i))?;
            paid += self.chain.exit(&replayed, &key)?;
        }
        self.chain.collect()?;
        let accounts = self.layout.accounts;
        let supply = DEPOSIT * u64::from(accounts);
        if paid != supply {
            return Err(DevnetError::Payout { paid, supply });
        }
        eprintln!("keel devnet: {accounts} accounts exited; payouts {paid} = supply {supply}");
        Ok(ExitReport {
            accounts,
            paid,
            supply,
        })
    }

    /// Stops the provers and committers, the sequencers, then the L1.
    pub(crate) fn shutdown(&mut self) {
        for p in &mut self.provers {
            p.proc.stop();
        }
        for c in &mut self.committers {
            c.stop();
        }
        for n in &mut self.nodes {
            n.proc.stop();
        }
        self.chain.stop();
    }
}

/// The backend's first word (`cpu`, or the GPU's name).
fn short_backend(b: &str) -> String {
    if b.is_empty() || b == "loading" {
        "prover loading".into()
    } else {
        b.split([' ', '(']).next().unwrap_or(b).to_owned()
    }
}
