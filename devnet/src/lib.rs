//! # keel-devnet: the whole system on one machine, as real processes, supervised
//!
//! ```text
//!  run ─┬─ layout.rs ..... the directory: created atomically, locked while the devnet runs
//!       ├─ (the caller's keygen: the batch circuit's keys, cached per machine)
//!       ├─ chain.rs ...... the L1: anvil with the rollup contracts deployed (default), or
//!       │                  keel l1, the embedded chain (JSON-RPC, supervised)
//!       ├─ net.rs ........ the processes, each through supervisor.rs (ready files, restarts):
//!       │                    keel sequencer × 2 ....... primary and hot standby
//!       │                    keel committer × 2,
//!       │                    keel prover run × P ...... with --devnet.provers P (else each node
//!       │                                               proves and commits in process)
//!       ├─ load.rs ....... deposits, then signed transfers through a client that knows both
//!       │                  sequencers; --kill-primary-at: SIGKILL the primary mid-run
//!       └─ report.rs ..... the run drained, --exit (exit mode, every account exits), a summary
//! ```
//!
//! The binary (`keel devnet`) parses flags into a [`Config`] and calls [`run`]; tests drive the
//! same code.

pub mod chain;
pub mod layout;
pub mod load;
mod net;
pub mod report;
pub mod supervisor;

use std::{
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc},
};

use keel_committer::{L1Error, ReconstructError};

pub use chain::L1Kind;
pub use layout::{prepare, Dir, DirLock, Layout, Prepared};
pub use report::{ExitReport, FailoverReport, Summary};
pub use supervisor::{cause_lines, Proc, Restart, Spec, PARENT_ENV};

/// Batches committed in a run when neither a batch count nor a duration is given.
pub const DEFAULT_BATCHES: u64 = 4;
/// Each demo account's deposit.
pub const DEPOSIT: u64 = 1_000_000;
/// L1 funds the embedded L1's funder keeps beyond the demo accounts' deposits, for the citizens'
/// own (`client.toml` names its key as the payer of `keel deposit`).
pub const CITIZEN_FUNDS: u64 = 1_000_000_000;
/// The load waits while more batches than this are cut but not committed.
pub const BACKLOG: u64 = 4;
/// The council the devnet deals itself (threshold, members): its shares stay in the directory.
pub const COUNCIL: (u16, u16) = (2, 3);

/// A devnet run's settings (the flags of `keel devnet`).
#[derive(Clone, Debug)]
pub struct Config {
    /// The directory: the chain, both sequencers, every key, the logs. A rerun resumes it (an
    /// embedded L1's; anvil keeps its chain in memory, so an anvil devnet runs once).
    pub dir: PathBuf,
    /// The L1 (first run): anvil with the rollup contracts (the default), or `keel l1`.
    pub l1: L1Kind,
    /// The `keel` binary the processes run.
    pub exe: PathBuf,
    /// Stop the load once this many more batches are committed (then drain).
    pub batches: Option<u64>,
    /// Stop the load after this many seconds (then drain).
    pub duration: Option<u64>,
    /// SIGKILL the primary once this many batches of the run are committed.
    pub kill_primary_at: Option<u64>,
    /// After the run: exit mode, and every account exits.
    pub exit: bool,
    /// Demo accounts (first run).
    pub accounts: u32,
    /// Most transfers sent per second.
    pub rate: u32,
    /// Chain id (first run).
    pub chain_id: u64,
    /// The L1's block time (first run).
    pub block_time_ms: u64,
    /// The failover timeout (first run).
    pub failover_timeout_ms: u64,
    /// The forced-inclusion deadline (first run).
    pub forced_inclusion_ms: u64,
    /// The proof deadline (first run).
    pub proof_ms: u64,
    /// Tree depth (first run).
    pub depth: u8,
    /// Operations per batch (first run).
    pub capacity: usize,
    /// log2 of the batch circuit's rows (first run; the caller has checked the shape).
    pub k: u32,
    /// Longest wait before a partly full batch is cut.
    pub batch_deadline_ms: u64,
    /// Wait between the standbys' take-over slots.
    pub takeover_backoff_ms: u64,
    /// The prover's key directory.
    pub keys_dir: PathBuf,
    /// KZG parameters (`dev` or a file).
    pub srs: String,
    /// The provers' GPU policy (`auto`, `require`, `off`).
    pub gpu: String,
    /// Prover processes (`keel prover run` shards, with a `keel committer` per node); 0: each
    /// node proves and commits in its own process.
    pub provers: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dir: "keel-data/devnet".into(),
            l1: L1Kind::Anvil,
            exe: "keel".into(),
            batches: None,
            duration: None,
            kill_primary_at: None,
            exit: false,
            accounts: 4,
            rate: 16,
            chain_id: 1337,
            block_time_ms: 250,
            failover_timeout_ms: 8_000,
            forced_inclusion_ms: 60_000,
            proof_ms: 600_000,
            depth: 8,
            capacity: 12,
            k: 14,
            batch_deadline_ms: 1_000,
            takeover_backoff_ms: 2_000,
            keys_dir: "keel-data/keys".into(),
            srs: "dev".into(),
            gpu: "auto".into(),
            provers: 0,
        }
    }
}

