//! `keel devnet`: its flags, and the call into [`keel_devnet`], where the devnet lives (the
//! directory and its lock, the supervised processes, the load, the scenarios, the report).
//!
//! ```text
//!  keel devnet ─┬─ keys: the batch circuit's (cached per machine), sequencers', council's, accounts'
//!               ├─ keel l1 ........................ the embedded L1 (its own process, JSON-RPC)
//!               ├─ keel sequencer (sequencer-0) ... primary: API, WAL, prover, committer
//!               ├─ keel sequencer (sequencer-1) ... hot standby: replica, acks, take-over
//!               ├─ --devnet.provers P: a keel committer per node and P keel prover run shards
//!               ├─ deposits on the L1 for the demo accounts, then a steady load of signed
//!               │  transfers through a client that knows both sequencers
//!               ├─ every process supervised: one that dies is restarted (with back-off)
//!               ├─ progress every second; --kill-primary-at: SIGKILL the primary mid-run
//!               └─ the run drained (every accepted operation proven and committed), --exit:
//!                  the council activates exit mode and every account exits; a summary
//! ```
//!
//! Everything lives in `--devnet.dir`, locked while the devnet runs; a rerun resumes it (the
//! chain, both sequencers, the accounts and their nonces). Ctrl-C stops the load and every
//! process cleanly. The load is paced by the prover: it waits while more than
//! [`keel_devnet::BACKLOG`] batches are cut but not committed, so the operations per second
//! shown are what this machine proves.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Instant,
};

use clap::Args;
use keel_committer::sla::{FORCED_INCLUSION_DEADLINE, PROOF_DEADLINE};
use keel_prover::{gpu::GpuPolicy, Shape};

pub(crate) use keel_devnet::PARENT_ENV;

/// Default data directory.
pub(crate) const DEFAULT_DIR: &str = "keel-data/devnet";
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
/// `keel devnet`'s flags.
#[derive(Args, Debug, Clone)]
pub(crate) struct DevnetArgs {
    /// Data directory: the chain, both sequencers, every key, and the processes' logs. A rerun
    /// resumes it.
    #[arg(long = "devnet.dir", default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// The L1 (first run): `anvil` (from npm; Keel's contracts deployed on it, batches
    /// verified on chain) or `embedded` (`keel l1`, the single-node chain; a rerun resumes it).
    #[arg(long = "devnet.l1", default_value = "anvil")]
    l1: keel_devnet::L1Kind,
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
    /// The prover's GPU: `auto` (a hardware GPU if there is one, else the CPU), `require` (a
    /// hardware GPU or fail; a device failure fails the proof), `software` (any adapter,
    /// lavapipe included: a correctness run), `off`.
    #[arg(long = "prover.gpu", default_value = "auto")]
    gpu: GpuPolicy,
    /// Prover processes: `keel prover run` shards, with a `keel committer` per node (0: each
    /// node proves and commits in its own process).
    #[arg(long = "devnet.provers", default_value_t = 0)]
    provers: u32,
    /// Print the summary as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: DevnetArgs) -> anyhow::Result<()> {
    // the shape first: nothing is created for one that cannot be proven
    let shape = crate::prover::shape(args.capacity, args.depth, args.k)?;
    crate::prover::check_shape(shape)?;
    let cfg = keel_devnet::Config {
        dir: args.dir.clone(),
        l1: args.l1,
        exe: std::env::current_exe()?,
        batches: args.batches,
        duration: args.duration,
        kill_primary_at: args.kill_primary_at,
        exit: args.exit,
        accounts: args.accounts,
        rate: args.rate,
        chain_id: args.chain_id,
        block_time_ms: args.block_time_ms,
        failover_timeout_ms: args.failover_timeout_ms,
        forced_inclusion_ms: args.forced_inclusion_ms,
        proof_ms: args.proof_ms,
        depth: args.depth,
        capacity: args.capacity,
        k: shape.k,
        batch_deadline_ms: args.batch_deadline_ms,
        takeover_backoff_ms: args.takeover_backoff_ms,
        keys_dir: args.keys_dir.clone(),
        srs: args.srs.clone(),
        gpu: args.gpu.to_string(),
        provers: args.provers,
    };
    keel_devnet::check(&cfg)?;
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
    let keygen = |layout: &keel_devnet::Layout| {
        let shape = Shape {
            capacity: layout.capacity,
            depth: layout.depth,
            k: layout.k,
        };
        eprintln!(
            "keel devnet: the batch circuit's keys in {} (made once per machine and shape: minutes)",
            args.keys_dir.display()
        );
        let started = Instant::now();
        let srs = crate::prover::srs(&args.srs);
        let (verifier, source, digest) = crate::prover::keygen(&args.keys_dir, shape, &srs)
            .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
        eprintln!(
            "keel devnet: keys {} in {:.1} s ({digest})",
            match source {
                keel_prover::KeySource::Generated => "generated",
                keel_prover::KeySource::Cached => "loaded",
            },
            started.elapsed().as_secs_f64()
        );
        if layout.l1 == keel_devnet::L1Kind::Anvil {
            // the rollup contract verifies Keccak-transcript proofs with the generated verifier
            let started = Instant::now();
            let evm = crate::prover::evm_verifier(&args.keys_dir, shape, &srs)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
            debug_assert_eq!(evm, keel_devnet::chain::evm_verifier_file(&verifier));
            eprintln!(
                "keel devnet: the EVM verifier generated and compiled in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok::<PathBuf, Box<dyn std::error::Error + Send + Sync>>(verifier)
    };
    let summary = keel_devnet::run(&cfg, keygen, interrupted)?;
    summary.print(args.json, &mut std::io::stdout().lock())?;
    if summary.interrupted {
        std::process::exit(130);
    }
    Ok(())
}
