//! `keel devnet`: the whole system on one machine in one command, as real processes.
//!
//! ```text
//!  keel devnet ─┬─ keys: the batch circuit's (cached per machine), sequencers', council's, accounts'
//!               ├─ keel l1 ........................ the embedded L1 (its own process, JSON-RPC)
//!               ├─ keel sequencer (sequencer-0) ... primary: API, WAL, prover, committer
//!               ├─ keel sequencer (sequencer-1) ... hot standby: replica, acks, take-over
//!               ├─ deposits on the L1 for the demo accounts, then a steady load of signed
//!               │  transfers through a client that knows both sequencers
//!               ├─ progress every second; --kill-primary-at: SIGKILL the primary mid-run
//!               └─ the run drained (every accepted operation proven and committed), --exit:
//!                  the council activates exit mode and every account exits; a summary
//! ```
//!
//! Everything lives in `--devnet.dir`; a rerun resumes it (the chain, both sequencers, the
//! accounts and their nonces). Ctrl-C stops the load and every process cleanly. The load is
//! paced by the prover: it waits while more than [`BACKLOG`] batches are cut but not
//! committed, so the operations per second shown are what this machine proves.

use std::{
    fs::OpenOptions,
    io::{IsTerminal, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, ensure, Context};
use clap::Args;
use keel_committer::{
    address_of, reconstruct,
    sla::{FORCED_INCLUSION_DEADLINE, PROOF_DEADLINE},
    Call, CouncilAction, Deadlines, Genesis, RollupView, RpcL1, SettlementLayer,
};
use keel_prover::{gpu::GpuPolicy, Shape};
use keel_sequencer::{Client, ClientError};
use keel_state::{
    field::fr_to_hex,
    frost::{self, KeyShare},
    AccountIndex, Encode, MemStore, SecretKey, SignedOp, Transfer,
};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Default data directory.
pub(crate) const DEFAULT_DIR: &str = "keel-data/devnet";
/// Batches committed in a run when neither `--batches` nor `--duration` is given.
pub(crate) const DEFAULT_BATCHES: u64 = 4;
/// Demo accounts.
pub(crate) const DEFAULT_ACCOUNTS: u32 = 4;
/// Most transfers sent per second: enough to fill a batch within its deadline.
pub(crate) const DEFAULT_RATE: u32 = 16;
/// The devnet's chain id.
pub(crate) const DEFAULT_CHAIN_ID: u64 = 1337;
/// Tree depth: 256 accounts, a circuit a CPU proves in seconds.
pub(crate) const DEFAULT_DEPTH: u8 = 8;
/// Operations per batch: as many as a circuit of 2^14 rows holds at depth 8 (a proof of about
/// 4 s on two cores; a test checks that 13 would not fit).
pub(crate) const DEFAULT_CAPACITY: usize = 12;
/// Longest wait before a partly full batch is cut, in milliseconds.
pub(crate) const DEFAULT_BATCH_DEADLINE_MS: u64 = 1_000;
/// The L1's block time, in milliseconds.
pub(crate) const DEFAULT_BLOCK_TIME_MS: u64 = 250;
/// The failover timeout, in milliseconds: short, so that `--kill-primary-at` is over quickly.
pub(crate) const DEFAULT_FAILOVER_TIMEOUT_MS: u64 = 8_000;
/// Each demo account's deposit.
pub(crate) const DEPOSIT: u64 = 1_000_000;
/// The load waits while more batches than this are cut but not committed.
pub(crate) const BACKLOG: u64 = 4;
/// The longest a drain (every accepted operation committed) may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(900);
/// How long a process gets to stop on SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);
const TICK: Duration = Duration::from_millis(250);
/// Set in the environment of the devnet's processes to its process id: each stops when the
/// devnet ends, even when the devnet is killed outright ([`crate::die_with_parent`]).
pub(crate) const PARENT_ENV: &str = "KEEL_DEVNET_PID";
/// The council the devnet deals itself: its shares stay in the devnet's directory.
const COUNCIL: (u16, u16) = (2, 3);

/// `keel devnet`'s flags.
#[derive(Args, Debug, Clone)]
pub(crate) struct DevnetArgs {
    /// Data directory: the chain, both sequencers, every key, and the processes' logs. A rerun
    /// resumes it.
    #[arg(long = "devnet.dir", default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// Stop the load once this many more batches are committed on the L1 (default 4 when
    /// --duration is not given either), then drain: every accepted operation proven and
    /// committed.
    #[arg(long = "devnet.batches", visible_alias = "batches")]
    batches: Option<u64>,
    /// Stop the load after this many seconds (then drain).
    #[arg(long = "devnet.duration", visible_alias = "duration")]
    duration: Option<u64>,
    /// SIGKILL the primary once this many batches of the run are committed: the standby takes
    /// over, the load fails over to it, and the killed node is restarted and rejoins as a
    /// standby.
    #[arg(long = "devnet.kill-primary-at", visible_alias = "kill-primary-at")]
    kill_primary_at: Option<u64>,
    /// After the run: the council activates exit mode, every account exits from L1 data, and the
    /// payouts are checked against the supply. The devnet is over after this.
    #[arg(long = "devnet.exit", visible_alias = "exit")]
    exit: bool,
    /// Demo accounts (created by L1 deposits on the first run).
    #[arg(long = "devnet.accounts", default_value_t = DEFAULT_ACCOUNTS)]
    accounts: u32,
    /// Most transfers sent per second.
    #[arg(long = "devnet.rate", default_value_t = DEFAULT_RATE)]
    rate: u32,
    /// Chain id (first run).
    #[arg(long = "devnet.chain-id", default_value_t = DEFAULT_CHAIN_ID)]
    chain_id: u64,
    /// The L1's block time in milliseconds (first run: it goes into the genesis).
    #[arg(long = "l1.block-time-ms", default_value_t = DEFAULT_BLOCK_TIME_MS)]
    block_time_ms: u64,
    /// The failover timeout in milliseconds (first run).
    #[arg(long = "l1.failover-timeout-ms", default_value_t = DEFAULT_FAILOVER_TIMEOUT_MS)]
    failover_timeout_ms: u64,
    /// The forced-inclusion deadline in milliseconds (first run).
    #[arg(long = "l1.forced-inclusion-ms", default_value_t = FORCED_INCLUSION_DEADLINE.as_millis() as u64)]
    forced_inclusion_ms: u64,
    /// The proof deadline in milliseconds (first run).
    #[arg(long = "l1.proof-ms", default_value_t = PROOF_DEADLINE.as_millis() as u64)]
    proof_ms: u64,
    /// Tree depth (first run).
    #[arg(long = "sequencer.depth", default_value_t = DEFAULT_DEPTH)]
    depth: u8,
    /// Operations per batch, the circuit's capacity (first run).
    #[arg(long = "sequencer.batch-capacity", default_value_t = DEFAULT_CAPACITY)]
    capacity: usize,
    /// Longest wait before a partly full batch is cut, in milliseconds.
    #[arg(long = "sequencer.batch-deadline-ms", default_value_t = DEFAULT_BATCH_DEADLINE_MS)]
    batch_deadline_ms: u64,
    /// Wait between the standbys' take-over slots, in milliseconds.
    #[arg(long = "sequencer.takeover-backoff-ms", default_value_t = crate::sequencer::DEFAULT_TAKEOVER_BACKOFF_MS)]
    takeover_backoff_ms: u64,
    /// The prover's key directory (shared with `keel prover keygen`; keys are made once per
    /// machine and shape).
    #[arg(long = "prover.keys-dir", default_value = crate::prover::DEFAULT_KEYS_DIR)]
    keys_dir: PathBuf,
    /// log2 of the batch circuit's rows (first run; default: the smallest that holds the
    /// layout).
    #[arg(long = "prover.k")]
    k: Option<u32>,
    /// KZG parameters: `dev` (INSECURE: devnets and tests only) or a file in halo2's raw format.
    #[arg(long = "prover.srs", default_value = "dev")]
    srs: String,
    /// The provers' GPU: `auto` (a hardware GPU if there is one, else the CPU), `require`,
    /// `off`.
    #[arg(long = "prover.gpu", default_value = "auto")]
    gpu: GpuPolicy,
    /// Print the summary as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
}

/// What a devnet fixes on its first run: `devnet.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layout {
    chain_id: u64,
    depth: u8,
    capacity: usize,
    k: u32,
    accounts: u32,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn write_key(path: &Path, key: &SecretKey) -> anyhow::Result<()> {
    std::fs::write(path, hex::encode(key.to_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

fn new_key() -> SecretKey {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    SecretKey::from_seed(&seed)
}

/// The devnet's directory and what is in it.
struct Dir {
    root: PathBuf,
}

impl Dir {
    fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
    fn sequencer_key(&self, i: usize) -> PathBuf {
        self.keys().join(format!("sequencer-{i}.key"))
    }
    fn funder_key(&self) -> PathBuf {
        self.keys().join("funder.key")
    }
    fn account_key(&self, i: u32) -> PathBuf {
        self.keys().join(format!("account-{i}.key"))
    }
    fn council(&self) -> PathBuf {
        self.keys().join("council")
    }
    fn genesis(&self) -> PathBuf {
        self.root.join("genesis.json")
    }
    fn layout(&self) -> PathBuf {
        self.root.join("devnet.json")
    }
    fn log(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}.log"))
    }
}

/// Creates the devnet (keys, council, genesis) on the first run; checks a resumed one.
fn prepare(args: &DevnetArgs, dir: &Dir) -> anyhow::Result<(Layout, bool)> {
    let wanted = Layout {
        chain_id: args.chain_id,
        depth: args.depth,
        capacity: args.capacity,
        k: crate::prover::shape(args.capacity, args.depth, args.k)?.k,
        accounts: args.accounts,
    };
    if dir.layout().exists() {
        let text = std::fs::read_to_string(dir.layout())
            .with_context(|| format!("reading {}", dir.layout().display()))?;
        let held: Layout = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a devnet layout", dir.layout().display()))?;
        if held != wanted {
            bail!(
                "the devnet in {} was created with chain id {}, depth {}, batch capacity {}, \
                 k {} and {} accounts; pass those, or another --devnet.dir for a new devnet",
                dir.root.display(),
                held.chain_id,
                held.depth,
                held.capacity,
                held.k,
                held.accounts
            );
        }
        return Ok((held, true));
    }
    ensure!(
        !dir.root.exists() || std::fs::read_dir(&dir.root)?.next().is_none(),
        "{} holds something that is not a devnet (no devnet.json): choose an empty or new --devnet.dir",
        dir.root.display()
    );
    ensure!(args.accounts >= 2, "a devnet needs at least 2 accounts");
    ensure!(
        u64::from(args.accounts) <= 1u64 << args.depth.min(32),
        "{} accounts do not fit a tree of depth {}",
        args.accounts,
        args.depth
    );
    crate::prover::check_shape(crate::prover::shape(args.capacity, args.depth, args.k)?)?;
    std::fs::create_dir_all(dir.keys())?;
    std::fs::create_dir_all(dir.root.join("logs"))?;
    let sequencers: Vec<SecretKey> = (0..2).map(|_| new_key()).collect();
    for (i, k) in sequencers.iter().enumerate() {
        write_key(&dir.sequencer_key(i), k)?;
    }
    let funder = new_key();
    write_key(&dir.funder_key(), &funder)?;
    for i in 0..args.accounts {
        write_key(&dir.account_key(i), &new_key())?;
    }
    let (group, shares) = frost::keygen(COUNCIL.0, COUNCIL.1, OsRng)?;
    std::fs::create_dir_all(dir.council())?;
    std::fs::write(dir.council().join("group.key"), hex::encode(group.encode()))?;
    for s in &shares {
        std::fs::write(
            dir.council().join(format!("member-{}.share", s.id)),
            hex::encode(s.encode()),
        )?;
    }
    let genesis = Genesis {
        chain_id: args.chain_id,
        time_ms: now_ms(),
        depth: args.depth,
        deadlines: Deadlines {
            block_time: Duration::from_millis(args.block_time_ms),
            failover_timeout: Duration::from_millis(args.failover_timeout_ms),
            forced_inclusion: Duration::from_millis(args.forced_inclusion_ms),
            proof: Duration::from_millis(args.proof_ms),
        },
        sequencers: sequencers.iter().map(|k| k.public_key()).collect(),
        allocations: vec![(
            address_of(&funder.public_key()),
            DEPOSIT * u64::from(args.accounts) + 1,
        )],
        council: group,
    };
    genesis.check().map_err(anyhow::Error::msg)?;
    std::fs::write(dir.genesis(), serde_json::to_string_pretty(&genesis)?)?;
    // written last: a devnet.json means everything above exists
    std::fs::write(dir.layout(), serde_json::to_string_pretty(&wanted)?)?;
    Ok((wanted, false))
}

/// A child process of the devnet, its output in a log file.
struct Proc {
    name: String,
    args: Vec<String>,
    log: PathBuf,
    child: Child,
}

impl Proc {
    fn spawn(name: &str, args: Vec<String>, log: PathBuf) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the keel binary")?;
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut cmd = Command::new(exe);
        cmd.args(&args)
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // its own process group: a Ctrl-C in the terminal reaches the devnet, which stops the
        // processes in order
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        Ok(Self {
            name: name.into(),
            args,
            log,
            child,
        })
    }

    fn respawn(&mut self) -> anyhow::Result<()> {
        *self = Self::spawn(&self.name, self.args.clone(), self.log.clone())?;
        Ok(())
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of its log.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// An error that it stopped, with the end of its log.
    fn died(&mut self) -> anyhow::Error {
        let status = self
            .child
            .try_wait()
            .ok()
            .flatten()
            .map_or_else(|| "running".into(), |s| s.to_string());
        anyhow::anyhow!(
            "{} stopped ({status}); the end of {}:\n{}",
            self.name,
            self.log.display(),
            self.tail()
        )
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL after [`STOP_GRACE`].
    fn stop(&mut self) {
        if !self.alive() {
            return;
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let start = Instant::now();
        while self.alive() {
            if start.elapsed() > STOP_GRACE {
                eprintln!("keel devnet: {} did not stop; killing it", self.name);
                self.kill();
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_idle_timeout(keel_http::CLIENT_POOL_IDLE)
        .build()
        .expect("an HTTP client")
}

fn get(http: &reqwest::blocking::Client, url: &str) -> Option<Value> {
    http.get(url)
        .send()
        .ok()?
        .error_for_status()
        .ok()?
        .json()
        .ok()
}

/// One sequencer node as the devnet sees it.
struct NodeProc {
    proc: Proc,
    url: String,
    /// What its `/v1/node` and `/v1/status` said last.
    node: Value,
    status: Value,
}

impl NodeProc {
    fn role(&self) -> &str {
        self.node["role"].as_str().unwrap_or("")
    }
}

/// A number a node reported (0 while it has not).
fn field(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

/// What the load generator reports.
#[derive(Default)]
struct LoadStats {
    accepted: AtomicU64,
    refused: AtomicU64,
    /// The first operation accepted by an endpoint other than `avoid` (a killed primary's),
    /// once `avoid` is set: the failover's end as a client sees it.
    first_elsewhere: Mutex<Option<Instant>>,
    avoid: Mutex<Option<String>>,
}

/// The demo accounts: keys, indices, and the next nonce each is known to have.
struct Account {
    key: SecretKey,
    index: AccountIndex,
    nonce: Option<u64>,
}

/// Sends transfers round robin (account i pays 1 to account i+1) at most `rate` per second,
/// while `go` is set and until `stop`.
fn load(
    endpoints: Vec<String>,
    mut accounts: Vec<Account>,
    rate: u32,
    go: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    stats: Arc<LoadStats>,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = Client::with_endpoints(endpoints);
    let every = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let n = accounts.len();
    let mut i = 0;
    let mut next = Instant::now();
    while !stop.load(Ordering::Acquire) {
        if !go.load(Ordering::Acquire) {
            thread::sleep(TICK);
            next = Instant::now();
            continue;
        }
        let now = Instant::now();
        if now < next {
            thread::sleep(next - now);
        }
        next += every;
        let to = accounts[(i + 1) % n].index;
        let a = &mut accounts[i];
        let nonce = match a.nonce {
            Some(n) => n,
            None => match rt.block_on(client.account(a.index.0)) {
                Ok(view) => view.nonce,
                Err(e) => {
                    tracing::debug!("reading account {}: {e}", a.index);
                    thread::sleep(TICK);
                    continue;
                }
            },
        };
        let op = SignedOp::Transfer(Transfer::sign(&a.key, a.index, to, 1, nonce));
        match rt.block_on(client.submit(&op)) {
            Ok(_) => {
                a.nonce = Some(nonce + 1);
                stats.accepted.fetch_add(1, Ordering::AcqRel);
                let avoid = stats
                    .avoid
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                if let Some(url) = avoid {
                    let mut first = stats
                        .first_elsewhere
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    if first.is_none() && client.base() != url {
                        *first = Some(Instant::now());
                    }
                }
                i = (i + 1) % n;
            }
            Err(e) => {
                // the outcome is unknown (a lost answer) or the nonce moved (a failover loses
                // what was accepted but not replicated): read it again before the next try
                a.nonce = None;
                if let ClientError::Refused { .. } = e {
                    stats.refused.fetch_add(1, Ordering::AcqRel);
                }
                tracing::debug!("a transfer from account {}: {e}", a.index);
                thread::sleep(TICK);
            }
        }
    }
    Ok(())
}

/// A `--kill-primary-at` kill and what followed it.
struct Failover {
    node: usize,
    at: Instant,
    /// The batch committed when it was killed.
    batch: u64,
    /// When the L1 first committed a later batch.
    committed: Option<Instant>,
    restarted: bool,
}

impl Failover {
    fn report(&self, accepted: Option<Instant>) -> Value {
        let ms = |t: Option<Instant>| t.map(|t| t.duration_since(self.at).as_millis() as u64);
        json!({
            "killed": format!("sequencer-{}", self.node),
            "at_batch": self.batch,
            "first_accepted_ms": ms(accepted),
            "first_committed_ms": ms(self.committed),
            "restarted": self.restarted,
        })
    }
}

impl LoadStats {
    fn accepted_elsewhere(&self) -> Option<Instant> {
        *self
            .first_elsewhere
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// The summary's figures.
#[derive(Debug, Default, Serialize)]
struct Summary {
    dir: String,
    resumed: bool,
    interrupted: bool,
    seconds: f64,
    operations_accepted: u64,
    operations_refused: u64,
    operations_per_second: f64,
    batches_committed: u64,
    first_batch: u64,
    last_batch: u64,
    proofs: u64,
    proof_seconds_mean: Option<f64>,
    prover_backend: String,
    l1_height: u64,
    root: String,
    primary: String,
    epoch: u64,
    failover: Option<Value>,
    exit: Option<Value>,
}

/// Everything a running devnet holds.
struct Devnet {
    dir: Dir,
    layout: Layout,
    l1: Arc<RpcL1>,
    l1_proc: Proc,
    nodes: Vec<NodeProc>,
    http: reqwest::blocking::Client,
    interrupted: Arc<AtomicBool>,
    tty: bool,
    /// Proof counts and time of nodes that were restarted (their counters start again).
    proofs_before: (u64, u64),
}

pub(crate) fn run(args: DevnetArgs) -> anyhow::Result<()> {
    ensure!(args.rate >= 1, "--devnet.rate must be at least 1");
    let batches = match (args.batches, args.duration) {
        (None, None) => Some(DEFAULT_BATCHES),
        (b, _) => b,
    };
    ensure!(batches != Some(0), "--batches must be at least 1");
    if let (Some(k), Some(b)) = (args.kill_primary_at, batches) {
        ensure!(
            k < b,
            "--kill-primary-at {k} must come before the run's end (--batches {b})"
        );
    }
    let dir = Dir {
        root: args.dir.clone(),
    };
    let (layout, resumed) = prepare(&args, &dir)?;
    eprintln!(
        "keel devnet: {} {} (chain {}, depth {}, {} per batch, {} accounts)",
        if resumed { "resuming" } else { "created" },
        dir.root.display(),
        layout.chain_id,
        layout.depth,
        layout.capacity,
        layout.accounts
    );
    let shape = Shape {
        capacity: layout.capacity,
        depth: layout.depth,
        k: layout.k,
    };
    eprintln!(
        "keel devnet: the batch circuit's keys in {} (made once per machine and shape: minutes)",
        args.keys_dir.display()
    );
    let started_keys = Instant::now();
    let (verifier, source, digest) =
        crate::prover::keygen(&args.keys_dir, shape, &crate::prover::srs(&args.srs))?;
    eprintln!(
        "keel devnet: keys {} in {:.1} s ({digest})",
        match source {
            keel_prover::KeySource::Generated => "generated",
            keel_prover::KeySource::Cached => "loaded",
        },
        started_keys.elapsed().as_secs_f64()
    );

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                if rt.block_on(crate::stop_signal()).is_ok() {
                    flag.store(true, Ordering::Release);
                }
            }
        });
    }

    let mut net = Devnet::start(&args, dir, layout, &verifier, interrupted)?;
    let summary = net.drive(&args, batches, resumed);
    net.shutdown();
    let summary = summary?;
    print_summary(&summary, args.json)?;
    if summary.interrupted {
        std::process::exit(130);
    }
    Ok(())
}

impl Devnet {
    fn start(
        args: &DevnetArgs,
        dir: Dir,
        layout: Layout,
        verifier: &Path,
        interrupted: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir.root.join("logs"))?;
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let mut l1_proc = Proc::spawn(
            "keel l1",
            vec![
                "l1".into(),
                "--l1.dir".into(),
                path(&dir.root.join("l1")),
                "--l1.verifier".into(),
                path(verifier),
                "--l1.genesis".into(),
                path(&dir.genesis()),
                "--l1.listen".into(),
                "127.0.0.1:0".into(),
            ],
            dir.log("l1"),
        )?;
        let url = wait_for_url(&mut l1_proc, &interrupted)?;
        let l1 = Arc::new(
            RpcL1::connect(&url).with_context(|| format!("connecting to the L1 at {url}"))?,
        );
        let view = l1.rollup()?;
        if let Some(x) = view.exit_mode {
            bail!(
                "the devnet in {} is in exit mode ({}): it is over. Remove the directory, or \
                 pass another --devnet.dir, to start a new one",
                dir.root.display(),
                x.reason
            );
        }
        eprintln!(
            "keel devnet: keel l1 at {url} (height {}, batch {} proven); logs in {}",
            view.head.height,
            view.checkpoint.batch,
            dir.root.join("logs").display()
        );
        let ports = [free_port()?, free_port()?];
        let urls: Vec<String> = ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        // the lease holder starts first, and the other once the holder has restarted the
        // failover clock: after downtime longer than the failover timeout the lease is
        // claimable, and a standby started at once would take it over
        let keys = [
            crate::read_key(&dir.sequencer_key(0))?.public_key(),
            crate::read_key(&dir.sequencer_key(1))?.public_key(),
        ];
        let holder = keys
            .iter()
            .position(|k| *k == view.lease.sequencer)
            .unwrap_or(0);
        let spec = |i: usize| {
            let name = format!("sequencer-{i}");
            let node_args = vec![
                "sequencer".into(),
                "--role".into(),
                if i == holder { "primary" } else { "standby" }.into(),
                "--l1.rpc".into(),
                url.clone(),
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
                args.batch_deadline_ms.to_string(),
                "--sequencer.peers".into(),
                urls[1 - i].clone(),
                "--sequencer.takeover-backoff-ms".into(),
                args.takeover_backoff_ms.to_string(),
                "--prover.keys-dir".into(),
                path(&args.keys_dir),
                "--prover.k".into(),
                layout.k.to_string(),
                "--prover.srs".into(),
                args.srs.clone(),
                "--prover.gpu".into(),
                args.gpu.to_string(),
            ];
            (
                format!("keel sequencer ({name})"),
                node_args,
                dir.log(&name),
            )
        };
        let specs = [spec(0), spec(1)];
        let spawn = |i: usize| -> anyhow::Result<NodeProc> {
            let (name, args, log) = specs[i].clone();
            Ok(NodeProc {
                proc: Proc::spawn(&name, args, log)?,
                url: urls[i].clone(),
                node: Value::Null,
                status: Value::Null,
            })
        };
        let first = spawn(holder)?;
        let mut net = Self {
            dir,
            layout,
            l1,
            l1_proc,
            nodes: vec![first],
            http: http(),
            interrupted,
            tty: std::io::stderr().is_terminal(),
            proofs_before: (0, 0),
        };
        let failover = view.deadlines.failover_timeout.as_millis() as u64;
        net.wait_until("the primary to start", |net| {
            let fresh = net.l1.rollup().is_ok_and(|v| {
                v.lease.claimable_at_ms(v.deadlines.failover_timeout)
                    > v.head.time_ms + failover / 2
            });
            Ok(net.nodes[0].role() == "primary" && fresh)
        })?;
        net.nodes.push(spawn(1 - holder)?);
        if holder == 1 {
            net.nodes.swap(0, 1);
        }
        net.wait_until("the standby to start", |net| {
            Ok(net.nodes.iter().all(|n| !n.role().is_empty()))
        })?;
        eprintln!(
            "keel devnet: sequencer-0 at {} ({}), sequencer-1 at {} ({})",
            net.nodes[0].url,
            net.nodes[0].role(),
            net.nodes[1].url,
            net.nodes[1].role()
        );
        Ok(net)
    }

    /// Polls until `done`, while every process runs (two minutes at most).
    fn wait_until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&Self) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            self.check_alive(None)?;
            self.poll_nodes();
            if done(self)? {
                return Ok(());
            }
            ensure!(
                start.elapsed() < Duration::from_secs(120),
                "timed out waiting for {what}; see the logs in {}",
                self.dir.root.join("logs").display()
            );
            ensure!(!self.interrupted.load(Ordering::Acquire), "interrupted");
            thread::sleep(TICK);
        }
    }

    fn poll_nodes(&mut self) {
        for n in &mut self.nodes {
            n.node = get(&self.http, &format!("{}/v1/node", n.url)).unwrap_or(Value::Null);
            n.status = get(&self.http, &format!("{}/v1/status", n.url)).unwrap_or(Value::Null);
        }
    }

    /// Every process is running, but `except` (one killed on purpose).
    fn check_alive(&mut self, except: Option<usize>) -> anyhow::Result<()> {
        if !self.l1_proc.alive() {
            return Err(self.l1_proc.died());
        }
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if Some(i) != except && !n.proc.alive() {
                return Err(n.proc.died());
            }
        }
        Ok(())
    }

    fn primary(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.role() == "primary")
    }

    /// The demo accounts: deposits made on the L1 for those that have none yet.
    fn accounts(&self) -> anyhow::Result<Vec<Account>> {
        let funder = crate::read_key(&self.dir.funder_key())?;
        let mut out = Vec::new();
        for i in 0..self.layout.accounts {
            let key = crate::read_key(&self.dir.account_key(i))?;
            let pk = key.public_key();
            let index = match self.l1.account_index(&pk)? {
                Some(index) => index,
                None => {
                    self.l1.send(
                        &funder,
                        Call::Deposit {
                            pk,
                            amount: DEPOSIT,
                        },
                    )?;
                    self.l1
                        .account_index(&pk)?
                        .context("the L1 took the deposit but has no account for it")?
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

    fn proof_totals(&self) -> (u64, u64) {
        let (mut n, mut ms) = self.proofs_before;
        for node in &self.nodes {
            n += field(&node.node, "proofs");
            ms += field(&node.node, "proof_ms_total");
        }
        (n, ms)
    }

    fn backend(&self) -> String {
        let p = self.primary().unwrap_or(0);
        self.nodes[p].node["prover"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    fn drive(
        &mut self,
        args: &DevnetArgs,
        batches: Option<u64>,
        resumed: bool,
    ) -> anyhow::Result<Summary> {
        let start = Instant::now();
        let view = self.l1.rollup()?;
        let first = view.checkpoint.batch.0;
        let accounts = self.accounts()?;
        eprintln!(
            "keel devnet: {} accounts funded with {DEPOSIT} each; load up to {} transfers/s, \
             paced by the prover (at most {BACKLOG} batches waiting for a proof)",
            accounts.len(),
            args.rate
        );
        let go = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(LoadStats::default());
        let loader = {
            let (go, stop, stats) = (go.clone(), stop.clone(), stats.clone());
            let endpoints = self.nodes.iter().map(|n| n.url.clone()).collect();
            let rate = args.rate;
            thread::spawn(move || load(endpoints, accounts, rate, go, stop, stats))
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
            let dead = failover.as_ref().filter(|f| !f.restarted).map(|f| f.node);
            if let Err(e) = self.check_alive(dead) {
                break Err(e);
            }
            self.poll_nodes();
            let view = match self.l1.rollup() {
                Ok(v) => v,
                Err(e) => break Err(e.into()),
            };
            let committed = view.checkpoint.batch.0;
            let primary = self.primary();
            let cut = primary.map(|p| field(&self.nodes[p].status, "last_batch"));
            let waiting = primary.map(|p| field(&self.nodes[p].status, "waiting"));
            // paced by the prover (a transfer from an account whose deposit is not sequenced
            // yet is retried by the load)
            let paced = cut.is_some_and(|c| c.saturating_sub(committed) < BACKLOG);
            go.store(draining.is_none() && paced, Ordering::Release);

            if let (Some(at), None, Some(p)) = (args.kill_primary_at, &failover, primary) {
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
            }

            let done_load = batches.is_some_and(|b| committed >= first + b)
                || args
                    .duration
                    .is_some_and(|d| start.elapsed() >= Duration::from_secs(d));
            if draining.is_none() && done_load {
                draining = Some(Instant::now());
                go.store(false, Ordering::Release);
                self.end_progress();
                eprintln!("keel devnet: the load stops; draining (every accepted operation proven and committed)");
            }
            if let (Some(since), Some(cut), Some(0)) = (draining, cut, waiting) {
                if committed >= cut && since.elapsed() > TICK * 2 {
                    break Ok(());
                }
            }
            if draining.is_some_and(|d| d.elapsed() > DRAIN_TIMEOUT) {
                break Err(anyhow::anyhow!(
                    "the drain did not finish in {} s (batch {committed} committed of {:?})",
                    DRAIN_TIMEOUT.as_secs(),
                    cut
                ));
            }

            // every second on a terminal (one line, redrawn), every 5 s into a log
            let every = Duration::from_secs(if self.tty { 1 } else { 5 });
            if last_line.elapsed() >= every {
                last_line = Instant::now();
                let secs = start.elapsed().as_secs_f64();
                let accepted = stats.accepted.load(Ordering::Acquire);
                let (proofs, ms) = self.proof_totals();
                let last_proof = primary
                    .map(|p| field(&self.nodes[p].node, "proof_ms_last"))
                    .unwrap_or(0);
                self.progress(&format!(
                    "[{secs:6.1}s] ops {accepted} ({:.2}/s) | batches cut {} proven {} committed {} | proof {} ({}, {} made{}) | L1 height {} | primary {}",
                    accepted as f64 / secs.max(0.001),
                    cut.map_or("-".into(), |c| c.to_string()),
                    primary.map_or(0, |p| field(&self.nodes[p].node, "proved")),
                    committed,
                    if last_proof > 0 { format!("{:.1} s", last_proof as f64 / 1000.0) } else { "-".into() },
                    short_backend(&self.backend()),
                    proofs,
                    if proofs > 0 { format!(", mean {:.1} s", ms as f64 / proofs as f64 / 1000.0) } else { String::new() },
                    view.head.height,
                    primary.map_or("none (failover)".into(), |p| format!(
                        "sequencer-{p} epoch {}",
                        view.lease.epoch.0
                    )),
                ));
            }
            thread::sleep(TICK);
        };
        self.end_progress();
        stop.store(true, Ordering::Release);
        go.store(false, Ordering::Release);
        if let Ok(Err(e)) = loader.join() {
            eprintln!("keel devnet: the load stopped: {e:#}");
        }
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
        summary.batches_committed = view.checkpoint.batch.0 - first;
        summary.proofs = proofs;
        summary.proof_seconds_mean = (proofs > 0).then(|| ms as f64 / proofs as f64 / 1000.0);
        summary.prover_backend = self.backend();
        summary.l1_height = view.head.height;
        summary.root = fr_to_hex(&view.checkpoint.root);
        summary.epoch = view.lease.epoch.0;
        summary.primary = self
            .primary()
            .map_or_else(|| "none".into(), |p| format!("sequencer-{p}"));
        if args.exit && !summary.interrupted {
            summary.exit = Some(self.exit_all(&view)?);
        }
        Ok(summary)
    }

    /// SIGKILLs node `p` (the primary) with batch `committed` committed; the load reports the
    /// first operation another node accepts from now on.
    fn kill(&mut self, p: usize, committed: u64, stats: &LoadStats) -> Failover {
        let n = &mut self.nodes[p];
        n.proc.kill();
        let at = Instant::now();
        *stats.avoid.lock().unwrap_or_else(|e| e.into_inner()) = Some(n.url.clone());
        // its counters start again when it is restarted
        self.proofs_before.0 += field(&n.node, "proofs");
        self.proofs_before.1 += field(&n.node, "proof_ms_total");
        n.node = Value::Null;
        n.status = Value::Null;
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
        }
    }

    /// The council activates exit mode; every account exits from L1 data; payouts = supply.
    fn exit_all(&mut self, view: &RollupView) -> anyhow::Result<Value> {
        let funder = crate::read_key(&self.dir.funder_key())?;
        let shares = (1..=COUNCIL.0)
            .map(|id| {
                let file = self.dir.council().join(format!("member-{id}.share"));
                crate::council::decode::<KeyShare>(
                    &crate::council::read_hex(&file)?,
                    "a council share",
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // each share carries the group's public side
        let group = &shares[0].group;
        let action = CouncilAction::ActivateExitMode;
        let sequence = view.council_sequence;
        let msg = action.message(self.layout.chain_id, sequence);
        let (nonces, commitments): (Vec<_>, Vec<_>) =
            shares.iter().map(|s| frost::commit(s, OsRng)).unzip();
        let responses = shares
            .iter()
            .zip(nonces)
            .map(|(s, n)| frost::sign(s, n, &commitments, msg))
            .collect::<Result<Vec<_>, _>>()?;
        let signature = frost::aggregate(group, &commitments, &responses, msg)?;
        self.l1.send(
            &funder,
            Call::Council {
                action,
                sequence,
                signature,
            },
        )?;
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
            let key = crate::read_key(&self.dir.account_key(i))?;
            paid += reconstruct::exit(self.l1.as_ref(), &replayed, &key, None)?.amount;
        }
        let exited = self.layout.accounts;
        let supply = DEPOSIT * u64::from(self.layout.accounts);
        ensure!(
            paid == supply,
            "the exits paid {paid}, but the accounts' deposits total {supply}"
        );
        eprintln!("keel devnet: {exited} accounts exited; payouts {paid} = supply {supply}");
        Ok(json!({"accounts": exited, "paid": paid, "supply": supply}))
    }

    /// Stops the sequencers, then the L1.
    fn shutdown(&mut self) {
        for n in &mut self.nodes {
            n.proc.stop();
        }
        self.l1_proc.stop();
    }
}

/// The backend's first word (`cpu`, or the GPU's name).
fn short_backend(b: &str) -> String {
    if b.is_empty() {
        "prover loading".into()
    } else {
        b.split([' ', '(']).next().unwrap_or(b).to_owned()
    }
}

/// Reads the L1's API address from the first lines of its log.
fn wait_for_url(l1: &mut Proc, interrupted: &AtomicBool) -> anyhow::Result<String> {
    let start = Instant::now();
    let before = std::fs::read_to_string(&l1.log).map_or(0, |t| t.len());
    loop {
        let text = std::fs::read_to_string(&l1.log).unwrap_or_default();
        let fresh = text.get(before.min(text.len())..).unwrap_or("");
        if let Some(url) = fresh
            .lines()
            .find_map(|l| l.split("API on ").nth(1).map(|u| u.trim().to_owned()))
        {
            return Ok(url);
        }
        if !l1.alive() {
            return Err(l1.died());
        }
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "keel l1 did not start within a minute; see {}",
            l1.log.display()
        );
        ensure!(!interrupted.load(Ordering::Acquire), "interrupted");
        thread::sleep(Duration::from_millis(50));
    }
}

fn print_summary(s: &Summary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    let mut rows: Vec<(&str, String)> = vec![
        (
            "devnet",
            format!("{}{}", s.dir, if s.resumed { " (resumed)" } else { "" }),
        ),
        (
            "ended",
            if s.interrupted {
                "interrupted (Ctrl-C); a rerun resumes"
            } else {
                "completed"
            }
            .into(),
        ),
        ("run time", format!("{:.1} s", s.seconds)),
        (
            "operations",
            format!(
                "{} accepted ({:.2}/s), {} refused",
                s.operations_accepted, s.operations_per_second, s.operations_refused
            ),
        ),
        (
            "batches committed",
            if s.batches_committed == 0 {
                "0".into()
            } else {
                format!(
                    "{} (batches {}..={} on the L1)",
                    s.batches_committed, s.first_batch, s.last_batch
                )
            },
        ),
        (
            "proofs",
            match s.proof_seconds_mean {
                Some(m) => format!("{} made, {m:.1} s mean, {}", s.proofs, s.prover_backend),
                None => format!("none made this run ({})", s.prover_backend),
            },
        ),
        ("L1 height", s.l1_height.to_string()),
        ("proven root", s.root.clone()),
        ("primary", format!("{} (epoch {})", s.primary, s.epoch)),
    ];
    if let Some(f) = &s.failover {
        let ms = |k: &str| {
            f[k].as_u64()
                .map_or("-".into(), |m| format!("{:.1} s", m as f64 / 1000.0))
        };
        rows.push((
            "failover",
            format!(
                "{} killed at batch {}; first operation accepted by the new primary after {}, first batch committed after {}",
                f["killed"].as_str().unwrap_or(""),
                f["at_batch"],
                ms("first_accepted_ms"),
                ms("first_committed_ms"),
            ),
        ));
    }
    if let Some(x) = &s.exit {
        rows.push((
            "exit",
            format!(
                "{} accounts exited; payouts {} = supply {}",
                x["accounts"], x["paid"], x["supply"]
            ),
        ));
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("keel devnet summary");
    for (k, v) in rows {
        println!("  {k:width$}  {v}");
    }
    Ok(())
}