/// Why a devnet run failed.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// A flag's value cannot run.
    #[error("{0}")]
    Option(String),
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// Another devnet holds the directory.
    #[error("the devnet in {} is in use by another keel devnet{}: stop it first, or pass another --devnet.dir",
            dir.display(), holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse {
        /// The directory.
        dir: PathBuf,
        /// The holder's process id, when it wrote one.
        holder: Option<u32>,
    },
    /// The directory holds something else.
    #[error("{} holds something that is not a devnet (no devnet.json): choose an empty or new --devnet.dir", .0.display())]
    NotADevnet(PathBuf),
    /// `devnet.json` does not parse.
    #[error("{} is not a devnet layout: {source}", path.display())]
    BadLayout {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The flags ask for another devnet than the directory holds.
    #[error("the devnet in {} was created on the {} L1 with chain id {}, depth {}, batch capacity \
             {}, k {} and {} accounts; pass those, or another --devnet.dir for a new devnet",
            dir.display(), held.l1, held.chain_id, held.depth, held.capacity, held.k, held.accounts)]
    LayoutMismatch {
        /// The directory.
        dir: PathBuf,
        /// What it holds.
        held: Layout,
    },
    /// A key file could not be read or written.
    #[error(transparent)]
    KeyFile(#[from] keel_node::keys::KeyFileError),
    /// A council member's file does not hold its key package.
    #[error("{} must hold a council member's key package (JSON)", path.display())]
    Key {
        /// The file.
        path: PathBuf,
    },
    /// The genesis the flags describe is not valid.
    #[error("the genesis: {0}")]
    Genesis(String),
    /// JSON could not be written.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The council's keys could not be dealt or used.
    #[error("the council: {0}")]
    Council(#[from] keel_committer::council::CouncilError),
    /// The caller's keygen failed.
    #[error("the batch circuit's keys: {0}")]
    Keys(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The L1 failed or refused.
    #[error("the L1: {0}")]
    L1(#[from] L1Error),
    /// anvil, the deployment of the contracts, or a call to them failed.
    #[error("the EVM L1: {0}")]
    Evm(String),
    /// An anvil devnet cannot be resumed.
    #[error("the devnet in {} ran on anvil, which kept its chain in memory: it cannot resume. \
             Remove the directory, or pass another --devnet.dir", .0.display())]
    NoResume(PathBuf),
    /// Rebuilding the state from L1 data, or an exit from it, failed.
    #[error("from L1 data: {0}")]
    Reconstruct(#[from] ReconstructError),
    /// The devnet is over: exit mode is active.
    #[error("the devnet in {} is in exit mode ({reason}): it is over. Remove the directory, or pass \
             another --devnet.dir, to start a new one", dir.display())]
    ExitMode {
        /// The directory.
        dir: PathBuf,
        /// Why exit mode was activated.
        reason: String,
    },
    /// A process stopped where it may not.
    #[error("{name} stopped ({ended}); the cause, from {}:\n  {}", log.display(), cause.join("\n  "))]
    Child {
        /// The process.
        name: String,
        /// How it ended.
        ended: String,
        /// Its log.
        log: PathBuf,
        /// The lines of its log that carry the cause.
        cause: Vec<String>,
    },
    /// A process kept dying.
    #[error("{name} died again after {restarts} restarts ({ended}); given up. The cause, from {}:\n  {}",
            log.display(), cause.join("\n  "))]
    GaveUp {
        /// The process.
        name: String,
        /// Restarts in a row.
        restarts: u32,
        /// How it ended last.
        ended: String,
        /// Its log.
        log: PathBuf,
        /// The lines of its log that carry the cause.
        cause: Vec<String>,
    },
    /// Something did not happen in time.
    #[error("timed out waiting for {what}; see the logs in {}", logs.display())]
    Timeout {
        /// What.
        what: String,
        /// Where to look.
        logs: PathBuf,
    },
    /// The exits did not pay out the supply.
    #[error("the exits paid {paid}, but the accounts' deposits total {supply}")]
    Payout {
        /// Paid.
        paid: u64,
        /// Deposited.
        supply: u64,
    },
    /// The L1 took a demo account's deposit but shows no account for it.
    #[error("the L1 took the deposit of demo account {account} but has no account for it")]
    DepositLost {
        /// The demo account.
        account: u32,
    },
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
}

/// Runs a devnet: prepares (or resumes) its directory and locks it, has `keygen` make or load
/// the batch circuit's keys for its layout (returning the verifier file the L1 pins; for anvil
/// it writes the EVM verifier's contracts beside it, [`chain::evm_verifier_file`]), starts
/// and supervises the processes, drives the load and the scenarios, stops everything, and
/// returns the summary. `interrupted` (Ctrl-C) ends the run early, cleanly.
pub fn run(
    cfg: &Config,
    keygen: impl FnOnce(&Layout) -> Result<PathBuf, Box<dyn std::error::Error + Send + Sync>>,
    interrupted: Arc<AtomicBool>,
) -> Result<Summary, DevnetError> {
    let batches = check(cfg)?;
    let prepared = prepare(cfg)?;
    eprintln!(
        "keel devnet: {} {} (chain {}, depth {}, {} per batch, {} accounts)",
        if prepared.resumed {
            "resuming"
        } else {
            "created"
        },
        prepared.dir.root.display(),
        prepared.layout.chain_id,
        prepared.layout.depth,
        prepared.layout.capacity,
        prepared.layout.accounts
    );
    if prepared.resumed && prepared.layout.l1 == L1Kind::Anvil {
        return Err(DevnetError::NoResume(prepared.dir.root.clone()));
    }
    let verifier = keygen(&prepared.layout).map_err(DevnetError::Keys)?;
    let resumed = prepared.resumed;
    let mut net = net::Devnet::start(cfg, prepared, &verifier, interrupted)?;
    let summary = net.drive(cfg, batches, resumed);
    net.shutdown();
    summary
}

/// Checks the flags that need no directory; the run's batch target.
pub fn check(cfg: &Config) -> Result<Option<u64>, DevnetError> {
    let bad = |m: String| Err(DevnetError::Option(m));
    if cfg.rate < 1 {
        return bad("--devnet.rate must be at least 1".into());
    }
    let batches = match (cfg.batches, cfg.duration) {
        (None, None) => Some(DEFAULT_BATCHES),
        (b, _) => b,
    };
    if batches == Some(0) {
        return bad("--batches must be at least 1".into());
    }
    if let (Some(k), Some(b)) = (cfg.kill_primary_at, batches) {
        if k >= b {
            return bad(format!(
                "--kill-primary-at {k} must come before the run's end (--batches {b})"
            ));
        }
    }
    if cfg.accounts < 2 {
        return bad("a devnet needs at least 2 accounts".into());
    }
    if u64::from(cfg.accounts) > 1u64 << cfg.depth.min(32) {
        return bad(format!(
            "{} accounts do not fit a tree of depth {}",
            cfg.accounts, cfg.depth
        ));
    }
    if cfg.provers > 16 {
        return bad("--devnet.provers: at most 16".into());
    }

    Ok(batches)
}
